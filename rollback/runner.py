"""The rollback of one run: started once, at the first gating failure, in a background thread.

:class:`RollbackRunner` lives in the controller only. :meth:`trigger` is called
for every gating failure the controller receives and starts the rollback on the
first one (a lock makes that exactly once, whatever the number of xdist
workers); the run goes on while the thread talks to Cloud Run. :meth:`finish`
joins the thread (bounded) at session finish and writes the JSON record.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from .apply import ALREADY_ACTED, DONE, FAILED, NOTHING_TO_SHIFT, OPERATION_TIMEOUT, VALIDATED, Outcome, apply_rollback
from .deployment import Deployment
from .marks import FAILED_KEY
from .record import entries, gcloud_command, write_record
from .traffic import describe_traffic, serving

__all__ = ["RollbackRunner"]

JOIN_TIMEOUT = OPERATION_TIMEOUT + 120.0


class RollbackRunner:
    def __init__(self, *, deployment: Deployment, service: Any) -> None:
        self.deployment = deployment
        self.service = service
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.trigger_test: str | None = None
        self.trigger_reason: str = ""
        self.first_failure_at: float | None = None
        self.first_failure_wall: dt.datetime | None = None
        self.outcome: Outcome | None = None
        self.log: list[str] = []
        self._live = Outcome(status=FAILED, message="")
        """Filled in place by the rollback thread: what was sent so far (read when it cannot be waited for)."""
        self.record_error: str | None = None
        """Why the JSON record could not be written, if it could not."""
        self.interrupted: str | None = None
        """SIGTERM or SIGINT when the run was stopped by a signal."""
        self.traffic_at_finish: tuple | None = None
        self.gate_split: dict[str, int] | None = None
        """The split this run itself set last (a rollout's step): the traffic at finish is then not someone else's change."""
        """The traffic read at session finish when this run changed nothing (to say whether it changed anyway)."""
        self.on_started: Any = None
        """``on_started(runner, outcome)``, called once from the rollback thread: as soon as Cloud Run answered
        the first update request (``outcome`` then holds the plan and the operation), or when the rollback
        ended without one. It must return at once (revgate's notifications hand the message to threads of their own)."""
        self._started_told = False

    @property
    def triggered(self) -> bool:
        return self.trigger_test is not None

    def trigger(self, nodeid: str, reason: str) -> bool:
        """Record the first gating failure and start the rollback; False when already started."""
        with self._lock:
            if self.trigger_test is not None:
                return False
            self.first_failure_at = time.monotonic()
            self.first_failure_wall = dt.datetime.now(dt.timezone.utc)
            self.trigger_test, self.trigger_reason = nodeid, reason
            if self.deployment.mode == "off":
                return True
            self._thread = threading.Thread(target=self._run, name="revgate-rollback", daemon=True)
            self._thread.start()
            return True

    def _run(self) -> None:
        from google.api_core import exceptions as gexc

        from revgate.google_clients import revisions_client, services_client

        try:
            services = services_client()
            self.outcome = apply_rollback(
                self.deployment,
                self.service,
                services=services,
                revisions_api=revisions_client(),
                dry_run=self.deployment.mode == "dry-run",
                log=self._log,
                outcome=self._live,
            )
            self._mark_alone(self.outcome, services)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:  # re-reads outside apply's own handling
            self.outcome = Outcome(status=FAILED, message=f"Cloud Run Admin API error: {exc}", errors=[str(exc)])
        except Exception as exc:  # noqa: BLE001 - the run must report any failure of the rollback, not lose it in a thread
            self.outcome = Outcome(
                status=FAILED, message=f"the rollback crashed: {type(exc).__name__}: {exc}", errors=[repr(exc)]
            )
        if self.outcome.done_at is None:
            self.outcome.done_at = time.monotonic()
        self._tell_started(self.outcome)

    def _mark_alone(self, outcome: Outcome, services: Any) -> None:
        """The rollback sent no traffic (nothing to shift, someone already acted, nothing plannable): the
        revision under test failed its gate all the same, so it is marked with an annotations-only update
        (:mod:`rollback.marking`)."""
        if self.deployment.mode != "on-failure" or outcome.marks_written:
            return
        if not (outcome.status in (NOTHING_TO_SHIFT, ALREADY_ACTED) or (outcome.status == FAILED and outcome.plan_failed)):
            return
        from .marking import write_marks

        existing = outcome.revisions_seen if outcome.revisions_seen is not None else [r.name for r in self.deployment.revisions]
        result = write_marks(self.deployment, services=services, existing=existing, log=self._log)
        testing = ", ".join(self.deployment.revisions_under_test)
        if result.written:
            outcome.marks, outcome.marks_written = result.marks, True
            outcome.message += f"; {testing} marked failed ({FAILED_KEY})"
        else:
            outcome.marks_error = result.error
            outcome.errors.append(f"the known-bad mark could not be written: {result.error}")
            outcome.message += f"; the known-bad mark could not be written ({result.error}): add {testing} to {FAILED_KEY} by hand"

    def _log(self, line: str) -> None:
        self.log.append(line)
        if self._live.operation:  # the update request was answered: the rollback is under way
            self._tell_started(self._live)

    def _tell_started(self, outcome: Outcome) -> None:
        if self._started_told or self.on_started is None:
            return
        self._started_told = True
        try:
            self.on_started(self, outcome)
        except Exception:  # noqa: BLE001 - a listener never breaks the rollback
            pass

    def finish(self, timeout: float = JOIN_TIMEOUT, *, interrupted: str | None = None) -> None:
        """Wait for the rollback thread (bounded); a thread still running counts as a failed rollback,
        and the record says what was sent and how to check or finish it."""
        self.interrupted = interrupted
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                live = self._live
                why = f"interrupted ({interrupted}): " if interrupted else ""
                if live.operation:
                    sent = f"operation {live.operation} was sent (planned {live.plan.describe() if live.plan else '?'})"
                elif live.request_sent_at is not None:
                    sent = "the update request was being sent (its answer never came)"
                else:
                    sent = "no update request was sent yet"
                self.outcome = Outcome(
                    status=FAILED,
                    message=f"{why}the rollback did not finish within {timeout:g} s: {sent}; check it with: {self.check_command()}",
                    plan=live.plan,
                    etag=live.etag,
                    attempts=live.attempts,
                    request_sent_at=live.request_sent_at,
                    operation=live.operation,
                    errors=list(live.errors),
                )
        elif not self.triggered and self.deployment.mode != "off":
            self._read_traffic_at_finish()
        self.record_error = None
        if self.deployment.report_path:
            self.record_error = write_record(self.deployment.report_path, self.record())

    def _read_traffic_at_finish(self) -> None:
        """This run changed nothing: read the traffic once more, to say so if someone else changed it."""
        try:
            from revgate.google_clients import services_client

            from . import cloudrun

            self.traffic_at_finish = cloudrun.traffic_of(cloudrun.get_service(services_client(), self.deployment.service_name))
        except Exception:  # noqa: BLE001 - only informative: the verdict does not depend on it
            self.traffic_at_finish = None

    def check_command(self) -> str:
        d = self.deployment
        return f"gcloud run services describe {d.service} --region {d.region} --project {d.project} --format='yaml(status.traffic)'"

    # -- what the run reports ---------------------------------------------------------------

    @property
    def status(self) -> str:
        if not self.triggered:
            return "interrupted" if self.interrupted else "not-needed"
        if self.deployment.mode == "off":
            return "off"
        return self.outcome.status if self.outcome else FAILED

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def manual_command(self) -> str | None:
        """The command that finishes a failed rollback: the plan's, else the target the header showed
        (planned at start), unless that target was seen deleted since."""
        if not self.failed:
            return None
        plan = self.outcome.plan if self.outcome else None
        if plan:
            return gcloud_command(self.deployment, plan.split)
        target = self.deployment.rollback_target
        if not target.found:
            return None
        seen = self.outcome.revisions_seen if self.outcome else None
        if seen is not None and any(rev not in seen for rev in target.split):
            return None
        return gcloud_command(self.deployment, target.split)

    def _changed_by_others(self) -> str:
        now = self.traffic_at_finish
        if now is None or serving(now) == serving(self.deployment.traffic_before):
            return ""
        if self.gate_split is not None and serving(now) == self.gate_split:
            return f"; the traffic is as this run set it (its promotion or rollout): {describe_traffic(now)}"
        return f"; but the traffic changed during the run, not by this gate: now {describe_traffic(now)}"

    def message(self) -> str:
        if not self.triggered and self.interrupted:
            return f"interrupted ({self.interrupted}): nothing verified, traffic unchanged{self._changed_by_others()}"
        if not self.triggered:
            if self.gate_split is not None:
                return f"no gating check failed: nothing rolled back{self._changed_by_others()}"
            return f"no gating check failed: traffic left as it was{self._changed_by_others()}"
        if self.deployment.mode == "off":
            return "a gating check failed; rollback is off (--rollback off): traffic left as it was"
        outcome = self.outcome
        text = outcome.message if outcome else "the rollback did not run"
        command = self.manual_command()
        if command:
            text += f"; finish it by hand: {command}"
        elif self.failed:
            text += "; no traffic could be planned: choose the revision and run gcloud run services update-traffic by hand"
        return text

    def _since_failure(self, when: float | None) -> float | None:
        if when is None or self.first_failure_at is None:
            return None
        return round(when - self.first_failure_at, 3)

    def record(self) -> dict[str, Any]:
        d = self.deployment
        outcome = self.outcome
        plan = outcome.plan if outcome else None
        return {
            "service": d.service,
            "region": d.region,
            "project": d.project,
            "mode": d.mode,
            "revisions_under_test": list(d.revisions_under_test),
            "previous_revision": d.previous_revision,
            "rollback_target": d.rollback_target.to_dict(),
            "status": self.status,
            "message": self.message(),
            "trigger": {"test": self.trigger_test, "reason": self.trigger_reason} if self.triggered else None,
            "interrupted": self.interrupted,
            "traffic": {
                "before": entries(d.traffic_before),
                "planned": entries(plan.traffic) if plan else None,
                "planned_split": plan.split if plan else None,
                "rule": plan.rule if plan else None,
                "skipped_not_ready": list(plan.skipped) if plan else [],
                "skipped_failed": list(plan.skipped_failed) if plan else [],
                "after": entries(outcome.traffic_after) if outcome and outcome.traffic_after else None,
                "at_finish": entries(self.traffic_at_finish) if self.traffic_at_finish is not None else None,
            },
            "marks_written": dict(outcome.marks) if outcome and outcome.marks_written else {},
            "marks_error": outcome.marks_error if outcome and outcome.marks_error else None,
            "operation": outcome.operation if outcome and outcome.operation else None,
            "etag": outcome.etag if outcome and outcome.etag else d.etag,
            "attempts": outcome.attempts if outcome else 0,
            "timings": {
                "first_failure_at": self.first_failure_wall.isoformat() if self.first_failure_wall else None,
                "request_sent_s": self._since_failure(outcome.request_sent_at if outcome else None),
                "operation_done_s": self._since_failure(outcome.done_at if outcome else None),
            },
            "errors": list(outcome.errors) if outcome else [],
            "manual_command": self.manual_command(),
        }

    def summary(self) -> list[tuple[str, dict[str, bool]]]:
        """Terminal summary lines with their markup."""
        d = self.deployment
        lines: list[tuple[str, dict[str, bool]]] = []
        status = self.status
        bad = {"red": True, "bold": True}
        unwritten = [(f"the rollback record could not be written: {self.record_error}", {"red": True})] if self.record_error else []
        if not self.triggered and self.interrupted:
            return [(f"{self.message()} ({describe_traffic(d.traffic_before)})", {"yellow": True, "bold": True})] + unwritten
        if not self.triggered:
            changed = self._changed_by_others()
            return [
                (f"no gating check failed: traffic unchanged by this gate ({describe_traffic(d.traffic_before)}){changed}",
                 {"yellow": True} if changed else {"green": True})
            ] + unwritten
        lines.append((f"first gating failure: {self.trigger_test}: {self.trigger_reason}", {}))
        outcome = self.outcome
        plan = outcome.plan if outcome else None
        lines.append((f"traffic before: {describe_traffic(d.traffic_before)}", {}))
        if plan:
            lines.append((f"planned ({plan.rule}): {plan.describe()}", {}))
            if plan.skipped:
                lines.append((f"skipped (not Ready): {', '.join(plan.skipped)}", {}))
            if plan.skipped_failed:
                lines.append((f"skipped (known bad, {FAILED_KEY}): {', '.join(plan.skipped_failed)}", {}))
        if outcome and outcome.traffic_after:
            lines.append((f"traffic after: {describe_traffic(outcome.traffic_after)}", {}))
        if outcome and outcome.attempts and outcome.done_at is not None and self.first_failure_at is not None:
            sent = self._since_failure(outcome.request_sent_at)
            took = self._since_failure(outcome.done_at)
            sent_text = f", request sent after {sent:.3f} s" if sent is not None else ""
            lines.append((f"took {took:.3f} s from the first failure{sent_text}, {outcome.attempts} attempt(s)", {}))
        for error in outcome.errors if outcome else []:
            lines.append((f"error: {error}", {"yellow": True}))
        markup = {
            DONE: {"green": True, "bold": True},
            VALIDATED: {"yellow": True},
            ALREADY_ACTED: {"yellow": True},
            NOTHING_TO_SHIFT: {"yellow": True},
            "off": {"yellow": True},
        }.get(status, bad)
        lines.append((f"ROLLBACK {status.upper()}: {self.message()}", markup))
        if self.record_error:
            lines.append((f"the rollback record could not be written: {self.record_error}", {"red": True}))
        return lines

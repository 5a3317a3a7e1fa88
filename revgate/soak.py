"""A rollout's steps and soaks (:mod:`revgate.rollback.rollout`): promote, watch, and say what was seen.

One scheduler drives a soak: a single loop in the main thread with deadlines (the next probe, the
next logs reading, the soak's end and its hard end), never a thread per check, and its sleeps end
at a signal (the suite's handler turns SIGTERM and SIGINT into KeyboardInterrupt).

The checks of a soak are the checklist's own, run again as they ran in the gate (pytest's
``runtestprotocol`` on the same collected items, with their fixtures), so a check never has two
implementations:

- the request checks (``[health]``, ``[[api]]``, ``[[websocket]]``) every probe interval;
- the ``[metrics]`` limits (:func:`revgate.metrics.judge_limit`) over the step's window at each probe
  tick, that is at most one probe interval after a new Cloud Monitoring sample is visible; the gate's
  own requests are taken out of the counts first (Monitoring cannot tell them from users':
  :data:`revgate.target.SENT`); the comparisons with the stable revision
  (:func:`~revgate.metrics.judge_baseline`) once per step, when its soak is over and the sample covering
  its end is visible: a significance test repeated at every sample would find a difference by chance
  (at ``alpha`` = 0.05, sixty looks make a false alarm likely), and a false rollback is the worse bug;
- the ``[[logs]]`` checks every :data:`LOGS_EVERY` probe intervals (at least 30 s: Cloud Logging's
  read quota is per minute) and once more after the soak's end;
- the ``[[page]]`` checks once, at the start of the soak (a browser is slow).

A step passes when its soak is over and, with ``[metrics]``, Monitoring has shown at least
``min_requests`` of users' requests at this step and the sample that covers the soak's end; with
``[[logs]]``, a logs reading that began after the soak's end passed. Without that evidence the soak
goes on up to its ``max_soak``; then the traffic is held (NOT VERIFIED).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import pytest

from .results import NOT_VERIFIED_PROPERTY, is_gating_failure, is_not_verified

__all__ = ["LOGS_EVERY", "Rollout", "is_metric_item"]

LOGS_EVERY = 6
"""Probe intervals between two readings of the logs during a soak (and never under 30 s)."""
CI_PROGRESS_EVERY = 60.0
"""Seconds between two progress lines when no terminal is attached (one line a minute in a CI log)."""
OWN_SLACK = 60.0
"""Seconds before a window's start whose requests of the gate are still taken out of its counts: a
request counts in the Cloud Monitoring point of its sample period (60 s), whose end may fall in the
window although the request came before it. Taking out too many only understates the evidence."""

_REQUEST_FIXTURES = ("health_check", "api_check", "api_auth_check", "ws_check")


def is_metric_item(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return "metric_limit" in names or "baseline_limit" in names


def _kind(item: pytest.Item) -> str:
    names = getattr(item, "fixturenames", ())
    if any(name in names for name in _REQUEST_FIXTURES):
        return "request"
    if "page_check" in names:
        return "page"
    if "logs_check" in names:
        return "logs"
    if is_metric_item(item):
        return "metrics"
    return "once"


@dataclass
class Seen:
    """What one run of a group of checks, or one judgement of the metrics, found."""

    verdict: str = "pass"
    """``pass``, ``fail`` (a gating check failed: roll back), ``not-verified`` (no evidence yet)."""
    check: str = ""
    message: str = ""


def _message(report: pytest.TestReport) -> str:
    from .report import message_of

    return message_of(report)


class Rollout:
    """The steps of one rollout, after the checklist ran (:meth:`run`)."""

    def __init__(self, *, session: pytest.Session, record: Any, deferred: list[pytest.Item], already_at_first: bool) -> None:
        from .rollback.deployment import deployment_key, service_snapshot_key
        from .rollback.plugin import runner_key
        from .settings import settings_key

        self.session = session
        self.config = session.config
        self.record = record
        self.plan = record.plan
        self.deployment = self.config.stash[deployment_key]
        self.snapshot = self.config.stash[service_snapshot_key]
        self.runner = self.config.stash.get(runner_key, None)
        self.settings = self.config.stash[settings_key]
        self.already_at_first = already_at_first
        from .rollback import cloudrun

        self.latest = cloudrun.short_name(getattr(self.snapshot, "latest_created_revision", "") or "")
        """The service's newest revision when the run started: a newer one is someone else's deploy."""
        items = [item for item in session.items if item not in deferred]
        self.requests = [i for i in items if _kind(i) == "request"]
        self.pages = [i for i in items if _kind(i) == "page"]
        self.logs = [i for i in items if _kind(i) == "logs"]
        self.metrics = _MetricsWatch.create(self.config, self.deployment, self.settings.checklist, deferred)
        from .metrics_plugin import progress_writer

        self.write = progress_writer(self.config)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        self.tty = bool(reporter is not None and reporter.isatty)

    # -- the whole rollout ---------------------------------------------------------------------------

    def run(self) -> None:
        from .results import results_key

        record = self.record
        results = self.config.stash.get(results_key, None)
        verdict = results.verdict if results is not None else "ERROR"
        if self.session.shouldfail or self.session.shouldstop or verdict != "PASS" or (self.runner and self.runner.triggered):
            record.status = "not-started"
            record.message = f"not started: the checklist's verdict is {verdict}; the traffic was not changed"
            return
        from .google_clients import revisions_client, services_client

        self.services, self.revisions_api = services_client(), revisions_client()
        record.status = "running"
        step = None
        try:
            for index in range(record.start_index, len(self.plan.steps)):
                step = self._new_step(index)
                if not self._step(step, promote=not (index == record.start_index and self.already_at_first)):
                    return
            record.status = "completed"
            record.message = f"{record.revision} carried to {self.plan.steps[-1]} % through {len(record.steps)} step(s), each soak passed"
            self._clear_state()
            self._announce(f"revgate: rollout of {self.deployment.service} completed", [record.message])
        except KeyboardInterrupt:
            from .interrupts import interrupted_by

            signal = interrupted_by(self.config) or "an interrupt"
            where = f"during step {step.index + 1} ({step.percent} %)" if step is not None else "before the first step"
            if step is not None and step.verdict == "running":
                step.verdict, step.ended = "INTERRUPTED", time.time()
                step.message = f"{signal}: stopped"
            record.status = "interrupted"
            record.message = (
                f"{signal} {where}: the traffic is held where it is ({self._traffic_now()}); rerun the same command "
                "(or add --resume) to continue from this step, or roll back by hand: " + self._back_command()
            )
            raise

    def _new_step(self, index: int) -> Any:
        from .rollback.rollout import StepRecord

        step = StepRecord(index=index, percent=self.plan.steps[index], soak_s=self.plan.soaks[index])
        self.record.steps.append(step)
        return step

    def _step(self, step: Any, *, promote: bool) -> bool:
        """Promote (unless the service is there already) and soak; False when the rollout ends here."""
        from .rollback import cloudrun
        from .rollback.rollout import STATE_KEY, state_text
        from .rollback.traffic import describe_traffic, serving

        step.started = time.time()
        if promote:
            from .rollback.promote import promote as promote_to

            try:
                before = cloudrun.short_name(cloudrun.get_service(self.services, self.deployment.service_name).latest_created_revision or "")
            except Exception:  # noqa: BLE001 - the promotion's own fresh read will say what is wrong
                before = ""
            if self.latest and before and before != self.latest:
                return self._end(step, "STOPPED", f"a new revision, {before}, was deployed during the rollout")

            promotion = promote_to(
                self.deployment,
                self.snapshot,
                percent=step.percent,
                services=self.services,
                revisions_api=self.revisions_api,
                dry_run=False,
                keep_target=self._keep_target(),
                annotations={STATE_KEY: state_text(self.record.revision, self.plan.steps, step.index)},
            )
            step.promotion = promotion.to_dict()
            if promotion.status != "done":
                return self._end(step, "NOT VERIFIED", f"the promotion to {step.percent} % did not happen: {promotion.message}; "
                                 f"the traffic is held where it is ({self._traffic_now()})")
        try:
            fresh = cloudrun.read_service(self.services, self.deployment.service_name)
        except Exception as exc:  # noqa: BLE001 - the Admin API not answering is not the revision's failure
            return self._end(step, "NOT VERIFIED", f"the service could not be read after the promotion: {exc}")
        expected = serving(cloudrun.traffic_of(fresh))
        newest = cloudrun.short_name(fresh.latest_created_revision or "")
        if self.latest and newest and newest != self.latest:
            return self._end(step, "STOPPED", f"a new revision, {newest}, was deployed during the rollout (seen right "
                             f"after the promotion to {step.percent} %, which stands: {describe_traffic(cloudrun.traffic_of(fresh))})")
        latest = self.latest or newest
        if self.runner is not None:
            self.runner.gate_split = expected
        self._announce(
            f"revgate: rollout of {self.deployment.service}, step {step.index + 1} of {len(self.plan.steps)}: "
            f"{self.record.revision} at {step.percent} %",
            [f"traffic: {describe_traffic(cloudrun.traffic_of(fresh))}", f"soak: {step.soak_s:g} s"],
        )
        verdict, message = self._soak(step, expected=expected, latest=latest)
        return self._end(step, verdict, message)

    def _end(self, step: Any, verdict: str, message: str) -> bool:
        step.ended = time.time()
        step.verdict, step.message = verdict, message
        self._log_step(step, verdict, message)
        if verdict == "PASS":
            return True
        record = self.record
        record.status = {"FAIL": "rolled-back", "STOPPED": "stopped"}.get(verdict, "held")
        if verdict == "FAIL":
            record.message = f"step {step.index + 1} ({step.percent} %) failed: {message}"
        elif verdict == "STOPPED":
            untouched = "; revgate touched nothing after it" if "which stands" in message else "; revgate touched nothing"
            record.message = f"stopped at step {step.index + 1} ({step.percent} %): {message}{untouched}"
        else:
            record.message = (
                f"held at step {step.index + 1} ({step.percent} %): {message}. Go on by hand: {self._on_command(step)}; "
                f"or back: {self._back_command()}"
            )
        self._announce(f"revgate: rollout of {self.deployment.service} {record.status}", [record.message])
        return False

    # -- one soak ------------------------------------------------------------------------------------

    def _soak(self, step: Any, *, expected: dict[str, int], latest: str) -> tuple[str, str]:
        plan = self.plan
        started = step.started
        soak_end = started + plan.soaks[step.index]
        hard_end = started + plan.max_soaks[step.index]
        interval = plan.probe_interval
        logs_every = max(30.0, LOGS_EVERY * interval)
        if self.pages:
            step.pages_run += len(self.pages)
            seen = self._run(self.pages)
            if seen.verdict == "fail":
                return "FAIL", f"{seen.check} failed at the start of the soak: {seen.message}"
        metrics_ok = self.metrics is None
        covered = self.metrics is None
        last_sample: float | None = None
        logs_ok = not self.logs
        logs_due = time.time() + logs_every if self.logs else math.inf
        final_logs = not self.logs
        missing = ""
        next_probe = time.time()
        last_line = 0.0
        while True:
            now = time.time()
            changed = self._changed(expected, latest)
            if changed:
                return "STOPPED", changed
            if now >= next_probe:
                step.probes += 1
                seen = self._run(self.requests)
                if seen.verdict == "fail":
                    step.probes_failed += 1
                    return "FAIL", f"probe {step.probes}, {now - started:.0f} s into the soak: {seen.check} failed: {seen.message}"
                if self.metrics is not None:
                    judged = self.metrics.judge(started, time.time())
                    step.requests_seen, step.error_rate = judged.requests, judged.error_rate
                    if judged.latest is not None and judged.latest != last_sample:
                        last_sample = judged.latest
                        step.samples_judged += 1
                    if judged.seen.verdict == "fail":
                        return "FAIL", f"{judged.seen.check} at {now - started:.0f} s into the soak: {judged.seen.message}"
                    metrics_ok = judged.seen.verdict == "pass"
                    covered = last_sample is not None and last_sample >= soak_end
                    if not metrics_ok:
                        missing = judged.seen.message
                    elif not covered:
                        missing = "Cloud Monitoring has not yet shown the sample that covers the end of the soak"
                    elif self.metrics.baselines and step.percent < 100:
                        # the comparisons with the stable revision: once, over the whole step (at 100 %
                        # the stable revision serves nobody: there is nothing to compare with)
                        final = self.metrics.judge(started, time.time(), baselines=True)
                        if final.seen.verdict == "fail":
                            return "FAIL", f"{final.seen.check} at the end of the soak: {final.seen.message}"
                        metrics_ok = final.seen.verdict == "pass"
                        if not metrics_ok:
                            missing = final.seen.message
                next_probe += interval * max(1, math.ceil((time.time() - next_probe) / interval))
            if self.logs and (now >= logs_due or (now >= soak_end and not final_logs)):
                reading_started = time.time()
                step.logs_readings += 1
                seen = self._run(self.logs)
                if seen.verdict == "fail":
                    return "FAIL", f"{seen.check} failed during the soak: {seen.message}"
                logs_ok = seen.verdict == "pass"
                if not logs_ok:
                    missing = f"{seen.check}: {seen.message}"
                if reading_started >= soak_end:
                    final_logs = logs_ok
                logs_due = time.time() + logs_every
            now = time.time()
            if now >= soak_end and metrics_ok and covered and logs_ok and final_logs:
                return "PASS", f"soaked {now - started:.0f} s at {step.percent} %"
            if now >= hard_end:
                what = missing or "the evidence the checks need"
                return "NOT VERIFIED", f"no verdict after {now - started:.0f} s (max soak): {what}"
            if self.tty or now - last_line >= CI_PROGRESS_EVERY:
                self.write(self._progress(step, now, soak_end), False)
                last_line = now
            wake = min(next_probe, logs_due, soak_end if now < soak_end else math.inf, hard_end)
            time.sleep(max(0.05, min(wake - time.time(), interval)))

    def _progress(self, step: Any, now: float, soak_end: float) -> str:
        parts = [
            f"revgate rollout: step {step.index + 1}/{len(self.plan.steps)} ({step.percent} %)",
            f"{now - step.started:.0f}/{self.plan.soaks[step.index]:.0f} s",
            f"probes {step.probes - step.probes_failed} passed, {step.probes_failed} failed",
        ]
        if self.metrics is not None:
            parts.append(f"{step.requests_seen or 0} requests seen in Monitoring")
            if step.error_rate is not None:
                parts.append(f"error rate {step.error_rate:.1%}")
        if now > soak_end:
            parts.append("soak over, waiting for evidence")
        return ", ".join(parts)

    def _run(self, items: list[pytest.Item]) -> Seen:
        """Run the checks once, as the gate ran them; stop at the first gating failure."""
        from _pytest.runner import runtestprotocol

        worst = Seen()
        for i, item in enumerate(items):
            nextitem = items[i + 1] if i + 1 < len(items) else None
            reports = runtestprotocol(item, log=False, nextitem=nextitem)
            failed = next((r for r in reports if is_gating_failure(r)), None)
            if failed is not None:
                if nextitem is not None:
                    self.session._setupstate.teardown_exact(None)  # noqa: SLF001 - the rest of the group is not run
                return Seen("fail", item.nodeid.rsplit("::", 1)[-1], _message(failed))
            skipped = next((r for r in reports if is_not_verified(r)), None)
            if skipped is not None and worst.verdict == "pass":
                worst = Seen("not-verified", item.nodeid.rsplit("::", 1)[-1], _message(skipped).removeprefix("NOT VERIFIED: "))
        return worst

    def _changed(self, expected: dict[str, int], latest: str) -> str:
        """Why the service is no longer as the rollout left it ('' when it is, or could not be read)."""
        from .rollback import cloudrun
        from .rollback.traffic import describe_traffic, serving

        try:
            fresh = cloudrun.get_service(self.services, self.deployment.service_name)
        except Exception:  # noqa: BLE001 - read again at the next tick
            return ""
        newest = cloudrun.short_name(fresh.latest_created_revision or "")
        if newest and latest and newest != latest:
            return f"a new revision, {newest}, was deployed during the rollout"
        now = serving(cloudrun.traffic_of(fresh))
        if now != expected:
            return (
                f"the traffic changed during the rollout, not by revgate: it is {describe_traffic(cloudrun.traffic_of(fresh))}, "
                f"revgate had set {', '.join(f'{r} {p} %' for r, p in expected.items())}"
            )
        return ""

    # -- reports -------------------------------------------------------------------------------------

    def _log_step(self, step: Any, verdict: str, message: str) -> None:
        """The step as one check of the run: terminal, JUnit, JSON report; a failure starts the rollback."""
        nodeid = f"rollout::step[{step.index + 1}-{step.percent}%]"
        location = ("rollout", None, f"rollout step {step.index + 1}: {step.percent} %")
        keywords: dict[str, Any] = {"rollout": 1}
        duration = (step.ended or time.time()) - step.started
        common = {"nodeid": nodeid, "location": location, "keywords": keywords, "start": step.started,
                  "stop": step.ended or time.time()}
        props: list[tuple[str, object]] = [("revgate.rollout.percent", step.percent), ("revgate.rollout.probes", step.probes)]
        if verdict == "PASS":
            call = pytest.TestReport(outcome="passed", longrepr=None, when="call", duration=duration, user_properties=props, **common)
        elif verdict == "FAIL":
            call = pytest.TestReport(outcome="failed", longrepr=f"step {step.index + 1} ({step.percent} %): {message}",
                                     when="call", duration=duration, user_properties=props, **common)
        else:
            reason = f"NOT VERIFIED: step {step.index + 1} ({step.percent} %): {message}"
            call = pytest.TestReport(outcome="skipped", longrepr=("rollout", 0, f"Skipped: {reason}"), when="call",
                                     duration=duration, user_properties=[*props, NOT_VERIFIED_PROPERTY], **common)
        teardown = pytest.TestReport(outcome="passed", longrepr=None, when="teardown", **common)
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        hook.pytest_runtest_logreport(report=call)
        hook.pytest_runtest_logreport(report=teardown)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def _announce(self, title: str, lines: list[str]) -> None:
        plugin = self.config.pluginmanager.get_plugin("revgate-notify")
        if plugin is None or not hasattr(plugin, "announce"):
            return
        from .notify_formats import Message

        try:
            plugin.announce(Message(event="rollout-step", title=title, lines=lines,
                                    data={"rollout": self.record.to_dict(), "service": self.deployment.service}))
        except Exception:  # noqa: BLE001 - a notification never breaks the rollout
            pass

    # -- commands and state --------------------------------------------------------------------------

    def _keep_target(self) -> bool:
        section = self.settings.checklist.rollback
        return not (section is not None and section.promote_without_target)

    def _traffic_now(self) -> str:
        from .rollback import cloudrun
        from .rollback.traffic import describe_traffic

        try:
            return describe_traffic(cloudrun.traffic_of(cloudrun.get_service(self.services, self.deployment.service_name)))
        except Exception:  # noqa: BLE001
            return "it could not be read"

    def _on_command(self, step: Any) -> str:
        """The ``gcloud`` command that takes the next step by hand (the same split a promotion would plan)."""
        from .rollback import cloudrun
        from .rollback.plan import PlanError
        from .rollback.promote import plan_promotion
        from .rollback.record import gcloud_command

        nxt = self.plan.steps[step.index + 1] if step.index + 1 < len(self.plan.steps) else step.percent
        try:
            traffic = cloudrun.traffic_of(cloudrun.get_service(self.services, self.deployment.service_name))
            plan = plan_promotion(traffic, revision=self.record.revision, revisions=self.deployment.revisions, percent=nxt,
                                  keep_target=False)
        except (PlanError, Exception):  # noqa: BLE001 - the command is advice; the simplest form then
            return gcloud_command(self.deployment, {self.record.revision: 100}) if nxt == 100 else (
                f"gcloud run services update-traffic {self.deployment.service} --region {self.deployment.region} "
                f"--project {self.deployment.project} --to-revisions {self.record.revision}={nxt}")
        return gcloud_command(self.deployment, dict(plan.split))

    def _back_command(self) -> str:
        from .rollback.record import gcloud_command

        split = dict(self.deployment.rollback_target.split) or {
            rev: pct for rev, pct in self._before().items() if rev != self.record.revision
        }
        if not split:
            return "no revision to roll back to is known"
        return gcloud_command(self.deployment, split)

    def _before(self) -> dict[str, int]:
        from .rollback.traffic import serving

        return serving(self.deployment.traffic_before)

    def _clear_state(self) -> None:
        """Remove the rollout's annotation once it completed (an annotations-only update, with the etag)."""
        from .rollback import cloudrun
        from .rollback.rollout import STATE_KEY

        for _ in range(3):
            try:
                fresh = cloudrun.get_service(self.services, self.deployment.service_name)
                annotations = {k: v for k, v in fresh.annotations.items() if k != STATE_KEY}
                if len(annotations) == len(fresh.annotations):
                    self.record.state_cleared = True
                    return
                operation = cloudrun.update_service(
                    self.services, cloudrun.annotations_request(fresh.name, fresh.etag, annotations),
                    validate_only=False, mask=cloudrun.MARKS_MASK,
                )
                cloudrun.wait_operation(self.services, operation, timeout=30)
                self.record.state_cleared = True
                return
            except Exception:  # noqa: BLE001 - an etag conflict or a refusal: read again, at most 3 times
                continue
        self.record.state_cleared = False


@dataclass
class _Judged:
    seen: Seen
    requests: int | None = None
    error_rate: float | None = None
    latest: float | None = None


class _MetricsWatch:
    """The ``[metrics]`` checks over a step's window, without waiting: one judgement per call."""

    def __init__(self, *, queries: Any, section: Any, limits: list[Any], baselines: list[Any], selected: set[str], revision: str) -> None:
        self.queries = queries
        self.section = section
        self.limits = limits
        self.baselines = baselines
        self.selected = selected
        self.revision = revision

    @classmethod
    def create(cls, config: pytest.Config, deployment: Any, checklist: Any, deferred: list[pytest.Item]) -> _MetricsWatch | None:
        if checklist.metrics is None or not deferred:
            return None
        from .google_clients import metric_client
        from .metrics import Scope
        from .metrics_query import Queries

        limits, baselines, selected = [], [], set()
        for item in deferred:
            params = getattr(getattr(item, "callspec", None), "params", {})
            if "metric_limit" in params:
                limits.append(params["metric_limit"])
                selected.add(params["metric_limit"].id)
            if "baseline_limit" in params:
                baselines.append(params["baseline_limit"])
                selected.add("baseline:" + params["baseline_limit"].id)
        (revision,) = deployment.revisions_under_test
        scope = Scope(project=deployment.project, region=deployment.region, service=deployment.service,
                      revisions=(revision,), baseline=deployment.previous_revision if baselines else None)
        queries = Queries(metric_client(), scope, timeout=10.0, retry_deadline=20.0)
        return cls(queries=queries, section=checklist.metrics, limits=limits, baselines=baselines, selected=selected,
                   revision=revision)

    def judge(self, since: float, now: float, *, baselines: bool = False) -> _Judged:
        """The limits over ``[since, now]`` (at least 60 s); with ``baselines``, the comparisons too."""
        from .metrics import MetricsOptions, MonitoringUnavailable, collect, judge_baseline, judge_limit
        from .metrics_query import Window
        from .target import SENT

        seconds = max(60, math.ceil(now - since))  # Cloud Monitoring's shortest alignment period is 60 s
        options = MetricsOptions(window=seconds, timeout=0.0, no_data="skip", warmup_requests=0)
        try:
            latest = self._latest(Window(math.ceil(now), seconds))
            data = collect(self.queries, metrics=self.section, options=options, progress=lambda line, final: None,
                           selected=self.selected)
        except MonitoringUnavailable as exc:
            return _Judged(Seen("not-verified", "metrics", str(exc)))
        # every request of the gate in the window is taken out here (its readiness retries, refusal
        # probes and logs probes among them), so the run-wide count of those is not taken out again
        own = sum(1 for at, status in list(SENT) if status and data.window.start - OWN_SLACK <= at <= data.window.end)
        data = dataclasses.replace(data, counts=self._without_own(data.counts, data.window), own={},
                                   own_described=f"{own} requests of the gate")
        requests = data.requests((self.revision,))
        errors = data.errors((self.revision,))
        judged = _Judged(Seen(), requests=requests, error_rate=errors / requests if requests else None, latest=latest)
        for limit in self.limits:
            verdict = judge_limit(limit, data)
            if self._worse(judged, limit, verdict, f"test_metric[{limit.id}]"):
                return judged
        for limit in self.baselines if baselines else []:
            verdict = judge_baseline(limit, self.section.baseline, data)
            if verdict.outcome == "skip":  # no previous revision: the comparison does not apply
                continue
            if self._worse(judged, limit, verdict, f"test_baseline[{limit.id}]"):
                return judged
        return judged

    @staticmethod
    def _worse(judged: _Judged, limit: Any, verdict: Any, name: str) -> bool:
        """Record a failing or inconclusive verdict; True when it fails the step."""
        if verdict.outcome == "fail" and not limit.advisory:
            judged.seen = Seen("fail", name, verdict.message)
            return True
        if verdict.outcome not in ("pass", "fail") and judged.seen.verdict == "pass":
            judged.seen = Seen("not-verified", name, verdict.message)
        return False

    def _without_own(self, counts: dict[str, dict[str, int]], window: Any) -> dict[str, dict[str, int]]:
        """The revision's counts with the gate's own requests of the window taken out, by status class."""
        from .target import SENT

        own: dict[str, int] = {}
        for at, status in list(SENT):
            if window.start - OWN_SLACK <= at <= window.end:
                klass = f"{status // 100}xx" if status else ""
                if klass:
                    own[klass] = own.get(klass, 0) + 1
        mine = dict(counts.get(self.revision, {}))
        for klass, n in own.items():
            if klass in mine:
                mine[klass] = max(0, mine[klass] - n)
        return {**counts, self.revision: mine}

    def _latest(self, window: Any) -> float | None:
        """The end of the newest visible ``request_count`` point of the revision in ``window`` (one raw query)."""
        from google.api_core.exceptions import GoogleAPICallError, RetryError
        from google.cloud import monitoring_v3

        from .google_clients import bounded_retry
        from .metrics import MonitoringUnavailable
        from .metrics_query import REQUEST_COUNT, revision_filter

        scope = self.queries.scope
        request = {
            "name": f"projects/{scope.project}",
            "filter": revision_filter(REQUEST_COUNT, scope, (self.revision,)),
            "interval": monitoring_v3.TimeInterval(start_time={"seconds": int(window.start)}, end_time={"seconds": int(window.end)}),
            "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        }
        latest: float | None = None
        try:
            for ts in self.queries.client.list_time_series(request=request, timeout=10.0, retry=bounded_retry(deadline=20.0)):
                for point in ts.points:
                    end = point.interval.end_time.timestamp()
                    latest = end if latest is None else max(latest, end)
        except (GoogleAPICallError, RetryError) as exc:
            raise MonitoringUnavailable(f"Cloud Monitoring could not list the request counts of {self.revision}: {exc}") from None
        return latest

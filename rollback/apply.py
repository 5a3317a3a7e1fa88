"""Sending the planned traffic to Cloud Run, and checking that it took.

:func:`send_plan` is the one mechanism behind both the rollback
(:func:`apply_rollback`) and the promotion (:func:`rollback.promote.promote`).
Each attempt starts from a fresh ``GetService`` and sends a traffic-only
update: ``UpdateServiceRequest(service=Service(name, etag, traffic),
update_mask=traffic)`` (``validate_only=True`` in dry-run), never the template,
so a deploy made during the run keeps its template and its tags. The fresh
service's ``etag`` and ``generation`` are compared locally with the pre-run
snapshot: when someone changed the service, the plan is made again from the
traffic it serves now (every tag it has now is kept), and for the rollback, if
the revision under test no longer serves traffic, someone already acted and
nothing is sent. The fresh read retries ABORTED, FAILED_PRECONDITION,
UNAVAILABLE and DEADLINE_EXCEEDED within its deadline
(:func:`rollback.cloudrun.read_service`). The revisions are listed again before
each plan, so a revision deleted during the run is never a target (and a
NOT_FOUND or INVALID_ARGUMENT answer naming a revision deleted since is
re-listed and re-planned); when that ListRevisions fails, the plan uses the
revisions known at start.

Cloud Run's answers, by kind:

- ABORTED and FAILED_PRECONDITION (the etag no longer matches: AIP-154 says
  ABORTED, older services answer FAILED_PRECONDITION): re-read, re-plan, at
  most :data:`MAX_ATTEMPTS` requests in all;
- UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN and RESOURCE_EXHAUSTED:
  retried for a bounded time (:data:`rollback.cloudrun.RETRY_DEADLINE`); a
  retried update that had taken effect is seen as ours (the traffic matches
  the plan), never as "someone already acted";
- anything else (ALREADY_EXISTS, INVALID_ARGUMENT, PERMISSION_DENIED, ...) is
  final: one line quoting Cloud Run's message; the caller prints the
  ``gcloud run services update-traffic`` command that finishes by hand. Except
  when the update carried the marks (``traffic,annotations``): then it is sent
  again at once with the traffic alone, and the outcome says the marks could
  not be written (``marks_error``): the rollback never fails because of them.

Once the operation is done (or has failed), the service is read again: a
FAILED ``terminal_condition`` ends it with Cloud Run's own message; otherwise
the reads go on (bounded) until ``traffic_statuses`` match the plan.

It never raises for what Cloud Run answers: every way it can end is an
:class:`Outcome` whose ``status`` says which.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryError as TenacityRetryError
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from . import cloudrun
from .deployment import Deployment
from .marks import FAILED_KEY, LAST_SERVING_KEY, Marks, read_marks, with_marks
from .plan import NothingToShift, Plan, PlanError, plan_rollback
from .traffic import RevisionInfo, TrafficEntry, describe_traffic, serving

__all__ = ["MAX_ATTEMPTS", "OPERATION_TIMEOUT", "Outcome", "Planner", "Settled", "apply_rollback", "send_plan"]

MAX_ATTEMPTS = 4
"""UpdateService attempts at most: the first plus three re-plans after etag conflicts."""
OPERATION_TIMEOUT = 120.0
"""Seconds allowed to the update operation to complete."""
LIST_DEADLINE = 3.0
"""Seconds the re-listing before a plan may take; past them, the revisions known at start are used."""
CONFIRM_TIMEOUT = 15.0
"""Seconds allowed to ``traffic_statuses`` to show the plan once the operation is done."""

# Outcome statuses
DONE = "done"
VALIDATED = "validated"
NOTHING_TO_SHIFT = "nothing-to-shift"
ALREADY_ACTED = "already-acted"
FAILED = "failed"

Planner = Callable[[tuple[TrafficEntry, ...], tuple[RevisionInfo, ...], Marks], Plan]
"""``planner(traffic, revisions, marks)``: the plan to send; raises PlanError (NothingToShift: nothing to send)."""
Annotate = Callable[[dict[str, str], Plan], dict[str, str]]
"""``annotate(annotations read, plan)``: the whole annotation map to send with the plan's traffic."""
Settled = Callable[[tuple[TrafficEntry, ...]], "str | None"]
"""``settled(traffic)``, asked after an etag conflict: why there is nothing more to send, or None to re-plan."""


@dataclass(kw_only=True)
class Outcome:
    status: str
    message: str
    plan: Plan | None = None
    traffic_after: tuple[TrafficEntry, ...] = ()
    etag: str = ""
    """The etag of the last UpdateService request sent."""
    attempts: int = 0
    request_sent_at: float | None = None
    """``time.monotonic()`` when the first UpdateService request was sent."""
    done_at: float | None = None
    """``time.monotonic()`` when the operation completed (or the rollback stopped)."""
    errors: list[str] = field(default_factory=list)
    operation: str = ""
    """The name of the last update operation Cloud Run answered."""
    marks: dict[str, str] = field(default_factory=dict)
    """revgate's annotations as sent with the traffic (:mod:`rollback.marks`)."""
    traffic_known: bool = False
    """``traffic_after`` was read from Cloud Run after the update was sent."""
    marks_written: bool = False
    """``marks`` were accepted by Cloud Run (with the traffic, or alone: :mod:`rollback.marking`)."""
    marks_error: str = ""
    """Why the marks could not be written (``CODE: message``), or ''."""
    plan_failed: bool = False
    """The service was read, but no traffic could be planned (PlanError)."""
    revisions_seen: tuple[str, ...] | None = None
    """The revisions the last successful ListRevisions returned (None when none succeeded)."""

    @property
    def ok(self) -> bool:
        return self.status in (DONE, VALIDATED, ALREADY_ACTED, NOTHING_TO_SHIFT)


def _matches(traffic: tuple[TrafficEntry, ...], plan: Plan) -> bool:
    planned_tags = {(e.tag, e.revision) for e in plan.traffic if e.tag}
    actual_tags = {(e.tag, e.revision) for e in traffic if e.tag}
    return serving(traffic) == plan.split and planned_tags <= actual_tags


def _confirm(client: Any, name: str, plan: Plan) -> tuple[bool, tuple[TrafficEntry, ...], str | None]:
    """Re-read the service until its traffic_statuses match the plan (bounded).

    ``(matched, traffic read, failure)``: ``failure`` is the message of a FAILED
    ``terminal_condition`` seen while the traffic does not match the plan.
    """
    seen: list[tuple[TrafficEntry, ...]] = []
    failure: list[str] = []

    @retry(stop=stop_after_delay(CONFIRM_TIMEOUT), wait=wait_fixed(0.3), retry=retry_if_result(lambda ok: ok is False))
    def read() -> bool | None:
        svc = cloudrun.get_service(client, name)
        seen.append(cloudrun.traffic_of(svc))
        if svc.reconciling:
            return False
        if _matches(seen[-1], plan):
            return True
        why = cloudrun.terminal_failure(svc)
        if why is not None:
            failure.append(why)
            return None
        return False

    try:
        ok = read()
    except TenacityRetryError:
        ok = False
    return bool(ok), seen[-1], failure[0] if failure else None


def _changed(service: Any, etag: str, generation: int) -> bool:
    return service.etag != etag or (generation and int(service.generation) != generation)


def _known_traffic(client: Any, name: str, plan: Plan | None) -> tuple[tuple[TrafficEntry, ...] | None, bool]:
    """After an error once an update was sent: re-read the service (bounded, errors tolerated) until its
    traffic is known and settled; ``(traffic or None when it could not be read, matches the plan)``."""
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    traffic: tuple[TrafficEntry, ...] | None = None
    while True:
        try:
            svc = cloudrun.get_service(client, name)
            traffic = cloudrun.traffic_of(svc)
            matched = plan is not None and _matches(traffic, plan)
            if matched or not svc.reconciling or time.monotonic() >= deadline:
                return traffic, matched
        except Exception:  # noqa: BLE001 - any failure to read: try again within the bound
            if time.monotonic() >= deadline:
                return traffic, False
        time.sleep(0.3)


def send_plan(
    deployment: Deployment,
    *,
    planner: Planner,
    settled: Settled | None = None,
    annotate: Annotate | None = None,
    services: Any,
    revisions_api: Any,
    dry_run: bool,
    log: Callable[[str], None] = lambda line: None,
    outcome: Outcome | None = None,
) -> Outcome:
    """Plan with ``planner`` and apply (or validate) the plan; see the module docstring.

    ``outcome``, when given, is filled in place as the attempts go (what was planned, the
    etag, when the request was sent, the operation's name): a caller that cannot wait for
    the end (an interrupted run) still knows what was sent.

    Every attempt reads the service afresh (the session-start snapshot is never
    sent). ``annotate(annotations, plan)`` gives the whole
    annotation map to send with the traffic (``update_mask`` =
    ``traffic,annotations``), or None for a traffic-only update. Ends ``done``
    (traffic_statuses match the plan), ``validated`` (dry-run),
    ``nothing-to-shift`` (the planner raised NothingToShift), ``already-acted``
    (``settled`` answered a message once the service had changed) or ``failed``.
    Once a request was sent, any error ends with the traffic re-read
    (:func:`_known_traffic`): the outcome states what Cloud Run serves, and a
    service that serves the plan is ``done`` whatever the error was.
    """
    from google.api_core import exceptions as gexc

    name = deployment.service_name
    basis_etag, basis_generation = deployment.etag, deployment.generation
    traffic, revisions = deployment.traffic_before, deployment.revisions
    if outcome is None:
        outcome = Outcome(status=FAILED, message="", etag=deployment.etag)
    outcome.etag = outcome.etag or deployment.etag

    def fail(message: str, error: str | None = None) -> Outcome:
        outcome.status, outcome.message = FAILED, message
        outcome.errors.append(error or message)
        if outcome.request_sent_at is not None and not dry_run:
            known, matched = _known_traffic(services, name, outcome.plan)
            if known is not None:
                outcome.traffic_after = known
                outcome.traffic_known = True
            if matched and outcome.plan is not None:
                outcome.status = DONE
                outcome.message = f"traffic as planned: {describe_traffic(known or ())} (after: {message})"
                if outcome.done_at is None:
                    outcome.done_at = time.monotonic()
                return outcome
            if known is not None:
                outcome.message = f"{message}; the service now serves {describe_traffic(known)}"
            else:
                outcome.message = f"{message}; the traffic now could not be read"
        return outcome

    marks_refused = False
    refused_marks: dict[str, str] = {}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            fresh = cloudrun.read_service(services, name, log=log)
        except gexc.RetryError as exc:
            return fail(f"the Cloud Run Admin API kept failing for {cloudrun.RETRY_DEADLINE:g} s while reading {name}: {exc.cause or exc}")
        except gexc.GoogleAPICallError as exc:
            return fail(f"cannot read {name} before sending the traffic: {_code(exc)}: {exc.message}")
        if _changed(fresh, basis_etag, basis_generation):
            traffic = cloudrun.traffic_of(fresh)
            basis_etag, basis_generation = fresh.etag, int(fresh.generation)
            if outcome.plan is not None and not dry_run and _matches(traffic, outcome.plan):
                # an earlier request of ours took effect (its answer was lost or retried)
                if refused_marks and all(fresh.annotations.get(k) == v for k, v in refused_marks.items()):
                    # the request with the marks was carried out after all: they are written
                    outcome.marks, outcome.marks_written, outcome.marks_error = dict(refused_marks), True, ""
                outcome.done_at = outcome.done_at or time.monotonic()
                outcome.traffic_after = traffic
                outcome.status = DONE
                outcome.message = f"traffic as planned: {describe_traffic(traffic)}"
                return outcome
            why = settled(traffic) if settled is not None else None
            if why is not None:
                outcome.done_at = time.monotonic()
                outcome.traffic_after = traffic
                outcome.status, outcome.message = ALREADY_ACTED, why
                return outcome
            log(f"the service changed during the run; planning from {describe_traffic(traffic)}")
        revisions = _relist(revisions_api, name, known=revisions, start=deployment.revisions, outcome=outcome, log=log)
        marks = read_marks(fresh.annotations)
        try:
            plan = planner(traffic, revisions, marks)
        except NothingToShift as exc:
            outcome.status, outcome.message, outcome.traffic_after = NOTHING_TO_SHIFT, str(exc), traffic
            return outcome
        except PlanError as exc:
            outcome.plan_failed = True
            return fail(str(exc))
        outcome.plan, outcome.attempts, outcome.etag = plan, attempt, fresh.etag
        wanted = annotate(dict(fresh.annotations), plan) if annotate is not None and not marks_refused else None
        # the marks already on the service as wanted: a traffic-only update (they count as written once it is)
        annotations = None if wanted is None or wanted == dict(fresh.annotations) else wanted
        outcome.marks = {k: v for k, v in (wanted or {}).items() if k in (FAILED_KEY, LAST_SERVING_KEY)}
        log(f"attempt {attempt}: {'validating' if dry_run else 'sending'} {plan.describe()} with etag {fresh.etag}")
        if outcome.request_sent_at is None:
            outcome.request_sent_at = time.monotonic()
        operation = None
        replan = False
        while operation is None:
            mask = cloudrun.TRAFFIC_AND_MARKS_MASK if annotations is not None else cloudrun.TRAFFIC_MASK
            try:
                operation = cloudrun.update_service(
                    services,
                    cloudrun.traffic_request(fresh.name or name, fresh.etag, plan.traffic, annotations),
                    validate_only=dry_run,
                    mask=mask,
                )
            except (gexc.Aborted, gexc.FailedPrecondition) as exc:
                outcome.errors.append(f"attempt {attempt}: etag conflict: {_code(exc)}: {exc.message}")
                log(f"etag conflict ({_code(exc)}): re-reading the service")
                replan = True
                break
            except gexc.RetryError as exc:
                return fail(
                    f"the Cloud Run Admin API kept failing for {cloudrun.RETRY_DEADLINE:g} s: {exc.cause or exc}",
                    f"attempt {attempt}: {exc}",
                )
            except gexc.GoogleAPICallError as exc:
                if isinstance(exc, (gexc.NotFound, gexc.InvalidArgument)) and _target_gone(
                    revisions_api, name, plan, log=log
                ):
                    outcome.errors.append(f"attempt {attempt}: {_code(exc)}: {exc.message}")
                    replan = True  # re-listed and re-planned at the next attempt
                    break
                if annotations is not None:
                    # the rollback never fails because of its marks: the traffic alone, at once, same etag
                    marks_refused, refused_marks = True, dict(outcome.marks)
                    outcome.marks, outcome.marks_error = {}, f"{_code(exc)}: {exc.message}"
                    outcome.errors.append(
                        f"attempt {attempt}: {_code(exc)}: {exc.message} (the update with the marks was refused: "
                        "sending the traffic alone)"
                    )
                    log(f"the update with the marks was refused ({_code(exc)}): sending the traffic alone")
                    annotations = None
                    continue
                return fail(f"Cloud Run refused the traffic update ({_code(exc)}): {exc.message}", f"attempt {attempt}: {_code(exc)}: {exc.message}")
        if replan:
            continue
        outcome.marks_written = bool(outcome.marks) and not dry_run
        outcome.operation = getattr(getattr(operation, "operation", None), "name", "") or ""
        log(f"attempt {attempt}: operation {outcome.operation or '(unnamed)'} sent")
        operation_error: str | None = None
        try:
            cloudrun.wait_operation(services, operation, timeout=OPERATION_TIMEOUT)
        except concurrent.futures.TimeoutError as exc:
            return fail(f"the update operation did not complete: {exc}", f"attempt {attempt}: {exc}")
        except gexc.RetryError as exc:
            return fail(f"the update operation could not be followed: {exc.cause or exc}", f"attempt {attempt}: {exc}")
        except gexc.GoogleAPICallError as exc:
            operation_error = f"{_code(exc)}: {exc.message}"
            outcome.errors.append(f"attempt {attempt}: the update operation failed: {operation_error}")
        outcome.done_at = time.monotonic()
        try:
            if dry_run:
                outcome.traffic_after = cloudrun.traffic_of(cloudrun.read_service(services, name))
                if operation_error:
                    return fail(f"dry-run: Cloud Run refused the plan {plan.describe()}: {operation_error}")
                outcome.status = VALIDATED
                outcome.message = f"dry-run: Cloud Run accepted the plan {plan.describe()} (validate_only); nothing changed"
                return outcome
            matched, outcome.traffic_after, failure = _confirm(services, name, plan)
            outcome.traffic_known = True
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            return fail(f"the update completed but the service could not be re-read: {exc}")
        if matched:
            outcome.status, outcome.message = DONE, f"traffic as planned: {describe_traffic(outcome.traffic_after)}"
            return outcome
        if failure or operation_error:
            return fail(
                f"Cloud Run could not apply the traffic: {failure or operation_error} "
                f"(serving {describe_traffic(outcome.traffic_after)})"
            )
        return fail(
            f"the update completed but traffic_statuses do not match the plan: "
            f"planned {plan.describe()}, serving {describe_traffic(outcome.traffic_after)}"
        )
    return fail(f"the service kept changing: {MAX_ATTEMPTS} etag conflicts in a row, gave up")


def _relist(
    revisions_api: Any,
    name: str,
    *,
    known: tuple[RevisionInfo, ...],
    start: tuple[RevisionInfo, ...],
    outcome: Outcome,
    log: Callable[[str], None],
) -> tuple[RevisionInfo, ...]:
    """The service's revisions now (a revision may have been deleted during the run, or created); when
    ListRevisions fails, the revisions known at start (the plan is still checked by Cloud Run)."""
    from google.api_core import exceptions as gexc

    try:
        revisions = tuple(cloudrun.list_revisions(revisions_api, name, deadline=LIST_DEADLINE))
    except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
        why = f"{_code(exc)}: {exc.message}" if isinstance(exc, gexc.GoogleAPICallError) else f"{exc.cause or exc}"
        line = f"ListRevisions failed ({why}): planned with the {len(start)} revisions known at start"
        if line not in outcome.errors:
            outcome.errors.append(line)
        log(line)
        return start
    gone = sorted({r.name for r in known} - {r.name for r in revisions})
    if gone:
        log(f"deleted since the run started: {', '.join(gone)}")
    outcome.revisions_seen = tuple(r.name for r in revisions)
    return revisions


def _target_gone(revisions_api: Any, name: str, plan: Plan, *, log: Callable[[str], None]) -> bool:
    """After NOT_FOUND or INVALID_ARGUMENT: is a planned revision gone (deleted since it was listed)?"""
    from google.api_core import exceptions as gexc

    try:
        now = {r.name for r in cloudrun.list_revisions(revisions_api, name, deadline=LIST_DEADLINE)}
    except (gexc.GoogleAPICallError, gexc.RetryError):
        return False
    gone = [rev for rev in plan.split if rev not in now]
    if gone:
        log(f"{', '.join(gone)} no longer exists: re-listing and re-planning")
    return bool(gone)


def _code(exc: Any) -> str:
    """``ABORTED``, ``INVALID_ARGUMENT``, ...: the gRPC status name of a GoogleAPICallError."""
    code = getattr(exc, "grpc_status_code", None)
    return code.name if code is not None else type(exc).__name__


def apply_rollback(
    deployment: Deployment,
    service: Any,
    *,
    services: Any,
    revisions_api: Any,
    dry_run: bool,
    log: Callable[[str], None] = lambda line: None,
    outcome: Outcome | None = None,
) -> Outcome:
    """Plan the rollback from the snapshot ``service`` and apply (or validate) it with :func:`send_plan`."""
    under_test = deployment.revisions_under_test
    listed: list[tuple[RevisionInfo, ...]] = [deployment.revisions]

    def planner(traffic: tuple[TrafficEntry, ...], revisions: tuple[RevisionInfo, ...], marks: Marks) -> Plan:
        listed[0] = revisions
        return plan_rollback(
            traffic,
            under_test=under_test,
            revisions=revisions,
            previous=deployment.explicit_previous,
            failed=marks.failed,
            last_serving=marks.last_serving,
        )

    def annotate(annotations: dict[str, str], plan: Plan) -> dict[str, str]:
        return with_marks(annotations, failed=under_test, last_serving=plan.split, existing={r.name for r in listed[0]})

    def settled(traffic: tuple[TrafficEntry, ...]) -> str | None:
        if any(rev in serving(traffic) for rev in under_test):
            return None
        return (
            f"the traffic changed during the run and {', '.join(under_test)} no longer serves any: "
            f"someone already acted, nothing more sent (traffic now: {describe_traffic(traffic)})"
        )

    outcome = send_plan(
        deployment,
        planner=planner,
        settled=settled,
        annotate=annotate,
        services=services,
        revisions_api=revisions_api,
        dry_run=dry_run,
        log=log,
        outcome=outcome,
    )
    if outcome.status == DONE:
        outcome.message = f"traffic restored: {describe_traffic(outcome.traffic_after)}"
    if outcome.marks_error:
        outcome.message += (
            f"; the known-bad mark could not be written ({outcome.marks_error}): add {', '.join(under_test)} "
            f"to {FAILED_KEY} by hand"
        )
    return outcome

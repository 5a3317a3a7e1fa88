"""Sending the planned traffic to Cloud Run, and checking that it took.

:func:`send_plan` is the one mechanism behind both the rollback
(:func:`apply_rollback`) and the promotion (:func:`rollback.promote.promote`).
It plans from the pre-run snapshot and sends the full service resource with the
planned traffic and the snapshot's ``etag`` (``UpdateService``;
``validate_only=True`` in dry-run), with an explicit timeout and bounded retries
on UNAVAILABLE / DEADLINE_EXCEEDED. It then waits for the long-running
operation (polling ``GetOperation``), re-reads the service and checks that
``traffic_statuses`` match the plan.

On an etag conflict (ABORTED / FAILED_PRECONDITION, both ``Conflict``) it
re-reads the service and asks the caller whether the traffic it now serves
leaves anything to do. For the rollback: if the revision under test no longer
serves traffic, someone already acted and it stops (an earlier attempt of ours
whose answer was lost to UNAVAILABLE looks the same, and ends the same: nothing
more to send). Otherwise it re-plans from what it read, at most
:data:`MAX_ATTEMPTS` times.

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
from .plan import NothingToShift, Plan, PlanError, plan_rollback
from .traffic import RevisionInfo, TrafficEntry, describe_traffic, serving

__all__ = ["MAX_ATTEMPTS", "OPERATION_TIMEOUT", "Outcome", "Planner", "Settled", "apply_rollback", "send_plan"]

MAX_ATTEMPTS = 4
"""UpdateService attempts at most: the first plus three re-plans after etag conflicts."""
OPERATION_TIMEOUT = 120.0
"""Seconds allowed to the update operation to complete."""
CONFIRM_TIMEOUT = 15.0
"""Seconds allowed to ``traffic_statuses`` to show the plan once the operation is done."""

# Outcome statuses
DONE = "done"
VALIDATED = "validated"
NOTHING_TO_SHIFT = "nothing-to-shift"
ALREADY_ACTED = "already-acted"
FAILED = "failed"

Planner = Callable[[tuple[TrafficEntry, ...], tuple[RevisionInfo, ...]], Plan]
"""``planner(traffic, revisions)``: the plan to send; raises PlanError (NothingToShift: nothing to send)."""
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

    @property
    def ok(self) -> bool:
        return self.status in (DONE, VALIDATED, ALREADY_ACTED, NOTHING_TO_SHIFT)


def _matches(traffic: tuple[TrafficEntry, ...], plan: Plan) -> bool:
    planned_tags = {(e.tag, e.revision) for e in plan.traffic if e.tag}
    actual_tags = {(e.tag, e.revision) for e in traffic if e.tag}
    return serving(traffic) == plan.split and planned_tags <= actual_tags


def _confirm(client: Any, name: str, plan: Plan) -> tuple[bool, tuple[TrafficEntry, ...]]:
    """Re-read the service until its traffic_statuses match the plan (bounded); (matched, traffic read)."""
    seen: list[tuple[TrafficEntry, ...]] = []

    @retry(stop=stop_after_delay(CONFIRM_TIMEOUT), wait=wait_fixed(0.3), retry=retry_if_result(lambda ok: not ok))
    def read() -> bool:
        svc = cloudrun.get_service(client, name)
        seen.append(cloudrun.traffic_of(svc))
        return not svc.reconciling and _matches(seen[-1], plan)

    try:
        return read(), seen[-1]
    except TenacityRetryError:
        return False, seen[-1]


def send_plan(
    deployment: Deployment,
    service: Any,
    *,
    planner: Planner,
    settled: Settled | None = None,
    services: Any,
    revisions_api: Any,
    dry_run: bool,
    log: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Plan with ``planner`` from the snapshot ``service`` and apply (or validate) the plan; see the module docstring.

    Ends ``done`` (traffic_statuses match the plan), ``validated`` (dry-run),
    ``nothing-to-shift`` (the planner raised NothingToShift), ``already-acted``
    (``settled`` answered a message after a conflict) or ``failed``. A failed
    outcome has ``done_at`` set only when the update operation completed.
    """
    from google.api_core import exceptions as gexc

    traffic = deployment.traffic_before
    revisions = deployment.revisions
    outcome = Outcome(status=FAILED, message="", etag=service.etag)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            plan = planner(traffic, revisions)
        except NothingToShift as exc:
            outcome.status, outcome.message, outcome.traffic_after = NOTHING_TO_SHIFT, str(exc), traffic
            return outcome
        except PlanError as exc:
            outcome.status, outcome.message = FAILED, str(exc)
            outcome.errors.append(str(exc))
            return outcome
        outcome.plan, outcome.attempts, outcome.etag = plan, attempt, service.etag
        log(f"attempt {attempt}: {'validating' if dry_run else 'sending'} {plan.describe()} with etag {service.etag}")
        if outcome.request_sent_at is None:
            outcome.request_sent_at = time.monotonic()
        try:
            operation = cloudrun.update_service(services, cloudrun.with_traffic(service, plan.traffic), validate_only=dry_run)
            cloudrun.wait_operation(services, operation, timeout=OPERATION_TIMEOUT)
            outcome.done_at = time.monotonic()
        except gexc.Conflict as exc:
            outcome.errors.append(f"attempt {attempt}: etag conflict: {type(exc).__name__}: {exc.message}")
            try:
                service = cloudrun.get_service(services, deployment.service_name)
                traffic = cloudrun.traffic_of(service)
                revisions = tuple(cloudrun.list_revisions(revisions_api, deployment.service_name))
            except (gexc.GoogleAPICallError, gexc.RetryError) as read_exc:
                outcome.errors.append(f"re-reading the service after the conflict: {read_exc}")
                outcome.status, outcome.message = FAILED, f"etag conflict, then the service could not be re-read: {read_exc}"
                return outcome
            why = settled(traffic) if settled is not None else None
            if why is not None:
                outcome.done_at = time.monotonic()
                outcome.traffic_after = traffic
                outcome.status, outcome.message = ALREADY_ACTED, why
                return outcome
            log(f"etag conflict: the service changed during the run; re-planning from {describe_traffic(traffic)}")
            continue
        except gexc.RetryError as exc:
            outcome.errors.append(f"attempt {attempt}: {exc}")
            outcome.status = FAILED
            outcome.message = f"the Cloud Run Admin API kept failing for {cloudrun.RETRY_DEADLINE:g} s: {exc.cause or exc}"
            return outcome
        except gexc.GoogleAPICallError as exc:
            outcome.errors.append(f"attempt {attempt}: {type(exc).__name__}: {exc.message}")
            outcome.status, outcome.message = FAILED, f"UpdateService failed: {type(exc).__name__}: {exc.message}"
            return outcome
        except concurrent.futures.TimeoutError as exc:
            outcome.errors.append(f"attempt {attempt}: {exc}")
            outcome.status, outcome.message = FAILED, f"the update operation did not complete: {exc}"
            return outcome
        try:
            if dry_run:
                outcome.traffic_after = cloudrun.traffic_of(cloudrun.get_service(services, deployment.service_name))
                outcome.status = VALIDATED
                outcome.message = f"dry-run: Cloud Run accepted the plan {plan.describe()} (validate_only); nothing changed"
                return outcome
            matched, outcome.traffic_after = _confirm(services, deployment.service_name, plan)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            outcome.errors.append(f"re-reading the service after the update: {exc}")
            outcome.status, outcome.message = FAILED, f"the update completed but the service could not be re-read: {exc}"
            return outcome
        if matched:
            outcome.status, outcome.message = DONE, f"traffic as planned: {describe_traffic(outcome.traffic_after)}"
        else:
            outcome.status = FAILED
            outcome.message = (
                f"the update completed but traffic_statuses do not match the plan: "
                f"planned {plan.describe()}, serving {describe_traffic(outcome.traffic_after)}"
            )
            outcome.errors.append(outcome.message)
        return outcome
    outcome.status = FAILED
    outcome.message = f"the service kept changing: {MAX_ATTEMPTS} etag conflicts in a row, gave up"
    return outcome


def apply_rollback(
    deployment: Deployment,
    service: Any,
    *,
    services: Any,
    revisions_api: Any,
    dry_run: bool,
    log: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Plan the rollback from the snapshot ``service`` and apply (or validate) it with :func:`send_plan`."""
    under_test = deployment.revisions_under_test

    def planner(traffic: tuple[TrafficEntry, ...], revisions: tuple[RevisionInfo, ...]) -> Plan:
        return plan_rollback(traffic, under_test=under_test, revisions=revisions, previous=deployment.explicit_previous)

    def settled(traffic: tuple[TrafficEntry, ...]) -> str | None:
        if any(rev in serving(traffic) for rev in under_test):
            return None
        return (
            f"the traffic changed during the run and {', '.join(under_test)} no longer serves any: "
            f"someone already acted, nothing more sent (traffic now: {describe_traffic(traffic)})"
        )

    outcome = send_plan(
        deployment,
        service,
        planner=planner,
        settled=settled,
        services=services,
        revisions_api=revisions_api,
        dry_run=dry_run,
        log=log,
    )
    if outcome.status == DONE:
        outcome.message = f"traffic restored: {describe_traffic(outcome.traffic_after)}"
    return outcome

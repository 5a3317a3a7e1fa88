"""The Cloud Run Admin API calls the rollback makes.

Every call passes an explicit ``timeout`` and a bounded ``retry``
(:func:`revgate.google_clients.bounded_retry`); callers catch
``GoogleAPICallError`` and ``RetryError`` (which is not one) separately.
The ``run_v2`` import is lazy: a run without ``--service`` never loads it.
"""

from __future__ import annotations

import time
from typing import Any

from revgate.google_clients import bounded_retry

from .traffic import LATEST, REVISION, RevisionInfo, TrafficEntry

__all__ = [
    "CALL_TIMEOUT",
    "RETRY_DEADLINE",
    "annotations_request",
    "get_service",
    "list_revisions",
    "read_service",
    "short_name",
    "terminal_failure",
    "traffic_of",
    "traffic_request",
    "update_service",
    "wait_operation",
]

TRAFFIC_MASK = ("traffic",)
"""A traffic-only update: ``UpdateServiceRequest.update_mask.paths``."""
TRAFFIC_AND_MARKS_MASK = ("traffic", "annotations")
"""The traffic and revgate's marks (:mod:`rollback.marks`): the only fields revgate ever writes."""
MARKS_MASK = ("annotations",)
"""revgate's marks alone, when the rollback sends no traffic (:mod:`rollback.marking`)."""

CALL_TIMEOUT = 10.0
"""Seconds allowed to one Admin API call."""
RETRY_DEADLINE = 20.0
"""Seconds during which UNAVAILABLE / DEADLINE_EXCEEDED answers are retried."""


def short_name(name: str) -> str:
    """``projects/P/locations/R/services/S/revisions/REV`` -> ``REV``."""
    return name.rsplit("/", 1)[-1]


def get_service(client: Any, name: str) -> Any:
    return client.get_service(name=name, timeout=CALL_TIMEOUT, retry=bounded_retry(deadline=RETRY_DEADLINE))


def read_service(client: Any, name: str, *, deadline: float = RETRY_DEADLINE, log: Any = None) -> Any:
    """GetService for a rollback that must not give up on one bad answer: ABORTED, FAILED_PRECONDITION,
    UNAVAILABLE and DEADLINE_EXCEEDED are retried (backoff 0.1 s to 1 s) until ``deadline`` seconds
    have passed, then the last error is raised (``RetryError`` when the client's own retry ran out).

    A read changes nothing, so retrying it is always safe. AIP-194 names UNAVAILABLE as the code to
    retry; gRPC's status code guide says ABORTED means "retry at a higher level" (a concurrency
    conflict) and FAILED_PRECONDITION "do not retry until the system state has been explicitly fixed",
    but on a read during a rollback either is most often the same passing moment (a concurrent change),
    so they get the same bounded retries: a read that keeps failing still ends the rollback, with the
    command that finishes it by hand (grpc.github.io/grpc/core/md_doc_statuscodes.html, google.aip.dev/194)."""
    from google.api_core import exceptions as gexc

    transient = (gexc.Aborted, gexc.FailedPrecondition, gexc.ServiceUnavailable, gexc.DeadlineExceeded)
    end = time.monotonic() + deadline
    pause = 0.1
    while True:
        try:
            return get_service(client, name)
        except transient as exc:
            if time.monotonic() + pause >= end:
                raise
            if log is not None:
                code = getattr(exc, "grpc_status_code", None)
                log(f"reading {name} answered {code.name if code is not None else type(exc).__name__}: retrying in {pause:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def list_revisions(client: Any, service_name: str, *, deadline: float = RETRY_DEADLINE) -> list[RevisionInfo]:
    """Every revision of the service, newest first (transient errors retried for ``deadline`` seconds)."""
    from google.cloud import run_v2

    pager = client.list_revisions(
        request=run_v2.ListRevisionsRequest(parent=service_name, page_size=100),
        timeout=min(CALL_TIMEOUT, deadline),
        retry=bounded_retry(deadline=deadline),
    )
    out = []
    for rev in pager:
        ready, reason = False, "no Ready condition"
        for cond in rev.conditions:
            if cond.type_ == "Ready":
                ready = cond.state == run_v2.Condition.State.CONDITION_SUCCEEDED
                reason = "" if ready else (cond.message or run_v2.Condition.State(cond.state).name)
        out.append(
            RevisionInfo(name=short_name(rev.name), create_time=rev.create_time.timestamp(), ready=ready, reason=reason)
        )
    return sorted(out, key=lambda r: r.create_time, reverse=True)


def traffic_of(service: Any) -> tuple[TrafficEntry, ...]:
    """The service's ``traffic_statuses`` (what actually serves), LATEST resolved to its revision."""
    from google.cloud import run_v2

    latest = short_name(service.latest_ready_revision) if service.latest_ready_revision else ""
    out = []
    for status in service.traffic_statuses:
        is_latest = status.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
        out.append(
            TrafficEntry(
                revision=short_name(status.revision) if status.revision else latest,
                percent=int(status.percent),
                tag=status.tag,
                type=LATEST if is_latest else REVISION,
                uri=status.uri,
            )
        )
    return tuple(out)


def traffic_request(
    name: str, etag: str, entries: tuple[TrafficEntry, ...], annotations: dict[str, str] | None = None
) -> Any:
    """The ``Service`` body of a traffic update: ``name``, ``etag``, ``traffic`` (and the whole
    ``annotations`` map, read fresh, when revgate writes its marks), nothing else.

    Never the template: echoing a template read earlier would ask Cloud Run for
    that revision again (ALREADY_EXISTS when it differs, google-cloud-python#11870)
    or undo a deploy made in the meantime. Revisions are pinned (type REVISION).
    """
    from google.cloud import run_v2

    return run_v2.Service(
        name=name,
        etag=etag,
        traffic=[
            run_v2.TrafficTarget(
                type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
                revision=e.revision,
                percent=e.percent,
                tag=e.tag,
            )
            for e in entries
        ],
        annotations=dict(annotations) if annotations is not None else {},
    )


def annotations_request(name: str, etag: str, annotations: dict[str, str]) -> Any:
    """The ``Service`` body of a marks-only update (``update_mask`` = ``annotations``): ``name``,
    ``etag`` and the whole annotation map read fresh, nothing else."""
    from google.cloud import run_v2

    return run_v2.Service(name=name, etag=etag, annotations=dict(annotations))


def terminal_failure(service: Any) -> str | None:
    """The message of the service's ``terminal_condition`` when it is FAILED, else None."""
    from google.cloud import run_v2

    cond = service.terminal_condition
    if cond.state != run_v2.Condition.State.CONDITION_FAILED:
        return None
    if cond.message:
        return cond.message
    return f"terminal condition FAILED ({cond.reason.name})" if cond.reason else "terminal condition FAILED"


def update_service(client: Any, service: Any, *, validate_only: bool, mask: tuple[str, ...] = TRAFFIC_MASK) -> Any:
    """Send ``UpdateService`` with ``update_mask`` = ``mask`` (``traffic``, or ``traffic,annotations``);
    the long-running operation (not waited for)."""
    from google.cloud import run_v2
    from google.protobuf import field_mask_pb2

    return client.update_service(
        request=run_v2.UpdateServiceRequest(
            service=service,
            update_mask=field_mask_pb2.FieldMask(paths=list(mask)),
            validate_only=validate_only,
        ),
        timeout=CALL_TIMEOUT,
        retry=bounded_retry(deadline=RETRY_DEADLINE),
    )


def wait_operation(client: Any, operation: Any, *, timeout: float, poll: float = 0.2) -> Any:
    """Poll GetOperation (explicit timeout and retry on each call) until done, then return ``.result()``.

    Raises ``concurrent.futures.TimeoutError`` when the operation is not done within ``timeout``.
    """
    import concurrent.futures

    from google.longrunning import operations_pb2

    deadline = time.monotonic() + timeout
    name = operation.operation.name
    done = operation.operation.done
    while not done:
        if time.monotonic() >= deadline:
            raise concurrent.futures.TimeoutError(f"operation {name} not done within {timeout:g} s")
        time.sleep(poll)
        poll = min(poll * 1.5, 2.0)
        answer = client.get_operation(
            request=operations_pb2.GetOperationRequest(name=name),
            timeout=CALL_TIMEOUT,
            retry=bounded_retry(deadline=RETRY_DEADLINE),
        )
        done = answer.done
    return operation.result(timeout=max(1.0, deadline - time.monotonic()), retry=bounded_retry(deadline=RETRY_DEADLINE))

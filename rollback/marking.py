"""The known-bad mark written alone, when the rollback sends no traffic.

Every revision that failed a gate is marked in ``revgate.dev/failed-revisions``
(:mod:`rollback.marks`), not only the ones whose traffic was taken away: a
tag-only canary at 0 % (nothing to shift), one that someone rolled back by hand
during its gate (already acted), one for which no traffic could be planned.
Otherwise the next failing 100 % deploy could be rolled back to it.

The mark is a traffic-free update: ``UpdateService`` with ``update_mask`` =
``annotations``, the whole map of a fresh ``GetService`` with the names added,
and that read's ``etag``; on ABORTED or FAILED_PRECONDITION (the etag is stale)
the service is read again and the map made again, :data:`MARK_ATTEMPTS` times
at most. It never touches the traffic, and an error is reported, never raised.

``revgate.dev/last-serving`` follows changes made by hand: when the fresh
read's split differs from the recorded one and holds no revision known to be
bad (nor the one under test), that split is what served, and it is recorded.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from . import cloudrun
from .deployment import Deployment
from .marks import FAILED_KEY, LAST_SERVING_KEY, read_marks, with_marks
from .traffic import serving

__all__ = ["MARK_ATTEMPTS", "MarkResult", "last_serving_now", "write_marks"]

MARK_ATTEMPTS = 4
"""UpdateService attempts at most for the mark: the first plus three after etag conflicts."""
MARK_OPERATION_TIMEOUT = 30.0
"""Seconds allowed to the annotations update operation."""


@dataclass(kw_only=True)
class MarkResult:
    written: bool
    marks: dict[str, str] = field(default_factory=dict)
    """revgate's annotations as they are on the service afterwards (when written)."""
    error: str = ""
    """Why the mark could not be written, or ''."""
    attempts: int = 0


def last_serving_now(split: dict[str, int], recorded: dict[str, int], bad: Collection[str]) -> dict[str, int] | None:
    """The split to record as ``last-serving`` after a fresh read, or None to keep the recorded one."""
    if not split or split == recorded or set(split) & set(bad):
        return None
    return dict(split)


def write_marks(
    deployment: Deployment,
    *,
    services: Any,
    existing: Collection[str] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> MarkResult:
    """Mark the revisions under test as failed with an annotations-only update (see the module docstring)."""
    from google.api_core import exceptions as gexc

    name = deployment.service_name
    under_test = deployment.revisions_under_test
    for attempt in range(1, MARK_ATTEMPTS + 1):
        try:
            fresh = cloudrun.read_service(services, name, log=log)
        except gexc.RetryError as exc:
            return MarkResult(written=False, error=f"the service could not be read: {exc.cause or exc}", attempts=attempt - 1)
        except gexc.GoogleAPICallError as exc:
            return MarkResult(written=False, error=f"the service could not be read: {_code(exc)}: {exc.message}", attempts=attempt - 1)
        marks = read_marks(fresh.annotations)
        last = last_serving_now(serving(cloudrun.traffic_of(fresh)), marks.last_serving, {*marks.failed, *under_test})
        annotations = with_marks(fresh.annotations, failed=under_test, last_serving=last, existing=existing)
        ours = {k: v for k, v in annotations.items() if k in (FAILED_KEY, LAST_SERVING_KEY)}
        if annotations == dict(fresh.annotations):
            return MarkResult(written=True, marks=ours, attempts=attempt - 1)
        log(f"marking {', '.join(under_test)} failed ({FAILED_KEY}, update_mask annotations) with etag {fresh.etag}")
        try:
            operation = cloudrun.update_service(
                services,
                cloudrun.annotations_request(fresh.name or name, fresh.etag, annotations),
                validate_only=False,
                mask=cloudrun.MARKS_MASK,
            )
            cloudrun.wait_operation(services, operation, timeout=MARK_OPERATION_TIMEOUT)
        except (gexc.Aborted, gexc.FailedPrecondition) as exc:
            log(f"etag conflict while marking ({_code(exc)}): re-reading the service")
            continue
        except gexc.RetryError as exc:
            return MarkResult(written=False, error=f"{exc.cause or exc}", attempts=attempt)
        except gexc.GoogleAPICallError as exc:
            return MarkResult(written=False, error=f"{_code(exc)}: {exc.message}", attempts=attempt)
        except concurrent.futures.TimeoutError as exc:
            return MarkResult(written=False, error=str(exc), attempts=attempt)
        return MarkResult(written=True, marks=ours, attempts=attempt)
    return MarkResult(written=False, error=f"the service kept changing: {MARK_ATTEMPTS} etag conflicts in a row", attempts=MARK_ATTEMPTS)


def _code(exc: Any) -> str:
    code = getattr(exc, "grpc_status_code", None)
    return code.name if code is not None else type(exc).__name__

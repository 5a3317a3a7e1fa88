"""Construction of the Google API clients revgate uses.

With ``CLOUD_RUN_API_ENDPOINT`` / ``CLOUD_MONITORING_API_ENDPOINT`` / ``CLOUD_LOGGING_API_ENDPOINT`` set
(``host:port``), a client talks plaintext gRPC to that address (the local
sandbox); otherwise it is built exactly as in production (default transport,
Application Default Credentials). Everything after construction is the same
code path in both cases.

Every call made with these clients passes an explicit ``timeout`` and a
bounded ``retry`` (see :func:`bounded_retry`): the library defaults retry for
up to 75 s against a dead endpoint.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only
    from google.api_core.retry import Retry

__all__ = [
    "RUN_ENDPOINT_ENV",
    "MONITORING_ENDPOINT_ENV",
    "bounded_retry",
    "could_not_answer",
    "services_client",
    "revisions_client",
    "metric_client",
    "LOGGING_ENDPOINT_ENV",
    "logging_client",
]

RUN_ENDPOINT_ENV = "CLOUD_RUN_API_ENDPOINT"
MONITORING_ENDPOINT_ENV = "CLOUD_MONITORING_API_ENDPOINT"
LOGGING_ENDPOINT_ENV = "CLOUD_LOGGING_API_ENDPOINT"


def _channel(endpoint: str) -> Any:
    import grpc

    return grpc.insecure_channel(endpoint)


def services_client() -> Any:
    """A ``run_v2.ServicesClient`` (Cloud Run Admin API v2)."""
    from google.cloud import run_v2
    from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

    endpoint = os.environ.get(RUN_ENDPOINT_ENV)
    if endpoint:
        return run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=_channel(endpoint)))
    return run_v2.ServicesClient()


def revisions_client() -> Any:
    """A ``run_v2.RevisionsClient`` (Cloud Run Admin API v2)."""
    from google.cloud import run_v2
    from google.cloud.run_v2.services.revisions.transports import RevisionsGrpcTransport

    endpoint = os.environ.get(RUN_ENDPOINT_ENV)
    if endpoint:
        return run_v2.RevisionsClient(transport=RevisionsGrpcTransport(channel=_channel(endpoint)))
    return run_v2.RevisionsClient()


def metric_client() -> Any:
    """A ``monitoring_v3.MetricServiceClient`` (Cloud Monitoring API v3)."""
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.metric_service.transports import (
        MetricServiceGrpcTransport,
    )

    endpoint = os.environ.get(MONITORING_ENDPOINT_ENV)
    if endpoint:
        return monitoring_v3.MetricServiceClient(
            transport=MetricServiceGrpcTransport(channel=_channel(endpoint))
        )
    return monitoring_v3.MetricServiceClient()


def logging_client() -> Any:
    """A ``LoggingServiceV2Client`` (the Cloud Logging API v2 GAPIC client of ``google-cloud-logging``)."""
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport

    endpoint = os.environ.get(LOGGING_ENDPOINT_ENV)
    if endpoint:
        return LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=_channel(endpoint)))
    return LoggingServiceV2Client()


QUOTA_BACKOFF = 30.0
"""Seconds at least before a call refused RESOURCE_EXHAUSTED (HTTP 429) is retried: "For 429 errors,
the minimum retry interval is 30 seconds" (https://cloud.google.com/service-usage/docs/troubleshooting)."""
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 8.0
"""Seconds before the first retry of UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED or UNKNOWN (at least 1 s for
500 and 503, same page), doubled at each retry up to the maximum, plus up to 10 % of randomness."""


def bounded_retry(*, deadline: float = 10.0) -> Retry:
    """Retry UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN and RESOURCE_EXHAUSTED with backoff,
    for ``deadline`` seconds at most.

    Google recommends retrying API errors "with exponential intervals plus randomness", with
    minimum intervals: 30 s for 429 (RESOURCE_EXHAUSTED), 1 s for 500 (INTERNAL) and 503
    (UNAVAILABLE) (https://cloud.google.com/service-usage/docs/troubleshooting, "How do I perform a
    retry on API errors?"). So the first retry waits :data:`FIRST_BACKOFF`, and a RESOURCE_EXHAUSTED is
    retried only when :data:`QUOTA_BACKOFF` seconds still fit in ``deadline``: otherwise it is raised
    as it came (a ``GoogleAPICallError`` naming the quota), never retried sooner. AIP-194 keeps
    UNKNOWN out of automatic retries of non-idempotent calls; revgate's only write, UpdateService,
    carries the etag it planned from, so a retry after an update that took effect is refused as
    stale (ABORTED) and the rollback then re-reads the service and sees its own plan served: the
    retry cannot apply a change twice.

    When the deadline runs out on the other errors the call raises
    ``google.api_core.exceptions.RetryError`` (not a ``GoogleAPICallError``): callers catch both.
    """
    from google.api_core import exceptions, retry

    class _GoogleRetry(retry.Retry):
        """``Retry`` with Google's minimum intervals per error (the base class has one schedule)."""

        def __call__(self, func: Any, on_error: Any = None) -> Any:
            import functools
            import random
            import time

            @functools.wraps(func)
            def retried(*args: Any, **kwargs: Any) -> Any:
                started = time.monotonic()
                delay = max(FIRST_BACKOFF, self._initial)
                while True:
                    try:
                        return func(*args, **kwargs)
                    except Exception as exc:
                        if not self._predicate(exc):
                            raise
                        quota = isinstance(exc, exceptions.ResourceExhausted)
                        pause = QUOTA_BACKOFF if quota else min(delay, self._maximum) * (1 + random.random() / 10)
                        left = started + self._timeout - time.monotonic() if self._timeout is not None else pause
                        if pause > left and not quota and left >= FIRST_BACKOFF:
                            pause = left  # one last try at the deadline, still at least FIRST_BACKOFF later
                        if pause > left:
                            if quota:
                                raise
                            raise exceptions.RetryError(
                                f"Timeout of {self._timeout:.1f}s exceeded while retrying {getattr(func, '__name__', 'a call')}", exc
                            ) from exc
                        if on_error is not None:
                            on_error(exc)
                        time.sleep(pause)
                        delay *= self._multiplier

            return retried

    return _GoogleRetry(
        predicate=retry.if_exception_type(
            exceptions.ServiceUnavailable,
            exceptions.DeadlineExceeded,
            exceptions.InternalServerError,
            exceptions.Unknown,
            exceptions.ResourceExhausted,
        ),
        initial=FIRST_BACKOFF,
        maximum=MAX_BACKOFF,
        multiplier=2.0,
        timeout=deadline,
    )


def could_not_answer(api: str, what: str, scope: Any, exc: BaseException, *, retry_deadline: float, judged: str) -> str:
    """One line for a Google API that did not answer a query, or refused it: ``api`` names the
    service ("Cloud Logging"), ``what`` the query, ``scope`` has ``service`` and ``project``,
    ``judged`` what cannot be verified then ("the logs")."""
    from google.api_core.exceptions import RetryError

    if isinstance(exc, RetryError):
        return (
            f"{api} did not answer the {what} query of service {scope.service} "
            f"within {retry_deadline:g} s ({_first_line(exc.cause or exc)}): {judged} cannot be verified"
        )
    status = getattr(exc, "grpc_status_code", None)
    code = status.name if status is not None else type(exc).__name__
    if code == "RESOURCE_EXHAUSTED":
        return (
            f"{api} refused the {what} query of service {scope.service} in project {scope.project}: a quota is "
            f"exhausted (RESOURCE_EXHAUSTED: {_first_line(getattr(exc, 'message', None) or exc)}), and a retry "
            f"{QUOTA_BACKOFF:g} s later did not fit in {retry_deadline:g} s: {judged} cannot be verified"
        )
    return (
        f"{api} refused the {what} query of service {scope.service} in project "
        f"{scope.project} ({code}: {_first_line(getattr(exc, 'message', None) or exc)}): {judged} cannot be verified"
    )


def _first_line(value: object) -> str:
    text = str(value).strip() or type(value).__name__
    return text.splitlines()[0][:300]

"""Cloud Monitoring queries of a Cloud Run service's revisions (``ListTimeSeries``).

One query per metric serves every limit that needs it: the request count is
asked once, aligned over the whole window (``ALIGN_DELTA``) and summed
across series (``REDUCE_SUM``) grouped by ``resource.labels.revision_name``
and ``metric.labels.response_code_class``, which gives the request count, the
5xx count of the revision under test and of its baseline in one call. The
distributions (request latencies, utilizations, startup latencies) come back
merged per revision the same way (``REDUCE_SUM`` of DELTA distributions), and
their percentiles are read from the bucket counts, so p50, p95, p99 and the
baseline comparison cost one call in all.

Filters use only the documented syntax (``metric.type = "..." AND
resource.type = "cloud_run_revision" AND resource.labels.NAME = "..."``);
every call passes an explicit ``timeout`` and a bounded ``retry``. A refusal or
an unreachable API raises :class:`MonitoringUnavailable` with one line saying
what failed.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "REQUEST_COUNT",
    "REQUEST_LATENCIES",
    "MEMORY_UTILIZATIONS",
    "CPU_UTILIZATIONS",
    "STARTUP_LATENCIES",
    "Histogram",
    "MonitoringUnavailable",
    "Queries",
    "Scope",
    "Window",
    "revision_filter",
]

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
MEMORY_UTILIZATIONS = "run.googleapis.com/container/memory/utilizations"
CPU_UTILIZATIONS = "run.googleapis.com/container/cpu/utilizations"
STARTUP_LATENCIES = "run.googleapis.com/container/startup_latencies"
RESOURCE_TYPE = "cloud_run_revision"

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]+$")


class MonitoringUnavailable(Exception):
    """Cloud Monitoring could not answer a query: the message is one line, for the user."""


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What is queried: the service, the revision(s) under test and the baseline revision."""

    project: str
    region: str
    service: str
    revisions: tuple[str, ...]
    baseline: str | None = None

    def __post_init__(self) -> None:
        for value in (self.region, self.service, *self.revisions, *([self.baseline] if self.baseline else [])):
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"{value!r} is not a Cloud Run name (letters, digits, '-', '_', '.')")

    @property
    def wanted(self) -> tuple[str, ...]:
        """Every revision a query must return."""
        return self.revisions + ((self.baseline,) if self.baseline and self.baseline not in self.revisions else ())

    def describe(self) -> str:
        return ", ".join(self.revisions)


@dataclass(frozen=True)
class Window:
    """``[end - seconds, end]`` in epoch seconds: every query of one judgement uses the same one."""

    end: float
    seconds: int

    @classmethod
    def ending_now(cls, seconds: int) -> Window:
        return cls(math.ceil(time.time()), seconds)

    @property
    def start(self) -> float:
        return self.end - self.seconds

    def describe(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.end))
        return f"the {self.seconds} s window ending {stamp} UTC"


@dataclass
class Histogram:
    """A distribution's bucket counts; percentiles interpolated inside a bucket, as Cloud Monitoring does."""

    bounds: tuple[float, ...]
    counts: list[int]
    count: int = 0
    mean: float = 0.0

    @classmethod
    def from_distribution(cls, dist: Any) -> Histogram:
        options = dist.bucket_options
        if "exponential_buckets" in options:
            e = options.exponential_buckets
            bounds = tuple(e.scale * e.growth_factor**i for i in range(e.num_finite_buckets + 1))
        elif "linear_buckets" in options:
            ln = options.linear_buckets
            bounds = tuple(ln.offset + ln.width * i for i in range(ln.num_finite_buckets + 1))
        elif "explicit_buckets" in options:
            bounds = tuple(options.explicit_buckets.bounds)
        else:
            bounds = ()
        counts = list(dist.bucket_counts) + [0] * (len(bounds) + 1 - len(dist.bucket_counts))
        return cls(bounds, counts, int(dist.count), float(dist.mean))

    def merge(self, other: Histogram) -> Histogram:
        if self.count == 0:
            return other
        if other.count == 0:
            return self
        if other.bounds != self.bounds:
            raise MonitoringUnavailable("Cloud Monitoring returned distributions with different buckets for one revision")
        total = self.count + other.count
        mean = (self.mean * self.count + other.mean * other.count) / total
        return Histogram(self.bounds, [a + b for a, b in zip(self.counts, other.counts, strict=True)], total, mean)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile; NaN when there are no values (NaN never passes a limit)."""
        if self.count <= 0 or not self.bounds:
            return math.nan if self.count <= 0 else self.mean
        rank = p / 100.0 * self.count
        seen = 0
        for i, c in enumerate(self.counts):
            if c and seen + c >= rank:
                lo, hi = self._edges(i)
                return lo + (hi - lo) * max(0.0, rank - seen) / c
            seen += c
        return self.bounds[-1]

    def _edges(self, i: int) -> tuple[float, float]:
        if i == 0:
            return (min(0.0, self.bounds[0]), self.bounds[0])
        if i >= len(self.bounds):
            return (self.bounds[-1], self.bounds[-1])
        return (self.bounds[i - 1], self.bounds[i])


def revision_filter(metric_type: str, scope: Scope, revisions: Sequence[str]) -> str:
    """A documented Monitoring filter for ``metric_type`` of these revisions of the service."""
    parts = [
        f'metric.type = "{metric_type}"',
        f'resource.type = "{RESOURCE_TYPE}"',
        f'resource.labels.service_name = "{scope.service}"',
        f'resource.labels.location = "{scope.region}"',
    ]
    if len(revisions) == 1:
        parts.append(f'resource.labels.revision_name = "{revisions[0]}"')
    return " AND ".join(parts)


@dataclass
class Queries:
    """The ListTimeSeries calls of one run; ``calls`` counts every call made (one per page)."""

    client: Any
    scope: Scope
    timeout: float = 20.0
    retry_deadline: float = 30.0
    calls: int = 0
    calls_by_metric: dict[str, int] = field(default_factory=dict)

    def request_counts(self, window: Window, revisions: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """``{revision: {response_code_class: requests}}`` over the window (one call)."""
        series = self._list(
            REQUEST_COUNT,
            window,
            tuple(revisions or self.scope.wanted),
            group_by=("resource.labels.revision_name", "metric.labels.response_code_class"),
        )
        out: dict[str, dict[str, int]] = {}
        for ts in series:
            revision = ts.resource.labels.get("revision_name", "")
            klass = ts.metric.labels.get("response_code_class", "")
            total = sum(int(p.value.int64_value) for p in ts.points)
            by_class = out.setdefault(revision, {})
            by_class[klass] = by_class.get(klass, 0) + total
        return out

    def distributions(self, metric_type: str, window: Window, revisions: Sequence[str] | None = None) -> dict[str, Histogram]:
        """``{revision: merged distribution}`` of a DELTA distribution metric over the window (one call)."""
        series = self._list(metric_type, window, tuple(revisions or self.scope.wanted), group_by=("resource.labels.revision_name",))
        out: dict[str, Histogram] = {}
        for ts in series:
            revision = ts.resource.labels.get("revision_name", "")
            for point in ts.points:
                hist = Histogram.from_distribution(point.value.distribution_value)
                out[revision] = out[revision].merge(hist) if revision in out else hist
        return out

    def _list(self, metric_type: str, window: Window, revisions: tuple[str, ...], *, group_by: tuple[str, ...]) -> list[Any]:
        from google.api_core.exceptions import GoogleAPICallError, RetryError
        from google.cloud import monitoring_v3

        from .google_clients import bounded_retry, could_not_answer

        aggregation = monitoring_v3.Aggregation(
            alignment_period={"seconds": window.seconds},
            per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_DELTA,
            cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
            group_by_fields=list(group_by),
        )
        request = {
            "name": f"projects/{self.scope.project}",
            "filter": revision_filter(metric_type, self.scope, revisions),
            "interval": monitoring_v3.TimeInterval(
                start_time={"seconds": int(window.start)}, end_time={"seconds": int(window.end)}
            ),
            "aggregation": aggregation,
            "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        }
        short = metric_type.removeprefix("run.googleapis.com/")
        retry = bounded_retry(deadline=self.retry_deadline)
        found: list[Any] = []
        try:
            self._count(short)
            pager = self.client.list_time_series(request=request, timeout=self.timeout, retry=retry)
            for i, page in enumerate(pager.pages):
                if i:
                    self._count(short)
                found.extend(ts for ts in page.time_series if ts.resource.labels.get("revision_name", "") in revisions)
        except (RetryError, GoogleAPICallError) as exc:
            raise MonitoringUnavailable(
                could_not_answer("Cloud Monitoring", short, self.scope, exc, retry_deadline=self.retry_deadline, judged="the metrics")
            ) from None
        return found

    def _count(self, short: str) -> None:
        self.calls += 1
        self.calls_by_metric[short] = self.calls_by_metric.get(short, 0) + 1


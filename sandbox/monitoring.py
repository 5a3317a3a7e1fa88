"""The sandbox's Cloud Monitoring API: an in-memory metric store and its gRPC service.

:class:`MetricStore` keeps raw events (bounded to :data:`RETENTION_SECONDS`)
and answers ``ListTimeSeries`` the way Cloud Monitoring does, for the subset
revgate needs; :func:`metric_service_handler` serves it as
``google.monitoring.v3.MetricService`` (``ListTimeSeries``, ``CreateTimeSeries``)
over the real proto messages, so the real ``google-cloud-monitoring`` client
talks to it unchanged.

Errors::

    MonitoringError                 base class
    ├── InvalidQuery (ValueError)   unsupported or invalid request -> INVALID_ARGUMENT
    └── ProjectNotFound             another project's name         -> NOT_FOUND

What the sandbox records (resource ``cloud_run_revision``, labels
``project_id``, ``service_name``, ``revision_name``, ``location``,
``configuration_name`` = service):

==========================================  =====  ============  ==========================
metric type (``run.googleapis.com/``)        kind   value         metric labels
==========================================  =====  ============  ==========================
``request_count``                           DELTA  INT64         response_code, response_code_class
``request_latencies`` (ms)                  DELTA  DISTRIBUTION  response_code_class
``container/startup_latencies`` (ms)        DELTA  DISTRIBUTION  (none)
``container/cpu/utilizations`` (0..1)       DELTA  DISTRIBUTION  (none)
``container/memory/utilizations`` (0..1)    DELTA  DISTRIBUTION  (none)
``container/instance_count``                GAUGE  INT64         (given by the caller, e.g. state)
==========================================  =====  ============  ==========================

The utilizations are DELTA distributions as in Cloud Run's published metric
list; every aligner that works on a GAUGE distribution (SUM, MEAN,
PERCENTILE_*) works the same on them. Latency buckets are exponential
(100 finite buckets, growth factor 1.4, scale 1.0 ms), utilization buckets
linear (100 finite buckets of width 0.01 from 0).

Aggregation, following the ``Aggregation`` reference:

* aligners ``ALIGN_NONE`` (raw points), ``ALIGN_DELTA`` and ``ALIGN_RATE``
  (DELTA or CUMULATIVE metrics; RATE is per second, numbers only),
  ``ALIGN_SUM``, ``ALIGN_MEAN``, ``ALIGN_MAX``, ``ALIGN_MIN``, ``ALIGN_COUNT``
  and ``ALIGN_PERCENTILE_50/95/99`` (GAUGE or DELTA metrics; percentiles on
  distributions only, interpolated linearly inside the bucket that holds the
  rank). ``ALIGN_MEAN`` also takes distributions (their count-weighted mean).
* reducers ``REDUCE_SUM``, ``REDUCE_MEAN``, ``REDUCE_MAX``, ``REDUCE_MIN``,
  ``REDUCE_COUNT`` and ``REDUCE_PERCENTILE_50/95/99`` (distributions are merged
  first; numbers use linear interpolation between the closest ranks), with
  ``group_by_fields`` ``metric.labels.X`` / ``resource.labels.X`` (or
  ``.label.``). A reduced series keeps only the grouped labels and the
  resource's ``project_id``.
* a reducer needs an aligner other than ALIGN_NONE, an aligner needs an
  ``alignment_period`` of at least 60 s; any other aligner, reducer or
  combination is :class:`InvalidQuery`, checked even when there is no data.

Deliberate simplifications, each documented where it is implemented:

* Cloud Run's own metrics are sampled every :data:`SAMPLE_PERIOD_SECONDS` (60 s):
  what the router and the sampler record goes into one point per series per
  sample period, aligned to the epoch (interval ``[k*60, (k+1)*60]`` for DELTA
  metrics, its end for GAUGE ones); distributions hold every sample of the
  period, ``request_count`` the period's sum, ``instance_count`` its last value;
* a point becomes visible ``visibility_delay`` seconds after it is written:
  the end of its sample period for Cloud Run's metrics (Cloud Run: "not
  visible for up to 180 seconds"), the moment of the call for points written
  with CreateTimeSeries. ``visibility_delay`` is one fixed delay (the real one
  varies up to 180 s);
* aligned windows end at ``interval.end_time`` and every ``alignment_period``
  before it; a window without data has no point (no interpolation);
* ``name`` must be ``projects/PROJECT`` of this sandbox: another project is
  NOT_FOUND (the real API answers NOT_FOUND or PERMISSION_DENIED, never an
  empty list); ``organizations/`` and ``folders/`` are INVALID_ARGUMENT;
* ``page_size`` counts points in the FULL view and series in the HEADERS
  view, as documented; a long series continues on the next page (same
  identity, older points). Without ``page_size`` a page holds at most
  :data:`DEFAULT_PAGE_POINTS` points (the documented 100,000 would overflow
  the client's default 4 MB gRPC message limit for distributions).

Modules: :mod:`sandbox.monitoring_filter` (filters, errors),
:mod:`sandbox.monitoring_distribution` (buckets, percentiles),
:mod:`sandbox.monitoring_series` (metric types, descriptors, series),
:mod:`sandbox.monitoring_aggregation` (aligners, reducers),
:mod:`sandbox.monitoring_results` (output series),
:mod:`sandbox.monitoring_query` (ListTimeSeries requests and pages),
:mod:`sandbox.monitoring_write` (CreateTimeSeries checks); this module keeps
the store, the gRPC service and the public names.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import proto
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2

from sandbox.monitoring_aggregation import MIN_ALIGNMENT_PERIOD_SECONDS
from sandbox.monitoring_distribution import LATENCY_BUCKETS, UTILIZATION_BUCKETS, Buckets, Distribution
# Filter, parse_filter and CUSTOM_PREFIX stay importable from here, as before the split.
from sandbox.monitoring_filter import Filter, InvalidQuery, MonitoringError, parse_filter  # noqa: F401
from sandbox.monitoring_query import DEFAULT_PAGE_POINTS, MAX_PAGE_SIZE, page, parse_request
from sandbox.monitoring_results import evaluate
from sandbox.monitoring_series import (
    BUILTIN,
    CPU_UTILIZATIONS,
    CUMULATIVE,
    CUSTOM_PREFIX,  # noqa: F401
    DELTA,
    DISTRIBUTION,
    GAUGE_TYPES,
    INSTANCE_COUNT,
    INT64,
    MEMORY_UTILIZATIONS,
    REQUEST_COUNT,
    REQUEST_LATENCIES,
    REVISION_RESOURCE,
    STARTUP_LATENCIES,
    Descriptor,
    Point,
    Series,
    SeriesKey,
    ns,
    series_key,
)
from sandbox.monitoring_write import check_write

__all__ = [
    "MonitoringError",
    "InvalidQuery",
    "ProjectNotFound",
    "Buckets",
    "MetricStore",
    "metric_service_handler",
    "REQUEST_COUNT",
    "REQUEST_LATENCIES",
    "STARTUP_LATENCIES",
    "CPU_UTILIZATIONS",
    "MEMORY_UTILIZATIONS",
    "INSTANCE_COUNT",
    "LATENCY_BUCKETS",
    "UTILIZATION_BUCKETS",
    "RETENTION_SECONDS",
    "SAMPLE_PERIOD_SECONDS",
    "CLOUD_RUN_MAX_VISIBILITY_SECONDS",
    "sample_period",
    "visible_at",
    "MIN_ALIGNMENT_PERIOD_SECONDS",
    "MAX_PAGE_SIZE",
    "DEFAULT_PAGE_POINTS",
]

RETENTION_SECONDS = 6 * 3600

SAMPLE_PERIOD_SECONDS = 60
"""Cloud Run samples its metrics every 60 s (cloud.google.com/monitoring/api/metrics_gcp, run.googleapis.com)."""
CLOUD_RUN_MAX_VISIBILITY_SECONDS = 180
"""After sampling, Cloud Run data is not visible for up to 180 s (same source)."""


def sample_period(t: float, period: float = SAMPLE_PERIOD_SECONDS) -> tuple[int, int]:
    """(start, end) in ns of the sample period (60 s by default) holding ``t`` seconds (aligned to the epoch)."""
    k = int(t // period)
    return ns(k * period), ns((k + 1) * period)


def visible_at(t: float, visibility_delay: float, period: float = SAMPLE_PERIOD_SECONDS) -> float:
    """When data observed at ``t`` seconds becomes visible: the end of its sample period plus the delay."""
    return (int(t // period) + 1) * period + visibility_delay

_PRUNE_EVERY = 1024


class ProjectNotFound(MonitoringError):
    """The request names a project this sandbox does not hold (NOT_FOUND)."""


def _check_project(name: str, project: str) -> None:
    """Accept only ``projects/PROJECT`` of this sandbox: another project is NOT_FOUND, anything else invalid."""
    prefix = "projects/"
    if not name.startswith(prefix):
        raise InvalidQuery(f"name {name!r} is not supported by the sandbox: use projects/{project}")
    if name[len(prefix) :] != project:
        raise ProjectNotFound(f"project {name[len(prefix) :]!r} not found (this sandbox holds project {project!r})")


def _pb(message: Any) -> Any:
    """The raw protobuf message behind a proto-plus message (or the message itself)."""
    return type(message).pb(message) if isinstance(message, proto.Message) else message


class MetricStore:
    """Thread-safe in-memory Cloud Monitoring data of one project.

    ``visibility_delay`` (seconds, settable at any time) hides a point written
    at ``t`` (the end of its sample period, for recorded data) until
    ``clock() >= t + visibility_delay``.
    """

    def __init__(
        self,
        *,
        project: str,
        visibility_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        sample_period: float = SAMPLE_PERIOD_SECONDS,
    ) -> None:
        if not 0.1 <= sample_period <= 3600:
            raise ValueError(f"sample_period {sample_period!r}: give 0.1 to 3600 seconds")
        self.project = project
        self.visibility_delay = visibility_delay
        self.sample_period = float(sample_period)
        """Seconds per recorded point: Cloud Run's 60 unless set (``up --sample-period``), so that a
        rollout's soaks can be tested in seconds; the fidelity selftests keep 60."""
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[str, dict[SeriesKey, Series]] = {}
        self._descriptors: dict[str, Descriptor] = dict(BUILTIN)
        self._writes = 0

    # ---- recording (router and sampler)

    def record_request(
        self,
        *,
        service: str,
        revision: str,
        location: str,
        status_code: int,
        latency_ms: float,
        at: float | None = None,
    ) -> None:
        """One request an instance answered: ``request_count`` (+1) and ``request_latencies`` (one sample).

        Both go into the point of the 60 s sample period holding ``at`` (default: now).
        """
        t = self._clock() if at is None else at
        resource = self._revision_labels(service, revision, location)
        code_class = f"{status_code // 100}xx"
        with self._lock:
            self._sample(
                REQUEST_COUNT,
                {"response_code": str(status_code), "response_code_class": code_class},
                resource,
                t,
                1,
            )
            self._sample(REQUEST_LATENCIES, {"response_code_class": code_class}, resource, t, float(latency_ms))
            self._maybe_prune()

    def record_gauge(
        self,
        metric_type: str,
        *,
        service: str,
        revision: str,
        location: str,
        value: float,
        at: float | None = None,
        metric_labels: Mapping[str, str] | None = None,
    ) -> None:
        """One sample of a container metric (utilizations, instance_count, startup_latencies).

        Distributions collect every sample of the 60 s sample period holding ``at``; a GAUGE keeps its last one.
        """
        if metric_type not in GAUGE_TYPES:
            raise ValueError(f"record_gauge: {metric_type!r} is not one of {sorted(GAUGE_TYPES)}")
        t = self._clock() if at is None else at
        desc = BUILTIN[metric_type]
        v: Any = int(value) if desc.value_type == INT64 else float(value)
        with self._lock:
            self._sample(metric_type, dict(metric_labels or {}), self._revision_labels(service, revision, location), t, v)
            self._maybe_prune()

    def _sample(
        self, metric_type: str, metric_labels: dict[str, str], resource_labels: dict[str, str], t: float, value: Any
    ) -> None:
        """Add ``value`` (observed at ``t`` seconds) to the point of its sample period (lock held).

        Cloud Run writes one point per series per :data:`SAMPLE_PERIOD_SECONDS`: its interval is the
        period (DELTA) or the period's end (GAUGE), and it is written when the period ends, so it is
        seen (and its visibility delay starts) at that end.
        """
        start, end = sample_period(t, self.sample_period)
        key = series_key(metric_type, metric_labels, REVISION_RESOURCE, resource_labels)
        series = self._series.get(metric_type, {}).get(key)
        d = self._descriptors[metric_type]
        if series is not None:
            series.sort()
            i = bisect.bisect_left(series.points, end, key=lambda p: p.end)
            if i < len(series.points) and series.points[i].end == end:
                old = series.points[i]
                if d.value_type == DISTRIBUTION:
                    old.value.absorb(value)
                elif d.kind == DELTA:
                    series.points[i] = old._replace(value=old.value + value)
                else:  # GAUGE: the last sample of the period
                    series.points[i] = old._replace(value=value)
                return
        if d.value_type == DISTRIBUTION:
            assert d.buckets is not None
            dist = Distribution(d.buckets)
            dist.add(value)
            value = dist
        point_start = start if d.kind == DELTA else end
        self._add(metric_type, metric_labels, REVISION_RESOURCE, resource_labels, Point(end, point_start, end, value))

    def _revision_labels(self, service: str, revision: str, location: str) -> dict[str, str]:
        return {
            "project_id": self.project,
            "service_name": service,
            "revision_name": revision,
            "location": location,
            "configuration_name": service,
        }

    def _add(
        self,
        metric_type: str,
        metric_labels: dict[str, str],
        resource_type: str,
        resource_labels: dict[str, str],
        point: Point,
    ) -> Series:
        key = series_key(metric_type, metric_labels, resource_type, resource_labels)
        by_key = self._series.setdefault(metric_type, {})
        series = by_key.get(key)
        if series is None:
            d = self._descriptors[metric_type]
            series = Series(
                metric_type, metric_labels, resource_type, resource_labels, d.kind, d.value_type, d.unit, d.buckets
            )
            by_key[key] = series
        series.append(point)
        return series

    def _maybe_prune(self) -> None:
        self._writes += 1
        if self._writes % _PRUNE_EVERY:
            return
        horizon = ns(self._clock() - RETENTION_SECONDS)
        for metric_type, by_key in list(self._series.items()):
            for key, series in list(by_key.items()):
                series.sort()
                cut = bisect.bisect_left(series.points, horizon, key=lambda p: p.end)
                if cut:
                    del series.points[:cut]
                if not series.points:
                    del by_key[key]
            if not by_key:
                del self._series[metric_type]

    # ---- CreateTimeSeries

    def write(self, series: list[monitoring_v3.TimeSeries]) -> None:
        """Store one point per time series (``custom.googleapis.com/`` metrics only), all or nothing."""
        messages = [_pb(m) for m in series]
        now = ns(self._clock())
        with self._lock:
            descriptors, checked = check_write(
                messages, project=self.project, now=now, descriptors=self._descriptors, stored=self._series
            )
            for mtype, desc in descriptors.items():
                self._descriptors.setdefault(mtype, desc)
            for c in checked:
                self._add(c.metric_type, c.metric_labels, c.resource_type, c.resource_labels, c.point)
                self._maybe_prune()

    # ---- ListTimeSeries

    def list_time_series(self, request: monitoring_v3.ListTimeSeriesRequest) -> monitoring_v3.ListTimeSeriesResponse:
        """Answer ``ListTimeSeries``; raise :class:`InvalidQuery` or :class:`ProjectNotFound`."""
        req = _pb(request)
        _check_project(req.name, self.project)
        q = parse_request(req, descriptors=self._descriptors)
        now = ns(self._clock())
        visible_before = now - ns(self.visibility_delay)
        with self._lock:
            selected: list[tuple[Series, list[Point]]] = []
            for series in self._series.get(q.metric_filter.metric_type, {}).values():
                if not q.metric_filter.matches(
                    metric_type=series.metric_type,
                    resource_type=series.resource_type,
                    metric_labels=series.metric_labels,
                    resource_labels=series.resource_labels,
                ):
                    continue
                series.sort()
                lo = (
                    0 if series.kind == CUMULATIVE else bisect.bisect_left(series.points, q.start, key=lambda p: p.end)
                )
                hi = bisect.bisect_right(series.points, q.end, key=lambda p: p.end)
                points = [p for p in series.points[lo:hi] if p.seen <= visible_before]
                if points:
                    selected.append((series, points))
        metric_type = q.metric_filter.metric_type
        outs = evaluate(
            q.aggregation,
            selected,
            start=q.start,
            end=q.end,
            metric_type=metric_type,
            desc=self._descriptors.get(metric_type),
        )
        return page(q, outs)


# --------------------------------------------------------------------------- gRPC


def metric_service_handler(store: MetricStore) -> grpc.GenericRpcHandler:
    """``google.monitoring.v3.MetricService`` (ListTimeSeries, CreateTimeSeries) served from ``store``."""

    def _call(context: grpc.ServicerContext, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except InvalidQuery as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except ProjectNotFound as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    def list_time_series(request: monitoring_v3.ListTimeSeriesRequest, context: grpc.ServicerContext) -> Any:
        return _call(context, lambda: store.list_time_series(request))

    def create_time_series(request: monitoring_v3.CreateTimeSeriesRequest, context: grpc.ServicerContext) -> Any:
        def run() -> empty_pb2.Empty:
            _check_project(request.name, store.project)
            store.write(list(request.time_series))
            return empty_pb2.Empty()

        return _call(context, run)

    return grpc.method_handlers_generic_handler(
        "google.monitoring.v3.MetricService",
        {
            "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                list_time_series,
                request_deserializer=monitoring_v3.ListTimeSeriesRequest.deserialize,
                response_serializer=monitoring_v3.ListTimeSeriesResponse.serialize,
            ),
            "CreateTimeSeries": grpc.unary_unary_rpc_method_handler(
                create_time_series,
                request_deserializer=monitoring_v3.CreateTimeSeriesRequest.deserialize,
                response_serializer=empty_pb2.Empty.SerializeToString,
            ),
        },
    )

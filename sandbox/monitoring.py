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

* every recorded event is its own raw point (Cloud Run writes one point per
  60 s sample); aligned queries, which revgate uses, give the same numbers;
* a point recorded at ``t`` is invisible until ``clock() >= t + visibility_delay``
  (points written with CreateTimeSeries count from the time they were written);
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
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
import proto
from google.api import distribution_pb2, metric_pb2
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2

from sandbox.monitoring_filter import Filter, InvalidQuery, MonitoringError, parse_filter

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
    "MIN_ALIGNMENT_PERIOD_SECONDS",
    "MAX_PAGE_SIZE",
    "DEFAULT_PAGE_POINTS",
]

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
STARTUP_LATENCIES = "run.googleapis.com/container/startup_latencies"
CPU_UTILIZATIONS = "run.googleapis.com/container/cpu/utilizations"
MEMORY_UTILIZATIONS = "run.googleapis.com/container/memory/utilizations"
INSTANCE_COUNT = "run.googleapis.com/container/instance_count"

RETENTION_SECONDS = 6 * 3600
MIN_ALIGNMENT_PERIOD_SECONDS = 60  # "The value must be at least 60 seconds." (Aggregation docs)
MAX_PAGE_SIZE = 100_000
DEFAULT_PAGE_POINTS = 10_000
CUSTOM_PREFIX = "custom.googleapis.com/"
REVISION_RESOURCE = "cloud_run_revision"

_NS = 1_000_000_000
_PRUNE_EVERY = 1024

_GAUGE = metric_pb2.MetricDescriptor.MetricKind.GAUGE
_DELTA = metric_pb2.MetricDescriptor.MetricKind.DELTA
_CUMULATIVE = metric_pb2.MetricDescriptor.MetricKind.CUMULATIVE
_BOOL = metric_pb2.MetricDescriptor.ValueType.BOOL
_INT64 = metric_pb2.MetricDescriptor.ValueType.INT64
_DOUBLE = metric_pb2.MetricDescriptor.ValueType.DOUBLE
_STRING = metric_pb2.MetricDescriptor.ValueType.STRING
_DISTRIBUTION = metric_pb2.MetricDescriptor.ValueType.DISTRIBUTION
_NUMERIC = (_INT64, _DOUBLE)

_Aligner = monitoring_v3.Aggregation.Aligner
_Reducer = monitoring_v3.Aggregation.Reducer
_PERCENTILE_ALIGNERS = {
    _Aligner.ALIGN_PERCENTILE_50: 50.0,
    _Aligner.ALIGN_PERCENTILE_95: 95.0,
    _Aligner.ALIGN_PERCENTILE_99: 99.0,
}
_PERCENTILE_REDUCERS = {
    _Reducer.REDUCE_PERCENTILE_50: 50.0,
    _Reducer.REDUCE_PERCENTILE_95: 95.0,
    _Reducer.REDUCE_PERCENTILE_99: 99.0,
}


class ProjectNotFound(MonitoringError):
    """The request names a project this sandbox does not hold (NOT_FOUND)."""


# --------------------------------------------------------------------------- buckets


@dataclass(frozen=True)
class Buckets:
    """Bucket options of a distribution, kept as the finite boundaries.

    Bucket 0 is the underflow ``(-inf, b0)``, bucket ``i`` is ``[b(i-1), b(i))``,
    the last one the overflow ``[bN, +inf)``, as in ``google.api.Distribution``.
    """

    spec: tuple[Any, ...]
    bounds: tuple[float, ...]

    @classmethod
    def exponential(cls, *, num_finite_buckets: int, growth_factor: float, scale: float) -> Buckets:
        bounds = tuple(scale * growth_factor**i for i in range(num_finite_buckets + 1))
        return cls(("exponential", num_finite_buckets, growth_factor, scale), bounds)

    @classmethod
    def linear(cls, *, num_finite_buckets: int, width: float, offset: float) -> Buckets:
        bounds = tuple(offset + width * i for i in range(num_finite_buckets + 1))
        return cls(("linear", num_finite_buckets, width, offset), bounds)

    @classmethod
    def explicit(cls, bounds: Iterable[float]) -> Buckets:
        b = tuple(float(x) for x in bounds)
        return cls(("explicit", b), b)

    @classmethod
    def from_pb(cls, options: distribution_pb2.Distribution.BucketOptions) -> Buckets:
        which = options.WhichOneof("options")
        if which == "exponential_buckets":
            e = options.exponential_buckets
            if e.num_finite_buckets <= 0 or e.growth_factor <= 1 or e.scale <= 0:
                raise InvalidQuery(
                    "exponential bucket options need num_finite_buckets > 0, growth_factor > 1, scale > 0"
                )
            return cls.exponential(
                num_finite_buckets=e.num_finite_buckets, growth_factor=e.growth_factor, scale=e.scale
            )
        if which == "linear_buckets":
            ln = options.linear_buckets
            if ln.num_finite_buckets <= 0 or ln.width <= 0:
                raise InvalidQuery("linear bucket options need num_finite_buckets > 0 and width > 0")
            return cls.linear(num_finite_buckets=ln.num_finite_buckets, width=ln.width, offset=ln.offset)
        if which == "explicit_buckets":
            b = list(options.explicit_buckets.bounds)
            if not b or any(y <= x for x, y in zip(b, b[1:], strict=False)):
                raise InvalidQuery("explicit bucket bounds must be non-empty and strictly increasing")
            return cls.explicit(b)
        raise InvalidQuery("a distribution value needs bucket_options")

    @property
    def count(self) -> int:
        return len(self.bounds) + 1

    def index(self, value: float) -> int:
        return bisect.bisect_right(self.bounds, value)

    def edges(self, i: int) -> tuple[float, float]:
        """Lower and upper edge of bucket ``i`` (the open ends are clamped to a finite value)."""
        if i == 0:
            upper = self.bounds[0]
            return (min(0.0, upper), upper)
        if i >= len(self.bounds):
            return (self.bounds[-1], self.bounds[-1])
        return (self.bounds[i - 1], self.bounds[i])

    def fill_pb(self, options: distribution_pb2.Distribution.BucketOptions) -> None:
        kind = self.spec[0]
        if kind == "exponential":
            _, n, g, s = self.spec
            options.exponential_buckets.num_finite_buckets = n
            options.exponential_buckets.growth_factor = g
            options.exponential_buckets.scale = s
        elif kind == "linear":
            _, n, w, o = self.spec
            options.linear_buckets.num_finite_buckets = n
            options.linear_buckets.width = w
            options.linear_buckets.offset = o
        else:
            options.explicit_buckets.bounds.extend(self.bounds)


LATENCY_BUCKETS = Buckets.exponential(num_finite_buckets=100, growth_factor=1.4, scale=1.0)
UTILIZATION_BUCKETS = Buckets.linear(num_finite_buckets=100, width=0.01, offset=0.0)


class _Dist:
    """A mutable distribution accumulator (count, mean, sum of squared deviation, bucket counts)."""

    __slots__ = ("buckets", "count", "mean", "m2", "counts")

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.counts = [0] * buckets.count

    def add(self, x: float) -> None:
        self.count += 1
        d = x - self.mean
        self.mean += d / self.count
        self.m2 += d * (x - self.mean)
        self.counts[self.buckets.index(x)] += 1

    def merge(self, other: _Dist) -> None:
        if other.buckets != self.buckets:
            raise InvalidQuery("distributions with different bucket_options cannot be aggregated together")
        if other.count == 0:
            return
        n = self.count + other.count
        d = other.mean - self.mean
        self.m2 += other.m2 + d * d * self.count * other.count / n
        self.mean += d * other.count / n
        self.count = n
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c

    def absorb(self, value: float | _Dist) -> None:
        if isinstance(value, _Dist):
            self.merge(value)
        else:
            self.add(value)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile, interpolated linearly inside the bucket holding that rank."""
        if self.count == 0:
            return 0.0
        rank = p / 100.0 * self.count
        seen = 0
        for i, c in enumerate(self.counts):
            if c and seen + c >= rank:
                lo, hi = self.buckets.edges(i)
                return lo + (hi - lo) * max(0.0, rank - seen) / c
            seen += c
        return self.buckets.edges(self.buckets.count - 1)[0]

    @classmethod
    def from_pb(cls, d: distribution_pb2.Distribution) -> _Dist:
        buckets = Buckets.from_pb(d.bucket_options)
        counts = list(d.bucket_counts)
        if len(counts) > buckets.count:
            raise InvalidQuery(f"distribution has {len(counts)} bucket_counts for {buckets.count} buckets")
        if counts and sum(counts) != d.count:
            raise InvalidQuery(f"distribution count {d.count} differs from the sum of bucket_counts {sum(counts)}")
        out = cls(buckets)
        out.count = int(d.count)
        out.mean = d.mean
        out.m2 = d.sum_of_squared_deviation
        out.counts[: len(counts)] = counts
        return out

    def fill_pb(self, d: distribution_pb2.Distribution) -> None:
        d.count = self.count
        d.mean = self.mean
        d.sum_of_squared_deviation = self.m2
        self.buckets.fill_pb(d.bucket_options)
        last = len(self.counts)
        while last and not self.counts[last - 1]:
            last -= 1  # the API omits trailing empty buckets
        d.bucket_counts.extend(self.counts[:last])


# --------------------------------------------------------------------------- storage


class _Point(NamedTuple):
    end: int  # ns
    start: int  # ns
    seen: int  # ns: when the point reached the store (its visibility counts from here)
    value: Any  # int | float | bool | str | _Dist; a float sample for recorded distributions


@dataclass
class _Series:
    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    kind: int
    value_type: int
    unit: str
    buckets: Buckets | None
    points: list[_Point] = field(default_factory=list)
    ordered: bool = True

    def append(self, point: _Point) -> None:
        if self.points and point.end < self.points[-1].end:
            self.ordered = False
        self.points.append(point)

    def sort(self) -> None:
        if not self.ordered:
            self.points.sort(key=lambda p: p.end)
            self.ordered = True


@dataclass(frozen=True)
class _Descriptor:
    kind: int
    value_type: int
    unit: str
    buckets: Buckets | None


_BUILTIN: dict[str, _Descriptor] = {
    REQUEST_COUNT: _Descriptor(_DELTA, _INT64, "1", None),
    REQUEST_LATENCIES: _Descriptor(_DELTA, _DISTRIBUTION, "ms", LATENCY_BUCKETS),
    STARTUP_LATENCIES: _Descriptor(_DELTA, _DISTRIBUTION, "ms", LATENCY_BUCKETS),
    CPU_UTILIZATIONS: _Descriptor(_DELTA, _DISTRIBUTION, "10^2.%", UTILIZATION_BUCKETS),
    MEMORY_UTILIZATIONS: _Descriptor(_DELTA, _DISTRIBUTION, "10^2.%", UTILIZATION_BUCKETS),
    INSTANCE_COUNT: _Descriptor(_GAUGE, _INT64, "1", None),
}
_GAUGE_TYPES = frozenset(_BUILTIN) - {REQUEST_COUNT, REQUEST_LATENCIES}

_SeriesKey = tuple[str, tuple[tuple[str, str], ...], str, tuple[tuple[str, str], ...]]


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS))


def _pb(message: Any) -> Any:
    """The raw protobuf message behind a proto-plus message (or the message itself)."""
    return type(message).pb(message) if isinstance(message, proto.Message) else message


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class _Query:
    metric_filter: Filter
    start: int
    end: int
    aligner: int
    period: int  # ns, 0 when not aligning
    reducer: int
    group_by: tuple[str, ...]
    headers_only: bool
    page_size: int
    offset: tuple[int, int]  # (series index, point index) where the page starts


class _Out(NamedTuple):
    """One output time series before serialization."""

    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    kind: int
    value_type: int
    unit: str
    points: list[tuple[int, int, Any]]  # (start ns, end ns, value), newest first


def _enum_name(enum: Any, value: int) -> str:
    """The name of ``value`` in a proto-plus enum or a protobuf enum wrapper."""
    try:
        return enum.Name(value) if hasattr(enum, "Name") else enum(value).name
    except ValueError:
        return str(value)


def _kind_name(kind: int) -> str:
    return _enum_name(metric_pb2.MetricDescriptor.MetricKind, kind)


def _type_name(value_type: int) -> str:
    return _enum_name(metric_pb2.MetricDescriptor.ValueType, value_type)


def _normal_group_field(name: str) -> str:
    for prefix, normal in (
        ("metric.labels.", "metric.labels."),
        ("metric.label.", "metric.labels."),
        ("resource.labels.", "resource.labels."),
        ("resource.label.", "resource.labels."),
    ):
        if name.startswith(prefix) and len(name) > len(prefix):
            return normal + name[len(prefix) :]
    raise InvalidQuery(
        f"group_by_fields entry {name!r} is not supported by the sandbox "
        "(use metric.labels.NAME or resource.labels.NAME)"
    )


def _numeric_percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    pos = p / 100.0 * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _align(
    series: _Series, points: list[_Point], q: _Query, deltas: dict[int, Any] | None
) -> tuple[int, int, dict[int, Any]]:
    """Apply the per-series aligner: (output kind, output value type, {window index: value})."""
    windows: dict[int, list[Any]] = {}
    for i, p in enumerate(points):
        value = deltas[i] if deltas is not None else p.value
        windows.setdefault((q.end - p.end) // q.period, []).append(value)
    a = q.aligner
    vt = series.value_type
    seconds = q.period / _NS
    out: dict[int, Any] = {}
    if a in (_Aligner.ALIGN_DELTA, _Aligner.ALIGN_SUM):
        kind = _DELTA if series.kind in (_DELTA, _CUMULATIVE) else _GAUGE
        for k, values in windows.items():
            out[k] = _sum(values, series)
        return kind, vt, out
    if a == _Aligner.ALIGN_RATE:
        for k, values in windows.items():
            out[k] = float(_sum(values, series)) / seconds
        return _GAUGE, _DOUBLE, out
    if a == _Aligner.ALIGN_MEAN:
        for k, values in windows.items():
            if vt == _DISTRIBUTION:
                out[k] = _sum(values, series).mean
            else:
                out[k] = float(sum(values)) / len(values)
        return _GAUGE, _DOUBLE, out
    if a in (_Aligner.ALIGN_MAX, _Aligner.ALIGN_MIN):
        pick = max if a == _Aligner.ALIGN_MAX else min
        for k, values in windows.items():
            out[k] = pick(values)
        return _GAUGE, vt, out
    if a == _Aligner.ALIGN_COUNT:
        for k, values in windows.items():
            out[k] = len(values)
        return _GAUGE, _INT64, out
    pct = _PERCENTILE_ALIGNERS[a]
    for k, values in windows.items():
        out[k] = _sum(values, series).percentile(pct)
    return _GAUGE, _DOUBLE, out


def _sum(values: list[Any], series: _Series) -> Any:
    if series.value_type == _DISTRIBUTION:
        assert series.buckets is not None
        acc = _Dist(series.buckets)
        for v in values:
            acc.absorb(v)
        return acc
    return sum(values)


def _check_aligner(aligner: int, kind: int, value_type: int, metric_type: str) -> None:
    name = _enum_name(_Aligner, aligner)
    kind_name = _kind_name(kind)
    vt_name = _type_name(value_type)
    what = f"per_series_aligner {name} is not valid for {metric_type} ({kind_name}, {vt_name})"
    if aligner in (_Aligner.ALIGN_DELTA, _Aligner.ALIGN_RATE):
        if kind not in (_DELTA, _CUMULATIVE):
            raise InvalidQuery(f"{what}: it needs a DELTA or CUMULATIVE metric")
        if value_type not in _NUMERIC and not (aligner == _Aligner.ALIGN_DELTA and value_type == _DISTRIBUTION):
            raise InvalidQuery(f"{what}: it needs numeric values")
        if kind == _CUMULATIVE and value_type == _DISTRIBUTION:
            raise InvalidQuery(f"{what}: CUMULATIVE distributions are not supported by the sandbox")
        return
    if kind == _CUMULATIVE:
        raise InvalidQuery(f"{what}: it needs a GAUGE or DELTA metric")
    if aligner in (_Aligner.ALIGN_SUM, _Aligner.ALIGN_MEAN):
        ok = value_type in _NUMERIC or value_type == _DISTRIBUTION
    elif aligner in (_Aligner.ALIGN_MAX, _Aligner.ALIGN_MIN):
        ok = value_type in _NUMERIC
    elif aligner == _Aligner.ALIGN_COUNT:
        ok = value_type in _NUMERIC or value_type == _BOOL
    else:  # percentiles
        ok = value_type == _DISTRIBUTION
    if not ok:
        raise InvalidQuery(f"{what}: wrong value type")


def _aligned_value_type(aligner: int, value_type: int) -> int:
    if aligner == _Aligner.ALIGN_COUNT:
        return _INT64
    if aligner in (_Aligner.ALIGN_RATE, _Aligner.ALIGN_MEAN, *_PERCENTILE_ALIGNERS):
        return _DOUBLE
    return value_type


def _reduce(values: list[Any], reducer: int, value_type: int) -> tuple[int, Any]:
    """Apply the cross-series reducer to one window: (output value type, value)."""
    dist = value_type == _DISTRIBUTION
    if reducer == _Reducer.REDUCE_COUNT:
        return _INT64, len(values)
    if reducer == _Reducer.REDUCE_SUM:
        if dist:
            acc = _Dist(values[0].buckets)
            for v in values:
                acc.merge(v)
            return value_type, acc
        return value_type, sum(values)
    if reducer == _Reducer.REDUCE_MEAN:
        if dist:
            acc = _Dist(values[0].buckets)
            for v in values:
                acc.merge(v)
            return _DOUBLE, acc.mean
        return _DOUBLE, float(sum(values)) / len(values)
    if reducer in (_Reducer.REDUCE_MAX, _Reducer.REDUCE_MIN):
        return value_type, (max if reducer == _Reducer.REDUCE_MAX else min)(values)
    pct = _PERCENTILE_REDUCERS[reducer]
    if dist:
        acc = _Dist(values[0].buckets)
        for v in values:
            acc.merge(v)
        return _DOUBLE, acc.percentile(pct)
    return _DOUBLE, _numeric_percentile([float(v) for v in values], pct)


def _check_reducer(reducer: int, value_type: int, metric_type: str) -> None:
    name = _enum_name(_Reducer, reducer)
    if reducer not in (
        _Reducer.REDUCE_SUM,
        _Reducer.REDUCE_MEAN,
        _Reducer.REDUCE_MAX,
        _Reducer.REDUCE_MIN,
        _Reducer.REDUCE_COUNT,
        *_PERCENTILE_REDUCERS,
    ):
        raise InvalidQuery(f"cross_series_reducer {name} is not supported by the sandbox")
    if reducer in (_Reducer.REDUCE_MAX, _Reducer.REDUCE_MIN) and value_type not in _NUMERIC:
        vt = _type_name(value_type)
        raise InvalidQuery(f"cross_series_reducer {name} is not valid for {metric_type} aligned to {vt} values")


# --------------------------------------------------------------------------- the store


class MetricStore:
    """Thread-safe in-memory Cloud Monitoring data of one project.

    ``visibility_delay`` (seconds, settable at any time) hides a point recorded
    at ``t`` until ``clock() >= t + visibility_delay``.
    """

    def __init__(
        self,
        *,
        project: str,
        visibility_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.visibility_delay = visibility_delay
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[str, dict[_SeriesKey, _Series]] = {}
        self._descriptors: dict[str, _Descriptor] = dict(_BUILTIN)
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
        """One proxied request: ``request_count`` (+1) and ``request_latencies`` (one sample)."""
        t = _ns(self._clock() if at is None else at)
        resource = self._revision_labels(service, revision, location)
        code_class = f"{status_code // 100}xx"
        with self._lock:
            self._add(
                REQUEST_COUNT,
                {"response_code": str(status_code), "response_code_class": code_class},
                REVISION_RESOURCE,
                resource,
                _Point(t, t, t, 1),
            )
            self._add(
                REQUEST_LATENCIES,
                {"response_code_class": code_class},
                REVISION_RESOURCE,
                resource,
                _Point(t, t, t, float(latency_ms)),
            )
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
        """One sample of a container metric (utilizations, instance_count, startup_latencies)."""
        if metric_type not in _GAUGE_TYPES:
            raise ValueError(f"record_gauge: {metric_type!r} is not one of {sorted(_GAUGE_TYPES)}")
        t = _ns(self._clock() if at is None else at)
        desc = _BUILTIN[metric_type]
        v: Any = int(value) if desc.value_type == _INT64 else float(value)
        with self._lock:
            self._add(
                metric_type,
                dict(metric_labels or {}),
                REVISION_RESOURCE,
                self._revision_labels(service, revision, location),
                _Point(t, t, t, v),
            )
            self._maybe_prune()

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
        point: _Point,
    ) -> _Series:
        key: _SeriesKey = (
            metric_type,
            tuple(sorted(metric_labels.items())),
            resource_type,
            tuple(sorted(resource_labels.items())),
        )
        by_key = self._series.setdefault(metric_type, {})
        series = by_key.get(key)
        if series is None:
            d = self._descriptors[metric_type]
            series = _Series(
                metric_type, metric_labels, resource_type, resource_labels, d.kind, d.value_type, d.unit, d.buckets
            )
            by_key[key] = series
        series.append(point)
        return series

    def _maybe_prune(self) -> None:
        self._writes += 1
        if self._writes % _PRUNE_EVERY:
            return
        horizon = _ns(self._clock() - RETENTION_SECONDS)
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
        checked: list[tuple[str, dict[str, str], str, dict[str, str], _Descriptor, _Point]] = []
        now = _ns(self._clock())
        with self._lock:
            descriptors = dict(self._descriptors)
            pending_ends: dict[_SeriesKey, int] = {}
            for i, message in enumerate(series):
                ts = _pb(message)
                where = f"timeSeries[{i}]"
                mtype = ts.metric.type
                if not mtype.startswith(CUSTOM_PREFIX):
                    raise InvalidQuery(
                        f"{where}: metric type {mtype!r} cannot be written; only {CUSTOM_PREFIX}* metrics are supported"
                    )
                if not ts.resource.type:
                    raise InvalidQuery(f"{where}: the monitored resource type is missing")
                if len(ts.points) != 1:
                    raise InvalidQuery(f"{where}: a time series must have exactly one point, found {len(ts.points)}")
                p = ts.points[0]
                which = p.value.WhichOneof("value")
                value_type = {
                    "bool_value": _BOOL,
                    "int64_value": _INT64,
                    "double_value": _DOUBLE,
                    "string_value": _STRING,
                    "distribution_value": _DISTRIBUTION,
                }.get(which or "")
                if value_type is None:
                    raise InvalidQuery(f"{where}: the point has no value")
                if ts.value_type and ts.value_type != value_type:
                    raise InvalidQuery(
                        f"{where}: value_type {_type_name(ts.value_type)} does not match the point's {which}"
                    )
                kind = ts.metric_kind or _GAUGE
                if not p.interval.HasField("end_time"):
                    raise InvalidQuery(f"{where}: the point's interval.end_time is missing")
                end = p.interval.end_time.ToNanoseconds()
                start = p.interval.start_time.ToNanoseconds() if p.interval.HasField("start_time") else end
                if kind in (_DELTA, _CUMULATIVE) and not start < end:
                    raise InvalidQuery(f"{where}: a {_kind_name(kind)} point needs start_time before end_time")
                if kind == _GAUGE and start != end:
                    raise InvalidQuery(f"{where}: a GAUGE point needs start_time equal to end_time (or unset)")
                value: Any
                buckets = None
                if value_type == _DISTRIBUTION:
                    value = _Dist.from_pb(p.value.distribution_value)
                    buckets = value.buckets
                else:
                    value = getattr(p.value, which)
                desc = _Descriptor(kind, value_type, ts.unit, buckets)
                known = descriptors.get(mtype)
                if known is None:
                    descriptors[mtype] = desc
                elif (known.kind, known.value_type) != (kind, value_type):
                    raise InvalidQuery(
                        f"{where}: {mtype} is {_kind_name(known.kind)} "
                        f"{_type_name(known.value_type)}; the point is "
                        f"{_kind_name(kind)} {_type_name(value_type)}"
                    )
                elif known.buckets != buckets:
                    raise InvalidQuery(
                        f"{where}: the distribution's bucket_options differ from those of earlier points of {mtype}"
                    )
                resource_labels = dict(ts.resource.labels)
                resource_labels.setdefault("project_id", self.project)
                metric_labels = dict(ts.metric.labels)
                key: _SeriesKey = (
                    mtype,
                    tuple(sorted(metric_labels.items())),
                    ts.resource.type,
                    tuple(sorted(resource_labels.items())),
                )
                if key in pending_ends:
                    raise InvalidQuery(f"{where}: the same time series appears twice in one request")
                existing = self._series.get(mtype, {}).get(key)
                if existing is not None and existing.points and end <= existing.points[-1].end:
                    raise InvalidQuery(
                        f"{where}: points must be written in order; one or more points were older than "
                        f"the most recent point of {mtype}"
                    )
                pending_ends[key] = end
                checked.append(
                    (mtype, metric_labels, ts.resource.type, resource_labels, desc, _Point(end, start, now, value))
                )
            for mtype, desc in descriptors.items():
                self._descriptors.setdefault(mtype, desc)
            for mtype, metric_labels, rtype, resource_labels, _desc, point in checked:
                self._add(mtype, metric_labels, rtype, resource_labels, point)
                self._maybe_prune()

    # ---- ListTimeSeries

    def list_time_series(self, request: monitoring_v3.ListTimeSeriesRequest) -> monitoring_v3.ListTimeSeriesResponse:
        """Answer ``ListTimeSeries``; raise :class:`InvalidQuery` or :class:`ProjectNotFound`."""
        req = _pb(request)
        q = self._parse(req)
        now = _ns(self._clock())
        visible_before = now - _ns(self.visibility_delay)
        with self._lock:
            selected: list[tuple[_Series, list[_Point]]] = []
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
                    0 if series.kind == _CUMULATIVE else bisect.bisect_left(series.points, q.start, key=lambda p: p.end)
                )
                hi = bisect.bisect_right(series.points, q.end, key=lambda p: p.end)
                points = [p for p in series.points[lo:hi] if p.seen <= visible_before]
                if points:
                    selected.append((series, points))
        outs = self._evaluate(q, selected)
        return self._page(q, outs)

    def _parse(self, req: Any) -> _Query:
        prefix = "projects/"
        if not req.name.startswith(prefix):
            raise InvalidQuery(f"name {req.name!r} is not supported by the sandbox: use projects/{self.project}")
        if req.name[len(prefix) :] != self.project:
            raise ProjectNotFound(
                f"project {req.name[len(prefix) :]!r} not found (this sandbox holds project {self.project!r})"
            )
        metric_filter = parse_filter(req.filter)
        self._check_descriptor(metric_filter)
        if not req.HasField("interval") or not req.interval.HasField("end_time"):
            raise InvalidQuery("interval.end_time is required")
        end = req.interval.end_time.ToNanoseconds()
        start = req.interval.start_time.ToNanoseconds() if req.interval.HasField("start_time") else end
        if start > end:
            raise InvalidQuery("interval.start_time is later than interval.end_time")
        if req.order_by:
            raise InvalidQuery("order_by is unsupported and must be left blank")
        if req.HasField("secondary_aggregation") and req.secondary_aggregation.ByteSize():
            raise InvalidQuery("secondary_aggregation is not supported by the sandbox")
        view = req.view
        if view not in (
            monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
            monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS,
        ):
            raise InvalidQuery(f"view {view} is not supported")
        agg = req.aggregation
        aligner, reducer = agg.per_series_aligner, agg.cross_series_reducer
        supported = {
            _Aligner.ALIGN_NONE,
            _Aligner.ALIGN_DELTA,
            _Aligner.ALIGN_RATE,
            _Aligner.ALIGN_SUM,
            _Aligner.ALIGN_MEAN,
            _Aligner.ALIGN_MAX,
            _Aligner.ALIGN_MIN,
            _Aligner.ALIGN_COUNT,
            *_PERCENTILE_ALIGNERS,
        }
        if aligner not in supported:
            raise InvalidQuery(f"per_series_aligner {_enum_name(_Aligner, aligner)} is not supported by the sandbox")
        if reducer != _Reducer.REDUCE_NONE and aligner == _Aligner.ALIGN_NONE:
            raise InvalidQuery(
                f"cross_series_reducer {_enum_name(_Reducer, reducer)} requires a per_series_aligner "
                "other than ALIGN_NONE and an alignment_period"
            )
        period = 0
        if aligner != _Aligner.ALIGN_NONE:
            if not agg.HasField("alignment_period"):
                raise InvalidQuery(
                    f"alignment_period is required with per_series_aligner {_enum_name(_Aligner, aligner)}"
                )
            period = agg.alignment_period.ToNanoseconds()
            if period < MIN_ALIGNMENT_PERIOD_SECONDS * _NS:
                raise InvalidQuery(
                    f"alignment_period {period / _NS:g}s is too short: "
                    f"it must be at least {MIN_ALIGNMENT_PERIOD_SECONDS}s"
                )
        group_by: tuple[str, ...] = ()
        if reducer != _Reducer.REDUCE_NONE:
            _check_reducer(reducer, _DOUBLE, metric_filter.metric_type)  # the reducer itself; types checked later
            group_by = tuple(_normal_group_field(f) for f in agg.group_by_fields)
        if req.page_size < 0:
            raise InvalidQuery(f"page_size {req.page_size} must be positive")
        page_size = min(req.page_size, MAX_PAGE_SIZE) if req.page_size else DEFAULT_PAGE_POINTS
        offset = (0, 0)
        if req.page_token:
            parts = req.page_token.split(":")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise InvalidQuery(f"page_token {req.page_token!r} is not a token this API returned")
            offset = (int(parts[0]), int(parts[1]))
        headers = view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS
        return _Query(metric_filter, start, end, aligner, period, reducer, group_by, headers, page_size, offset)

    def _check_descriptor(self, metric_filter: Filter) -> None:
        """Refuse an unknown metric type, or a resource type Cloud Run metrics are not written for.

        The real API answers both with INVALID_ARGUMENT ("The supplied filter does not specify a
        valid combination of metric and monitored resource descriptors"), not with an empty list.
        """
        mtype = metric_filter.metric_type
        if mtype not in self._descriptors:
            known = ", ".join(sorted(_BUILTIN))
            raise InvalidQuery(
                f"metric.type {mtype!r} is unknown: the supplied filter does not specify a valid combination "
                f"of metric and monitored resource descriptors (the sandbox serves {known} and the "
                f"{CUSTOM_PREFIX}* metrics written to it)"
            )
        if mtype in _BUILTIN:
            for c in metric_filter.comparisons:
                if c.field == "resource.type" and not c.negated and c.value != REVISION_RESOURCE:
                    raise InvalidQuery(
                        f"resource.type {c.value!r} does not go with metric.type {mtype!r}: the supplied filter "
                        f"does not specify a valid combination of metric and monitored resource descriptors "
                        f"(use {REVISION_RESOURCE})"
                    )

    def _evaluate(self, q: _Query, selected: list[tuple[_Series, list[_Point]]]) -> list[_Out]:
        desc = self._descriptors.get(q.metric_filter.metric_type)
        if desc is not None and q.aligner != _Aligner.ALIGN_NONE:
            _check_aligner(q.aligner, desc.kind, desc.value_type, q.metric_filter.metric_type)
            if q.reducer != _Reducer.REDUCE_NONE:
                _check_reducer(q.reducer, _aligned_value_type(q.aligner, desc.value_type), q.metric_filter.metric_type)
        if q.aligner == _Aligner.ALIGN_NONE:
            return sorted(
                (
                    _Out(
                        s.metric_type,
                        dict(s.metric_labels),
                        s.resource_type,
                        dict(s.resource_labels),
                        s.kind,
                        s.value_type,
                        s.unit,
                        [(p.start, p.end, _raw_value(p.value, s)) for p in reversed(pts)],
                    )
                    for s, pts in ((s, [p for p in pts if p.end >= q.start]) for s, pts in selected)
                    if pts
                ),
                key=_sort_key,
            )
        aligned: list[tuple[_Series, int, int, dict[int, Any]]] = []
        for s, pts in selected:
            deltas = None
            if s.kind == _CUMULATIVE:
                deltas, pts = _cumulative_deltas(pts, q.start)
            kind, vt, windows = _align(s, pts, q, deltas)
            if windows:
                aligned.append((s, kind, vt, windows))
        unit = desc.unit if desc else ""
        if q.reducer == _Reducer.REDUCE_NONE:
            return sorted(
                (
                    _Out(
                        s.metric_type,
                        dict(s.metric_labels),
                        s.resource_type,
                        dict(s.resource_labels),
                        kind,
                        vt,
                        unit,
                        [self._aligned_point(q, k, kind, windows[k]) for k in sorted(windows)],
                    )
                    for s, kind, vt, windows in aligned
                ),
                key=_sort_key,
            )
        groups: dict[tuple[str, ...], list[tuple[_Series, int, int, dict[int, Any]]]] = {}
        for entry in aligned:
            s = entry[0]
            groups.setdefault(tuple(_label_of(s, f) for f in q.group_by), []).append(entry)
        outs: list[_Out] = []
        for values, members in groups.items():
            first = members[0][0]
            metric_labels = {
                f[len("metric.labels.") :]: v
                for f, v in zip(q.group_by, values, strict=True)
                if f.startswith("metric.") and v
            }
            resource_labels = {
                f[len("resource.labels.") :]: v
                for f, v in zip(q.group_by, values, strict=True)
                if f.startswith("resource.") and v
            }
            if "project_id" in first.resource_labels:
                resource_labels.setdefault("project_id", first.resource_labels["project_id"])
            in_kind, in_vt = members[0][1], members[0][2]
            by_window: dict[int, list[Any]] = {}
            for _s, _k, _vt, windows in members:
                for k, v in windows.items():
                    by_window.setdefault(k, []).append(v)
            out_vt = in_vt
            points = []
            for k in sorted(by_window):
                out_vt, value = _reduce(by_window[k], q.reducer, in_vt)
                points.append(value)
            kind = _DELTA if in_kind == _DELTA and q.reducer == _Reducer.REDUCE_SUM else _GAUGE
            outs.append(
                _Out(
                    first.metric_type,
                    metric_labels,
                    first.resource_type,
                    resource_labels,
                    kind,
                    out_vt,
                    unit,
                    [self._aligned_point(q, k, kind, v) for k, v in zip(sorted(by_window), points, strict=True)],
                )
            )
        return sorted(outs, key=_sort_key)

    @staticmethod
    def _aligned_point(q: _Query, k: int, kind: int, value: Any) -> tuple[int, int, Any]:
        end = q.end - k * q.period
        return (end - q.period if kind == _DELTA else end, end, value)

    def _page(self, q: _Query, outs: list[_Out]) -> monitoring_v3.ListTimeSeriesResponse:
        resp = monitoring_v3.ListTimeSeriesResponse.pb()()
        i, j = q.offset
        if i > len(outs):
            raise InvalidQuery("page_token is past the end of the results")
        budget = q.page_size
        while i < len(outs) and budget > 0:
            out = outs[i]
            if q.headers_only:
                _fill_series(resp.time_series.add(), out, [], headers_only=True)
                budget -= 1
                i += 1
                continue
            points = out.points[j : j + budget]
            _fill_series(resp.time_series.add(), out, points, headers_only=False)
            budget -= len(points)
            j += len(points)
            if j >= len(out.points):
                i, j = i + 1, 0
        if i < len(outs):
            resp.next_page_token = f"{i}:{j}"
        return monitoring_v3.ListTimeSeriesResponse.wrap(resp)


def _raw_value(value: Any, series: _Series) -> Any:
    if series.value_type == _DISTRIBUTION and not isinstance(value, _Dist):
        assert series.buckets is not None
        d = _Dist(series.buckets)
        d.add(value)
        return d
    return value


def _cumulative_deltas(points: list[_Point], start: int) -> tuple[dict[int, Any], list[_Point]]:
    """Per-point increase of a CUMULATIVE series (a new start_time is a reset), restricted to ``start``.

    The first point of a series (or after a reset) counts its whole value.
    """
    deltas: dict[int, Any] = {}
    kept: list[_Point] = []
    prev: _Point | None = None
    for p in points:
        d = p.value - prev.value if prev is not None and prev.start == p.start else p.value
        prev = p
        if p.end >= start:
            deltas[len(kept)] = d
            kept.append(p)
    return deltas, kept


def _label_of(series: _Series, normal_field: str) -> str:
    if normal_field.startswith("metric.labels."):
        return series.metric_labels.get(normal_field[len("metric.labels.") :], "")
    return series.resource_labels.get(normal_field[len("resource.labels.") :], "")


def _sort_key(out: _Out) -> tuple[Any, ...]:
    return (sorted(out.resource_labels.items()), sorted(out.metric_labels.items()))


def _fill_series(ts: Any, out: _Out, points: list[tuple[int, int, Any]], *, headers_only: bool) -> None:
    ts.metric.type = out.metric_type
    ts.metric.labels.update(out.metric_labels)
    ts.resource.type = out.resource_type
    ts.resource.labels.update(out.resource_labels)
    ts.metric_kind = out.kind
    ts.value_type = out.value_type
    ts.unit = out.unit
    if headers_only:
        return
    for start, end, value in points:
        p = ts.points.add()
        p.interval.start_time.FromNanoseconds(start)
        p.interval.end_time.FromNanoseconds(end)
        if isinstance(value, _Dist):
            value.fill_pb(p.value.distribution_value)
        elif out.value_type == _INT64:
            p.value.int64_value = int(value)
        elif out.value_type == _DOUBLE:
            p.value.double_value = float(value)
        elif out.value_type == _BOOL:
            p.value.bool_value = bool(value)
        else:
            p.value.string_value = str(value)


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
            name = request.name
            if name != f"projects/{store.project}":
                if name.startswith("projects/"):
                    raise ProjectNotFound(
                        f"project {name[len('projects/') :]!r} not found (this sandbox holds project {store.project!r})"
                    )
                raise InvalidQuery(f"name {name!r} is not supported by the sandbox: use projects/{store.project}")
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

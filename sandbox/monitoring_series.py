"""What the sandbox's metric store holds: metric descriptors, time series and their points.

The Cloud Run metric types the sandbox records, with their descriptors
(:data:`BUILTIN`), the shorthands of ``MetricKind`` and ``ValueType`` the
other modules share, and the naming of enum values in error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from google.api import metric_pb2

from sandbox.monitoring_distribution import LATENCY_BUCKETS, UTILIZATION_BUCKETS, Buckets

__all__ = [
    "REQUEST_COUNT",
    "REQUEST_LATENCIES",
    "STARTUP_LATENCIES",
    "CPU_UTILIZATIONS",
    "MEMORY_UTILIZATIONS",
    "INSTANCE_COUNT",
    "CUSTOM_PREFIX",
    "REVISION_RESOURCE",
    "NS",
    "GAUGE",
    "DELTA",
    "CUMULATIVE",
    "BOOL",
    "INT64",
    "DOUBLE",
    "STRING",
    "DISTRIBUTION",
    "NUMERIC",
    "Descriptor",
    "BUILTIN",
    "GAUGE_TYPES",
    "Point",
    "Series",
    "SeriesKey",
    "series_key",
    "ns",
    "enum_name",
    "kind_name",
    "type_name",
]

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
STARTUP_LATENCIES = "run.googleapis.com/container/startup_latencies"
CPU_UTILIZATIONS = "run.googleapis.com/container/cpu/utilizations"
MEMORY_UTILIZATIONS = "run.googleapis.com/container/memory/utilizations"
INSTANCE_COUNT = "run.googleapis.com/container/instance_count"

CUSTOM_PREFIX = "custom.googleapis.com/"
REVISION_RESOURCE = "cloud_run_revision"

NS = 1_000_000_000

GAUGE = metric_pb2.MetricDescriptor.MetricKind.GAUGE
DELTA = metric_pb2.MetricDescriptor.MetricKind.DELTA
CUMULATIVE = metric_pb2.MetricDescriptor.MetricKind.CUMULATIVE
BOOL = metric_pb2.MetricDescriptor.ValueType.BOOL
INT64 = metric_pb2.MetricDescriptor.ValueType.INT64
DOUBLE = metric_pb2.MetricDescriptor.ValueType.DOUBLE
STRING = metric_pb2.MetricDescriptor.ValueType.STRING
DISTRIBUTION = metric_pb2.MetricDescriptor.ValueType.DISTRIBUTION
NUMERIC = (INT64, DOUBLE)


@dataclass(frozen=True)
class Descriptor:
    """The metric kind, value type, unit and (for distributions) bucket options of a metric type."""

    kind: int
    value_type: int
    unit: str
    buckets: Buckets | None


BUILTIN: dict[str, Descriptor] = {
    REQUEST_COUNT: Descriptor(DELTA, INT64, "1", None),
    REQUEST_LATENCIES: Descriptor(DELTA, DISTRIBUTION, "ms", LATENCY_BUCKETS),
    STARTUP_LATENCIES: Descriptor(DELTA, DISTRIBUTION, "ms", LATENCY_BUCKETS),
    CPU_UTILIZATIONS: Descriptor(DELTA, DISTRIBUTION, "10^2.%", UTILIZATION_BUCKETS),
    MEMORY_UTILIZATIONS: Descriptor(DELTA, DISTRIBUTION, "10^2.%", UTILIZATION_BUCKETS),
    INSTANCE_COUNT: Descriptor(GAUGE, INT64, "1", None),
}
GAUGE_TYPES = frozenset(BUILTIN) - {REQUEST_COUNT, REQUEST_LATENCIES}


class Point(NamedTuple):
    end: int  # ns
    start: int  # ns
    seen: int  # ns: when the point reached the store (its visibility counts from here)
    value: Any  # int | float | bool | str | Distribution; a float sample for recorded distributions


@dataclass
class Series:
    """One time series: its identity, its descriptor and its points (kept sorted by end time on demand)."""

    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    kind: int
    value_type: int
    unit: str
    buckets: Buckets | None
    points: list[Point] = field(default_factory=list)
    ordered: bool = True

    def append(self, point: Point) -> None:
        if self.points and point.end < self.points[-1].end:
            self.ordered = False
        self.points.append(point)

    def sort(self) -> None:
        if not self.ordered:
            self.points.sort(key=lambda p: p.end)
            self.ordered = True


SeriesKey = tuple[str, tuple[tuple[str, str], ...], str, tuple[tuple[str, str], ...]]


def series_key(
    metric_type: str, metric_labels: dict[str, str], resource_type: str, resource_labels: dict[str, str]
) -> SeriesKey:
    """The identity of a time series: its metric and resource types and labels."""
    return (
        metric_type,
        tuple(sorted(metric_labels.items())),
        resource_type,
        tuple(sorted(resource_labels.items())),
    )


def ns(seconds: float) -> int:
    return int(round(seconds * NS))


def enum_name(enum: Any, value: int) -> str:
    """The name of ``value`` in a proto-plus enum or a protobuf enum wrapper."""
    try:
        return enum.Name(value) if hasattr(enum, "Name") else enum(value).name
    except ValueError:
        return str(value)


def kind_name(kind: int) -> str:
    return enum_name(metric_pb2.MetricDescriptor.MetricKind, kind)


def type_name(value_type: int) -> str:
    return enum_name(metric_pb2.MetricDescriptor.ValueType, value_type)

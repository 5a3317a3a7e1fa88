"""``CreateTimeSeries``: check the time series of a request and turn them into points.

Only ``custom.googleapis.com/`` metrics can be written, one point per time
series, in order, with the kind and value type (and bucket options) of the
earlier points of the metric; the first point of a new metric type defines its
descriptor. :func:`check_write` refuses the whole request with
:class:`InvalidQuery` at the first time series that breaks a rule, so the
store can apply it all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sandbox.monitoring_distribution import Distribution
from sandbox.monitoring_filter import InvalidQuery
from sandbox.monitoring_series import (
    BOOL,
    CUMULATIVE,
    CUSTOM_PREFIX,
    DELTA,
    DISTRIBUTION,
    DOUBLE,
    GAUGE,
    INT64,
    STRING,
    Descriptor,
    Point,
    Series,
    SeriesKey,
    kind_name,
    series_key,
    type_name,
)

__all__ = ["Checked", "check_write"]

_VALUE_TYPES = {
    "bool_value": BOOL,
    "int64_value": INT64,
    "double_value": DOUBLE,
    "string_value": STRING,
    "distribution_value": DISTRIBUTION,
}


class Checked(NamedTuple):
    """A written point, checked, with the identity of its time series."""

    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    point: Point


def check_write(
    series: list[Any],
    *,
    project: str,
    now: int,
    descriptors: Mapping[str, Descriptor],
    stored: Mapping[str, Mapping[SeriesKey, Series]],
) -> tuple[dict[str, Descriptor], list[Checked]]:
    """Check the raw ``TimeSeries`` messages ``series`` against the ``stored`` series and ``descriptors``.

    Return the descriptors with those of new metric types added, and the points to store
    (seen at ``now``, ns). A resource without ``project_id`` gets ``project``.
    """
    descriptors = dict(descriptors)
    checked: list[Checked] = []
    pending: set[SeriesKey] = set()
    for i, ts in enumerate(series):
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
        value_type = _VALUE_TYPES.get(which or "")
        if value_type is None:
            raise InvalidQuery(f"{where}: the point has no value")
        if ts.value_type and ts.value_type != value_type:
            raise InvalidQuery(f"{where}: value_type {type_name(ts.value_type)} does not match the point's {which}")
        kind = ts.metric_kind or GAUGE
        if not p.interval.HasField("end_time"):
            raise InvalidQuery(f"{where}: the point's interval.end_time is missing")
        end = p.interval.end_time.ToNanoseconds()
        start = p.interval.start_time.ToNanoseconds() if p.interval.HasField("start_time") else end
        if kind in (DELTA, CUMULATIVE) and not start < end:
            raise InvalidQuery(f"{where}: a {kind_name(kind)} point needs start_time before end_time")
        if kind == GAUGE and start != end:
            raise InvalidQuery(f"{where}: a GAUGE point needs start_time equal to end_time (or unset)")
        value: Any
        buckets = None
        if value_type == DISTRIBUTION:
            value = Distribution.from_pb(p.value.distribution_value)
            buckets = value.buckets
        else:
            value = getattr(p.value, which)
        known = descriptors.get(mtype)
        if known is None:
            descriptors[mtype] = Descriptor(kind, value_type, ts.unit, buckets)
        elif (known.kind, known.value_type) != (kind, value_type):
            raise InvalidQuery(
                f"{where}: {mtype} is {kind_name(known.kind)} {type_name(known.value_type)}; "
                f"the point is {kind_name(kind)} {type_name(value_type)}"
            )
        elif known.buckets != buckets:
            raise InvalidQuery(
                f"{where}: the distribution's bucket_options differ from those of earlier points of {mtype}"
            )
        resource_labels = dict(ts.resource.labels)
        resource_labels.setdefault("project_id", project)
        metric_labels = dict(ts.metric.labels)
        key = series_key(mtype, metric_labels, ts.resource.type, resource_labels)
        if key in pending:
            raise InvalidQuery(f"{where}: the same time series appears twice in one request")
        existing = stored.get(mtype, {}).get(key)
        if existing is not None and existing.points and end <= existing.points[-1].end:
            raise InvalidQuery(
                f"{where}: points must be written in order; one or more points were older than "
                f"the most recent point of {mtype}"
            )
        pending.add(key)
        checked.append(Checked(mtype, metric_labels, ts.resource.type, resource_labels, Point(end, start, now, value)))
    return descriptors, checked

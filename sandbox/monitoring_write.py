"""``CreateTimeSeries``: check the time series of a request and turn them into points.

Only ``custom.googleapis.com/`` metrics can be written, one point per time
series, in order, with the kind and value type (and bucket options) of the
earlier points of the metric; the first point of a new metric type defines its
descriptor. :func:`check_write` refuses the whole request with
:class:`InvalidQuery` (INVALID_ARGUMENT) at the first time series that breaks a
rule, so the store can apply it all or nothing.

Cloud Monitoring's documented limits, enforced here:

* at most :data:`MAX_SERIES_PER_REQUEST` (200) time series per request
  (``CreateTimeSeriesRequest.time_series``; cloud.google.com/monitoring/quotas);
* a label value of at most :data:`MAX_LABEL_VALUE_LENGTH` (1024) characters, a
  label key of at most :data:`MAX_LABEL_KEY_LENGTH` (100) (monitoring/quotas);
* end times of the points of one time series at least
  :data:`MIN_POINT_SPACING_SECONDS` (5 s) apart ("one point each 5 seconds",
  monitoring/quotas), written in order (``CreateTimeSeriesRequest``: "The new
  data point must be more recent than any other point in its time series");
* an end time not more than 25 hours in the past nor more than five minutes
  in the future (``TimeInterval``, writes).

The messages follow those Cloud Monitoring answers with ("One or more TimeSeries
could not be written: ...: timeSeries[i]").
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

__all__ = [
    "Checked",
    "check_write",
    "MAX_SERIES_PER_REQUEST",
    "MAX_LABEL_KEY_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MIN_POINT_SPACING_SECONDS",
    "MAX_PAST_SECONDS",
    "MAX_FUTURE_SECONDS",
]

MAX_SERIES_PER_REQUEST = 200
MAX_LABEL_KEY_LENGTH = 100
MAX_LABEL_VALUE_LENGTH = 1024
MIN_POINT_SPACING_SECONDS = 5
MAX_PAST_SECONDS = 25 * 3600
MAX_FUTURE_SECONDS = 5 * 60
_NS = 1_000_000_000
_PREFIX = "One or more TimeSeries could not be written: "

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
    if not series:
        raise InvalidQuery("Request must contain at least one time series.")
    if len(series) > MAX_SERIES_PER_REQUEST:
        raise InvalidQuery(
            f"Field timeSeries had an invalid value: a request may contain at most {MAX_SERIES_PER_REQUEST} "
            f"time series, found {len(series)}."
        )
    for i, ts in enumerate(series):
        where = f"timeSeries[{i}]"
        _check_labels(ts, where)
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
        stamp = p.interval.end_time.ToJsonString()
        if end < now - MAX_PAST_SECONDS * _NS:
            raise InvalidQuery(
                f"Field {where}.points[0].interval.end_time had an invalid value of \"{stamp}\": "
                "Data points cannot be written more than 25h in the past."
            )
        if end > now + MAX_FUTURE_SECONDS * _NS:
            raise InvalidQuery(
                f"Field {where}.points[0].interval.end_time had an invalid value of \"{stamp}\": "
                "Data points cannot be written more than 5m in the future."
            )
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
        last = existing.points[-1] if existing is not None and existing.points else None
        # DELTA intervals are contiguous and non-overlapping; CUMULATIVE ones keep their start (or reset after
        # the previous end); every end is later than the previous one (TimeInterval, writes)
        overlaps = last is not None and start < last.end and (kind == DELTA or (kind == CUMULATIVE and start != last.start))
        if last is not None and (end < last.end or overlaps):
            raise InvalidQuery(
                f"{_PREFIX}Points must be written in order. One or more of the points specified had an older "
                f"start time than the most recent point.: {where}"
            )
        if last is not None and end - last.end < MIN_POINT_SPACING_SECONDS * _NS:
            raise InvalidQuery(
                f"{_PREFIX}One or more points were written more frequently than the maximum sampling period "
                f"configured for the metric.: {where}"
            )
        pending.add(key)
        checked.append(Checked(mtype, metric_labels, ts.resource.type, resource_labels, Point(end, start, now, value)))
    return descriptors, checked


def _check_labels(ts: Any, where: str) -> None:
    """Label keys and values within Cloud Monitoring's lengths (100 and 1024 characters)."""
    for part, labels in (("metric", ts.metric.labels), ("resource", ts.resource.labels)):
        for key, value in labels.items():
            if len(key) > MAX_LABEL_KEY_LENGTH:
                raise InvalidQuery(
                    f"{_PREFIX}Field {where}.{part}.labels had an invalid value: the label key {key[:40]!r}... "
                    f"is longer than {MAX_LABEL_KEY_LENGTH} characters.: {where}"
                )
            if len(value) > MAX_LABEL_VALUE_LENGTH:
                raise InvalidQuery(
                    f"{_PREFIX}Field {where}.{part}.labels[{key}] had an invalid value: the label value is "
                    f"{len(value)} characters long, longer than {MAX_LABEL_VALUE_LENGTH}.: {where}"
                )

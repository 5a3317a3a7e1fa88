"""``ListTimeSeries`` requests in, response pages out.

:func:`parse_request` checks a request (filter, metric and resource
descriptors, interval, view, aggregation, paging) and raises
:class:`InvalidQuery` naming the first unsupported part, even when there is no
data; :func:`page` serializes output series into one response page.

``page_size`` counts points in the FULL view and series in the HEADERS view,
as documented; a long series continues on the next page (same identity, older
points). Without ``page_size`` a page holds at most :data:`DEFAULT_PAGE_POINTS`
points (the documented 100,000 would overflow the client's default 4 MB gRPC
message limit for distributions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.cloud import monitoring_v3

from sandbox.monitoring_aggregation import Aggregation, parse_aggregation
from sandbox.monitoring_distribution import Distribution
from sandbox.monitoring_filter import Filter, InvalidQuery, parse_filter
from sandbox.monitoring_results import Out
from sandbox.monitoring_series import BOOL, BUILTIN, CUSTOM_PREFIX, DOUBLE, INT64, REVISION_RESOURCE, Descriptor

__all__ = ["MAX_PAGE_SIZE", "DEFAULT_PAGE_POINTS", "Query", "parse_request", "page"]

MAX_PAGE_SIZE = 100_000
DEFAULT_PAGE_POINTS = 10_000

_View = monitoring_v3.ListTimeSeriesRequest.TimeSeriesView


@dataclass(frozen=True)
class Query:
    """A checked ``ListTimeSeries`` request (times in ns)."""

    metric_filter: Filter
    start: int
    end: int
    aggregation: Aggregation
    headers_only: bool
    page_size: int
    offset: tuple[int, int]  # (series index, point index) where the page starts


def parse_request(req: Any, *, descriptors: Mapping[str, Descriptor]) -> Query:
    """Check the raw ``ListTimeSeriesRequest`` ``req`` (its ``name`` is checked by the caller)."""
    metric_filter = parse_filter(req.filter)
    _check_descriptor(metric_filter, descriptors)
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
    if view not in (_View.FULL, _View.HEADERS):
        raise InvalidQuery(f"view {view} is not supported")
    aggregation = parse_aggregation(req.aggregation, metric_filter.metric_type)
    if req.page_size < 0:
        raise InvalidQuery(f"page_size {req.page_size} must be positive")
    page_size = min(req.page_size, MAX_PAGE_SIZE) if req.page_size else DEFAULT_PAGE_POINTS
    offset = (0, 0)
    if req.page_token:
        parts = req.page_token.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InvalidQuery(f"page_token {req.page_token!r} is not a token this API returned")
        offset = (int(parts[0]), int(parts[1]))
    return Query(metric_filter, start, end, aggregation, view == _View.HEADERS, page_size, offset)


def _check_descriptor(metric_filter: Filter, descriptors: Mapping[str, Descriptor]) -> None:
    """Refuse an unknown metric type, or a resource type Cloud Run metrics are not written for.

    The real API answers both with INVALID_ARGUMENT ("The supplied filter does not specify a
    valid combination of metric and monitored resource descriptors"), not with an empty list.
    """
    mtype = metric_filter.metric_type
    if mtype not in descriptors:
        known = ", ".join(sorted(BUILTIN))
        raise InvalidQuery(
            f"metric.type {mtype!r} is unknown: the supplied filter does not specify a valid combination "
            f"of metric and monitored resource descriptors (the sandbox serves {known} and the "
            f"{CUSTOM_PREFIX}* metrics written to it)"
        )
    if mtype in BUILTIN:
        for c in metric_filter.comparisons:
            if c.field == "resource.type" and not c.negated and c.value != REVISION_RESOURCE:
                raise InvalidQuery(
                    f"resource.type {c.value!r} does not go with metric.type {mtype!r}: the supplied filter "
                    f"does not specify a valid combination of metric and monitored resource descriptors "
                    f"(use {REVISION_RESOURCE})"
                )


def page(q: Query, outs: list[Out]) -> monitoring_v3.ListTimeSeriesResponse:
    """The response page of ``outs`` that starts at ``q.offset``, with the token of the next one."""
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


def _fill_series(ts: Any, out: Out, points: list[tuple[int, int, Any]], *, headers_only: bool) -> None:
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
        if isinstance(value, Distribution):
            value.fill_pb(p.value.distribution_value)
        elif out.value_type == INT64:
            p.value.int64_value = int(value)
        elif out.value_type == DOUBLE:
            p.value.double_value = float(value)
        elif out.value_type == BOOL:
            p.value.bool_value = bool(value)
        else:
            p.value.string_value = str(value)

"""``ListTimeSeries`` aggregation: per-series aligners and cross-series reducers.

:func:`parse_aggregation` checks a request's ``Aggregation`` (which aligners
and reducers the sandbox supports, the ``alignment_period``, the
``group_by_fields``) before any data is read; :meth:`Aggregation.check` checks
it against the metric's kind and value type. :meth:`Aggregation.align` turns
the points of one series into one value per window, :meth:`Aggregation.reduce`
the values of one window across series into one.

Aligned windows end at ``interval.end_time`` and every ``alignment_period``
before it; a window without data has no value (no interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.cloud import monitoring_v3

from sandbox.monitoring_distribution import Distribution, numeric_percentile
from sandbox.monitoring_filter import InvalidQuery, split_label_selector
from sandbox.monitoring_series import (
    BOOL,
    CUMULATIVE,
    DELTA,
    DISTRIBUTION,
    DOUBLE,
    GAUGE,
    INT64,
    NS,
    NUMERIC,
    Descriptor,
    Point,
    Series,
    enum_name,
    kind_name,
    type_name,
)

__all__ = ["MIN_ALIGNMENT_PERIOD_SECONDS", "Aggregation", "parse_aggregation"]

MIN_ALIGNMENT_PERIOD_SECONDS = 60  # "The value must be at least 60 seconds." (Aggregation docs)

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
_SUPPORTED_ALIGNERS = {
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
_SUPPORTED_REDUCERS = {
    _Reducer.REDUCE_SUM,
    _Reducer.REDUCE_MEAN,
    _Reducer.REDUCE_MAX,
    _Reducer.REDUCE_MIN,
    _Reducer.REDUCE_COUNT,
    *_PERCENTILE_REDUCERS,
}


@dataclass(frozen=True)
class Aggregation:
    """A checked ``Aggregation``: group-by fields in their normal spelling, the period in ns."""

    aligner: int
    period: int  # ns, 0 when not aligning
    reducer: int
    group_by: tuple[str, ...]

    @property
    def aligns(self) -> bool:
        return self.aligner != _Aligner.ALIGN_NONE

    @property
    def reduces(self) -> bool:
        return self.reducer != _Reducer.REDUCE_NONE

    def check(self, desc: Descriptor, metric_type: str) -> None:
        """Refuse an aligner or reducer that does not fit the metric's kind and value type."""
        if self.aligns:
            _check_aligner(self.aligner, desc.kind, desc.value_type, metric_type)
            if self.reduces:
                _check_reducer(self.reducer, _aligned_value_type(self.aligner, desc.value_type), metric_type)

    def align(self, series: Series, points: list[Point], *, start: int, end: int) -> tuple[int, int, dict[int, Any]]:
        """Apply the per-series aligner: (output kind, output value type, {window index: value}).

        Window ``k`` ends ``k`` periods before ``end``; ``points`` of a CUMULATIVE series may
        start before ``start`` (their increases count from the first point at or after it).
        """
        deltas = None
        if series.kind == CUMULATIVE:
            deltas, points = _cumulative_deltas(points, start)
        return _align(series, points, self, end, deltas)

    def reduce(self, values: list[Any], value_type: int) -> tuple[int, Any]:
        """Apply the cross-series reducer to the aligned values of one window: (output value type, value)."""
        return _reduce(values, self.reducer, value_type)

    def reduced_kind(self, kind: int) -> int:
        """The metric kind of a reduced series whose members are of ``kind``."""
        return DELTA if kind == DELTA and self.reducer == _Reducer.REDUCE_SUM else GAUGE

    def point(self, end: int, k: int, kind: int, value: Any) -> tuple[int, int, Any]:
        """(start, end, value) of window ``k`` (0 is the window ending at ``end``)."""
        window_end = end - k * self.period
        return (window_end - self.period if kind == DELTA else window_end, window_end, value)


def parse_aggregation(agg: Any, metric_type: str) -> Aggregation:
    """Check what can be checked without data; raise :class:`InvalidQuery` naming the unsupported part."""
    aligner, reducer = agg.per_series_aligner, agg.cross_series_reducer
    if aligner not in _SUPPORTED_ALIGNERS:
        raise InvalidQuery(f"per_series_aligner {enum_name(_Aligner, aligner)} is not supported by the sandbox")
    if reducer != _Reducer.REDUCE_NONE and aligner == _Aligner.ALIGN_NONE:
        raise InvalidQuery(
            f"cross_series_reducer {enum_name(_Reducer, reducer)} requires a per_series_aligner "
            "other than ALIGN_NONE and an alignment_period"
        )
    period = 0
    if aligner != _Aligner.ALIGN_NONE:
        if not agg.HasField("alignment_period"):
            raise InvalidQuery(f"alignment_period is required with per_series_aligner {enum_name(_Aligner, aligner)}")
        period = agg.alignment_period.ToNanoseconds()
        if period < MIN_ALIGNMENT_PERIOD_SECONDS * NS:
            raise InvalidQuery(
                f"alignment_period {period / NS:g}s is too short: it must be at least {MIN_ALIGNMENT_PERIOD_SECONDS}s"
            )
    group_by: tuple[str, ...] = ()
    if reducer != _Reducer.REDUCE_NONE:
        _check_reducer(reducer, DOUBLE, metric_type)  # the reducer itself; types checked later
        group_by = tuple(_normal_group_field(f) for f in agg.group_by_fields)
    return Aggregation(aligner, period, reducer, group_by)


def _normal_group_field(name: str) -> str:
    label = split_label_selector(name)
    if label is not None and label[1]:
        return label[0] + label[1]
    raise InvalidQuery(
        f"group_by_fields entry {name!r} is not supported by the sandbox "
        "(use metric.labels.NAME or resource.labels.NAME)"
    )


def _check_aligner(aligner: int, kind: int, value_type: int, metric_type: str) -> None:
    name = enum_name(_Aligner, aligner)
    what = f"per_series_aligner {name} is not valid for {metric_type} ({kind_name(kind)}, {type_name(value_type)})"
    if aligner in (_Aligner.ALIGN_DELTA, _Aligner.ALIGN_RATE):
        if kind not in (DELTA, CUMULATIVE):
            raise InvalidQuery(f"{what}: it needs a DELTA or CUMULATIVE metric")
        if value_type not in NUMERIC and not (aligner == _Aligner.ALIGN_DELTA and value_type == DISTRIBUTION):
            raise InvalidQuery(f"{what}: it needs numeric values")
        if kind == CUMULATIVE and value_type == DISTRIBUTION:
            raise InvalidQuery(f"{what}: CUMULATIVE distributions are not supported by the sandbox")
        return
    if kind == CUMULATIVE:
        raise InvalidQuery(f"{what}: it needs a GAUGE or DELTA metric")
    if aligner in (_Aligner.ALIGN_SUM, _Aligner.ALIGN_MEAN):
        ok = value_type in NUMERIC or value_type == DISTRIBUTION
    elif aligner in (_Aligner.ALIGN_MAX, _Aligner.ALIGN_MIN):
        ok = value_type in NUMERIC
    elif aligner == _Aligner.ALIGN_COUNT:
        ok = value_type in NUMERIC or value_type == BOOL
    else:  # percentiles
        ok = value_type == DISTRIBUTION
    if not ok:
        raise InvalidQuery(f"{what}: wrong value type")


def _check_reducer(reducer: int, value_type: int, metric_type: str) -> None:
    name = enum_name(_Reducer, reducer)
    if reducer not in _SUPPORTED_REDUCERS:
        raise InvalidQuery(f"cross_series_reducer {name} is not supported by the sandbox")
    if reducer in (_Reducer.REDUCE_MAX, _Reducer.REDUCE_MIN) and value_type not in NUMERIC:
        vt = type_name(value_type)
        raise InvalidQuery(f"cross_series_reducer {name} is not valid for {metric_type} aligned to {vt} values")


def _aligned_value_type(aligner: int, value_type: int) -> int:
    if aligner == _Aligner.ALIGN_COUNT:
        return INT64
    if aligner in (_Aligner.ALIGN_RATE, _Aligner.ALIGN_MEAN, *_PERCENTILE_ALIGNERS):
        return DOUBLE
    return value_type


def _align(
    series: Series, points: list[Point], agg: Aggregation, end: int, deltas: dict[int, Any] | None
) -> tuple[int, int, dict[int, Any]]:
    """Apply the per-series aligner: (output kind, output value type, {window index: value})."""
    windows: dict[int, list[Any]] = {}
    for i, p in enumerate(points):
        value = deltas[i] if deltas is not None else p.value
        windows.setdefault((end - p.end) // agg.period, []).append(value)
    a = agg.aligner
    vt = series.value_type
    seconds = agg.period / NS
    out: dict[int, Any] = {}
    if a in (_Aligner.ALIGN_DELTA, _Aligner.ALIGN_SUM):
        kind = DELTA if series.kind in (DELTA, CUMULATIVE) else GAUGE
        for k, values in windows.items():
            out[k] = _sum(values, series)
        return kind, vt, out
    if a == _Aligner.ALIGN_RATE:
        for k, values in windows.items():
            out[k] = float(_sum(values, series)) / seconds
        return GAUGE, DOUBLE, out
    if a == _Aligner.ALIGN_MEAN:
        for k, values in windows.items():
            if vt == DISTRIBUTION:
                out[k] = _sum(values, series).mean
            else:
                out[k] = float(sum(values)) / len(values)
        return GAUGE, DOUBLE, out
    if a in (_Aligner.ALIGN_MAX, _Aligner.ALIGN_MIN):
        pick = max if a == _Aligner.ALIGN_MAX else min
        for k, values in windows.items():
            out[k] = pick(values)
        return GAUGE, vt, out
    if a == _Aligner.ALIGN_COUNT:
        for k, values in windows.items():
            out[k] = len(values)
        return GAUGE, INT64, out
    pct = _PERCENTILE_ALIGNERS[a]
    for k, values in windows.items():
        out[k] = _sum(values, series).percentile(pct)
    return GAUGE, DOUBLE, out


def _sum(values: list[Any], series: Series) -> Any:
    if series.value_type == DISTRIBUTION:
        assert series.buckets is not None
        return Distribution.combined(series.buckets, values)
    return sum(values)


def _reduce(values: list[Any], reducer: int, value_type: int) -> tuple[int, Any]:
    """Apply the cross-series reducer to one window: (output value type, value)."""
    dist = value_type == DISTRIBUTION
    if reducer == _Reducer.REDUCE_COUNT:
        return INT64, len(values)
    if reducer in (_Reducer.REDUCE_MAX, _Reducer.REDUCE_MIN):
        return value_type, (max if reducer == _Reducer.REDUCE_MAX else min)(values)
    merged = Distribution.combined(values[0].buckets, values) if dist else None
    if reducer == _Reducer.REDUCE_SUM:
        return value_type, merged if merged is not None else sum(values)
    if reducer == _Reducer.REDUCE_MEAN:
        return DOUBLE, merged.mean if merged is not None else float(sum(values)) / len(values)
    pct = _PERCENTILE_REDUCERS[reducer]
    if merged is not None:
        return DOUBLE, merged.percentile(pct)
    return DOUBLE, numeric_percentile([float(v) for v in values], pct)


def _cumulative_deltas(points: list[Point], start: int) -> tuple[dict[int, Any], list[Point]]:
    """Per-point increase of a CUMULATIVE series (a new start_time is a reset), restricted to ``start``.

    The first point of a series (or after a reset) counts its whole value.
    """
    deltas: dict[int, Any] = {}
    kept: list[Point] = []
    prev: Point | None = None
    for p in points:
        d = p.value - prev.value if prev is not None and prev.start == p.start else p.value
        prev = p
        if p.end >= start:
            deltas[len(kept)] = d
            kept.append(p)
    return deltas, kept


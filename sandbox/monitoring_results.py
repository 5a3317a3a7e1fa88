"""The output series of ``ListTimeSeries``, built from the points the store selected.

:func:`evaluate` gives raw points (``ALIGN_NONE``), one aligned series per
stored series, or one reduced series per group of ``group_by_fields`` values;
points newest first, series sorted by resource then metric labels. A reduced
series keeps only the grouped labels and the resource's ``project_id``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sandbox.monitoring_aggregation import Aggregation
from sandbox.monitoring_distribution import Distribution
from sandbox.monitoring_filter import label_value
from sandbox.monitoring_series import DISTRIBUTION, Descriptor, Point, Series

__all__ = ["Out", "evaluate"]

_Aligned = tuple[Series, int, int, dict[int, Any]]  # series, aligned kind, aligned value type, {window: value}


class Out(NamedTuple):
    """One output time series before serialization."""

    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    kind: int
    value_type: int
    unit: str
    points: list[tuple[int, int, Any]]  # (start ns, end ns, value), newest first


def evaluate(
    agg: Aggregation,
    selected: list[tuple[Series, list[Point]]],
    *,
    start: int,
    end: int,
    metric_type: str,
    desc: Descriptor | None,
) -> list[Out]:
    """The output series of ``selected`` (points ending in ``[start, end]``), sorted by labels.

    Raise :class:`InvalidQuery` when the aligner or reducer does not fit the metric's descriptor.
    """
    if desc is not None:
        agg.check(desc, metric_type)
    if not agg.aligns:
        raw = ((s, [p for p in pts if p.end >= start]) for s, pts in selected)
        return sorted((_raw_out(s, pts) for s, pts in raw if pts), key=_sort_key)
    aligned: list[_Aligned] = []
    for s, pts in selected:
        kind, vt, windows = agg.align(s, pts, start=start, end=end)
        if windows:
            aligned.append((s, kind, vt, windows))
    unit = desc.unit if desc else ""
    if not agg.reduces:
        return sorted(
            (
                _series_out(s, kind, vt, unit, [agg.point(end, k, kind, windows[k]) for k in sorted(windows)])
                for s, kind, vt, windows in aligned
            ),
            key=_sort_key,
        )
    return sorted(_reduced(agg, aligned, end=end, unit=unit), key=_sort_key)


def _reduced(agg: Aggregation, aligned: list[_Aligned], *, end: int, unit: str) -> list[Out]:
    """One output series per group of ``group_by`` values, each window reduced across the group."""
    groups: dict[tuple[str, ...], list[_Aligned]] = {}
    for entry in aligned:
        s = entry[0]
        key = tuple(
            label_value(f, metric_labels=s.metric_labels, resource_labels=s.resource_labels) for f in agg.group_by
        )
        groups.setdefault(key, []).append(entry)
    outs: list[Out] = []
    for values, members in groups.items():
        first = members[0][0]
        metric_labels = {
            f[len("metric.labels.") :]: v
            for f, v in zip(agg.group_by, values, strict=True)
            if f.startswith("metric.") and v
        }
        resource_labels = {
            f[len("resource.labels.") :]: v
            for f, v in zip(agg.group_by, values, strict=True)
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
            out_vt, value = agg.reduce(by_window[k], in_vt)
            points.append(value)
        kind = agg.reduced_kind(in_kind)
        outs.append(
            Out(
                first.metric_type,
                metric_labels,
                first.resource_type,
                resource_labels,
                kind,
                out_vt,
                unit,
                [agg.point(end, k, kind, v) for k, v in zip(sorted(by_window), points, strict=True)],
            )
        )
    return outs


def _series_out(series: Series, kind: int, value_type: int, unit: str, points: list[tuple[int, int, Any]]) -> Out:
    """An output series with the identity (types and labels) of ``series``."""
    return Out(
        series.metric_type,
        dict(series.metric_labels),
        series.resource_type,
        dict(series.resource_labels),
        kind,
        value_type,
        unit,
        points,
    )


def _raw_out(series: Series, points: list[Point]) -> Out:
    """The raw points of ``series``, newest first."""
    values = [(p.start, p.end, _raw_value(p.value, series)) for p in reversed(points)]
    return _series_out(series, series.kind, series.value_type, series.unit, values)


def _raw_value(value: Any, series: Series) -> Any:
    """A raw point's value; a recorded sample of a distribution metric becomes a one-sample distribution."""
    if series.value_type == DISTRIBUTION and not isinstance(value, Distribution):
        assert series.buckets is not None
        d = Distribution(series.buckets)
        d.add(value)
        return d
    return value


def _sort_key(out: Out) -> tuple[Any, ...]:
    return (sorted(out.resource_labels.items()), sorted(out.metric_labels.items()))

"""Judging the revision's Cloud Monitoring data against the ``[metrics]`` limits.

Each limit has three outcomes (:class:`Verdict`): ``pass``, ``fail`` (the
message names the metric, the value seen, the limit, the window and the
revision) and ``no-data``: too few requests visible, an empty distribution
once the wait is over, a previous revision with too few requests, or a
baseline difference too small to be significant. A value that is not a finite
number is never compared, so it can never pass. A baseline comparison when
there is no previous revision at all (a first deploy) does not apply: it is
``skip``, never a pass either.

The baseline's error-rate comparison uses scipy's one-sided Fisher exact test:
an increase beyond the allowance that is not significant at ``alpha`` is
inconclusive ("not verified"), not a pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .checklist import Baseline, MetricLimit, Metrics
from .metrics_query import (
    CPU_UTILIZATIONS,
    MEMORY_UTILIZATIONS,
    REQUEST_LATENCIES,
    STARTUP_LATENCIES,
    Histogram,
    Scope,
    Window,
)

__all__ = ["MetricsData", "Verdict", "judge_baseline", "judge_limit", "metrics_needed"]

Outcome = Literal["pass", "fail", "no-data", "skip"]
MIN_VISIBLE_AFTER = 240
"""Seconds after which a request Cloud Run counted is visible for sure: its 60 s sample, then up to 180 s."""

_PERCENTILE = {"p50-latency": 50.0, "p95-latency": 95.0, "p99-latency": 99.0}
_DISTRIBUTION_OF = {
    "p50-latency": REQUEST_LATENCIES,
    "p95-latency": REQUEST_LATENCIES,
    "p99-latency": REQUEST_LATENCIES,
    "memory-utilization": MEMORY_UTILIZATIONS,
    "cpu-utilization": CPU_UTILIZATIONS,
    "startup-latency": STARTUP_LATENCIES,
}
_NAME = {
    "error-rate": "error rate",
    "p50-latency": "p50 request latency",
    "p95-latency": "p95 request latency",
    "p99-latency": "p99 request latency",
    "memory-utilization": "p99 memory utilization",
    "cpu-utilization": "p99 CPU utilization",
    "startup-latency": "p99 container startup latency",
}


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str = ""


def metrics_needed(metrics: Metrics, selected: set[str] | None = None) -> list[str]:
    """The distribution metrics the configured limits need (each is queried once).

    ``selected``: the ids of the checks this run runs (``test_metric[ID]``, ``baseline:ID``); None: all.
    """
    ids = [limit.id for limit in metrics.limits()]
    if metrics.baseline is not None:
        ids += [f"baseline:{limit.id}" for limit in metrics.baseline.limits()]
    if selected is not None:
        ids = [i for i in ids if i in selected]
    ids = [i.removeprefix("baseline:") for i in ids]
    needed: list[str] = []
    for key in ids:
        metric = _DISTRIBUTION_OF.get(key)
        if metric and metric not in needed:
            needed.append(metric)
    return needed


@dataclass(frozen=True, kw_only=True)
class MetricsData:
    """Everything the checks judge, read once per run over one window."""

    scope: Scope
    window: Window
    min_requests: int
    waited: float
    counts: dict[str, dict[str, int]]
    """``{revision: {response_code_class: requests}}``."""
    distributions: dict[str, dict[str, Histogram]] = field(default_factory=dict)
    """``{metric type: {revision: distribution}}``."""
    windows: dict[str, Window] = field(default_factory=dict)
    """``{metric type: window}`` of the distributions read again after the wait for requests (later windows)."""
    waited_for_data: float = 0.0
    """Seconds waited in all: for the requests, then for the distributions that had no data yet."""
    calls: int = 0
    warmup_sent: int = 0
    """Warm-up requests the gate sent to the revision before waiting (``--warmup-requests``)."""
    own: dict[str, int] = field(default_factory=dict)
    """``{response_code_class: requests}`` of the gate's own requests that are no evidence (readiness
    retries, refusal probes, the logs probe: :mod:`revgate.own_requests`), left out of the revision under
    test's counts; ``own_described`` says what they were."""
    own_described: str = ""

    def _own(self, revisions: Sequence[str], klass: str | None = None) -> int:
        if tuple(revisions) != tuple(self.scope.revisions):  # they went to the revision(s) under test only
            return 0
        return sum(self.own.values()) if klass is None else self.own.get(klass, 0)

    def requests(self, revisions: Sequence[str]) -> int:
        seen = sum(sum(self.counts.get(r, {}).values()) for r in revisions)
        return max(seen - self._own(revisions), 0)

    def errors(self, revisions: Sequence[str]) -> int:
        seen = sum(self.counts.get(r, {}).get("5xx", 0) for r in revisions)
        return max(seen - self._own(revisions, "5xx"), 0)

    def left_out(self) -> str:
        """``"; the gate's own 4 readiness requests, 2 refusal probes left out"``, or ''."""
        if not self.own or not sum(self.own.values()):
            return ""
        return f"; the gate's own {self.own_described or sum(self.own.values())} left out"

    def histogram(self, metric: str, revisions: Sequence[str]) -> Histogram:
        merged = Histogram((), [], 0, 0.0)
        for revision in revisions:
            hist = self.distributions.get(metric, {}).get(revision)
            if hist is not None:
                merged = merged.merge(hist)
        return merged

    def where(self, metric: str | None = None) -> str:
        """The window (of ``metric``'s query, when given) and the revision(s) under test."""
        window = self.windows.get(metric, self.window) if metric else self.window
        return f"over {window.describe()}, revision {self.scope.describe()}"

    def too_few_requests(self) -> Verdict | None:
        seen = self.requests(self.scope.revisions)
        if seen >= self.min_requests:
            return None
        if seen == 0 and self.warmup_sent:
            # the gate sent requests and not one is counted: they never reached an instance of the revision
            short = self.waited < MIN_VISIBLE_AFTER
            return Verdict(
                "fail",
                f"none of the {self.warmup_sent} warm-up requests sent to the revision is in "
                f"run.googleapis.com/request_count after waiting {self.waited:.0f} s ({self.where()}): Cloud Run "
                "counts only requests that reach an instance, so they were turned away before one (no instance "
                "of the revision answered)"
                + (
                    f"; or the wait was shorter than a 60 s sample plus up to 180 s before it is visible "
                    f"({MIN_VISIBLE_AFTER} s: --metrics-timeout)"
                    if short
                    else ""
                ),
            )
        return Verdict(
            "no-data",
            f"only {seen} of the {self.min_requests} requests needed were visible in Cloud Monitoring "
            f"after waiting {self.waited:.0f} s ({self.where()}): send traffic to the revision "
            "(--warmup-requests N) or wait longer (--metrics-timeout)",
        )


def _fmt(key: str, value: float) -> str:
    if key == "error-rate":
        return f"{value * 100:.2f} %"
    if key.endswith("utilization"):
        return f"{value:.2f}"
    return f"{value:.0f} ms"


def judge_limit(limit: MetricLimit, data: MetricsData) -> Verdict:
    """One ``[metrics]`` limit of the revision(s) under test."""
    too_few = data.too_few_requests()
    if too_few is not None:
        return too_few
    revisions = data.scope.revisions
    name = _NAME[limit.id]
    if limit.id == "error-rate":
        total, errors = data.requests(revisions), data.errors(revisions)
        value = errors / total
        seen = f"{_fmt(limit.id, value)} ({errors} of {total} requests answered 5xx{data.left_out()})"
    else:
        metric = _DISTRIBUTION_OF[limit.id]
        hist = data.histogram(metric, revisions)
        if hist.count == 0:
            return Verdict(
                "no-data",
                f"no {name} data in Cloud Monitoring after waiting {data.waited_for_data:.0f} s "
                f"({data.where(metric)}): wait longer (--metrics-timeout)",
            )
        value = hist.percentile(_PERCENTILE.get(limit.id, 99.0))
        seen = f"{_fmt(limit.id, value)} (of {hist.count} values)"
    where = data.where(_DISTRIBUTION_OF.get(limit.id))
    if not math.isfinite(value):
        return Verdict("no-data", f"{name} is not a number ({value}) {where}")
    if value <= limit.limit:
        return Verdict("pass")
    return Verdict("fail", f"{name} {seen} exceeds the limit {_fmt(limit.id, limit.limit)} {where}")


def judge_baseline(limit: MetricLimit, baseline: Baseline, data: MetricsData) -> Verdict:
    """One ``[metrics.baseline]`` comparison: the revision(s) under test against the previous revision.

    Without any previous revision (a first deploy) the comparison does not apply: ``skip``, whatever the data.
    """
    previous = data.scope.baseline
    if previous is None:
        return Verdict("skip", f"no previous revision to compare with (revision {data.scope.describe()})")
    too_few = data.too_few_requests()
    if too_few is not None:
        return too_few
    old_total = data.requests([previous])
    if old_total < data.min_requests:
        return Verdict(
            "no-data",
            f"inconclusive: the previous revision {previous} had {old_total} requests visible in Cloud Monitoring, "
            f"{data.min_requests} are needed for a comparison ({data.where()})",
        )
    revisions = data.scope.revisions
    if limit.id == "error-rate":
        return _judge_error_rate(limit, baseline, data, previous, old_total)
    pct = _PERCENTILE[limit.id]
    new_hist = data.histogram(REQUEST_LATENCIES, revisions)
    old_hist = data.histogram(REQUEST_LATENCIES, [previous])
    new, old = new_hist.percentile(pct), old_hist.percentile(pct)
    name = _NAME[limit.id]
    where = data.where(REQUEST_LATENCIES)  # one query, one window, for both revisions
    if not (math.isfinite(new) and math.isfinite(old)) or old <= 0:
        return Verdict("no-data", f"inconclusive: {name} is {new:.0f} ms against {old:.0f} ms for {previous} ({where})")
    ratio = new / old
    if ratio <= limit.limit or new - old <= baseline.latency_slack_ms:
        return Verdict("pass")
    return Verdict(
        "fail",
        f"{name} {new:.0f} ms is {ratio:.2f} x the previous revision's ({previous}: {old:.0f} ms), "
        f"above the limit {limit.limit:g} x (and more than {baseline.latency_slack_ms:g} ms slower) {where}",
    )


def _judge_error_rate(limit: MetricLimit, baseline: Baseline, data: MetricsData, previous: str, old_total: int) -> Verdict:
    revisions = data.scope.revisions
    new_total, new_errors = data.requests(revisions), data.errors(revisions)
    old_errors = data.errors([previous])
    new_rate, old_rate = new_errors / new_total, old_errors / old_total
    increase = new_rate - old_rate
    if increase <= limit.limit:
        return Verdict("pass")
    from scipy.stats import fisher_exact  # about a second to import: only when the test decides

    table = [[new_errors, new_total - new_errors], [old_errors, old_total - old_errors]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    seen = (
        f"error rate {new_rate * 100:.2f} % ({new_errors} of {new_total}) against {old_rate * 100:.2f} % "
        f"({old_errors} of {old_total}) for the previous revision {previous}: +{increase * 100:.2f} points"
    )
    if p_value < baseline.alpha:
        return Verdict(
            "fail",
            f"{seen}, more than the allowed +{limit.limit * 100:g} points (Fisher exact test p = {p_value:.2g}) {data.where()}",
        )
    return Verdict(
        "no-data",
        f"inconclusive: {seen}, over the allowed +{limit.limit * 100:g} points but not significant "
        f"(Fisher exact test p = {p_value:.2g} >= alpha {baseline.alpha:g}) {data.where()}",
    )

"""The metric checks' options, the wait for Cloud Monitoring data, and the one read per run.

Cloud Run samples its metrics every 60 s and Cloud Monitoring shows them up
to 180 s later, so :func:`collect` first polls the request count (one call
per poll) until ``min_requests`` requests of the revision under test are
visible or ``--metrics-timeout`` runs out, reporting one progress line at a
time, then reads each distribution the selected checks need once, over the
same window. A distribution with no data yet for the revision under test (a
freshly deployed revision: its first utilization samples come later than its
requests) is polled again, one call per missing metric per poll, each over a
window ending at that poll, until it has data or the same deadline passes;
only then is it "no data". The checks then judge that :class:`MetricsData`
without further calls (:mod:`revgate.metrics_judge`).

Options (group "revgate metrics"; command line > environment > ``pytest.ini``
> checklist): ``--metrics-window``, ``--metrics-timeout``,
``--metrics-no-data fail|skip``, ``--warmup-requests``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pytest

from .checklist import Checklist, Metrics
from .errors import ConfigError
from .metrics_judge import MetricsData, Verdict, judge_baseline, judge_limit, metrics_needed
from .metrics_query import Histogram, MonitoringUnavailable, Queries, Scope, Window

__all__ = [
    "DEFAULT_TIMEOUT",
    "MIN_WINDOW",
    "MetricsData",
    "MetricsOptions",
    "MonitoringUnavailable",
    "Scope",
    "Verdict",
    "add_metrics_options",
    "collect",
    "judge_baseline",
    "judge_limit",
    "resolve_metrics_options",
    "wait_for_distributions",
    "wait_for_requests",
]

DEFAULT_TIMEOUT = 270.0
"""Seconds to wait for data: one 60 s sample, plus up to 180 s before it is visible, plus a poll's margin."""
SAMPLE_PERIOD = 60
"""Cloud Run samples its metrics every 60 s (cloud.google.com/monitoring/api/metrics_gcp, run.googleapis.com)."""
MAX_VISIBILITY_DELAY = 180
"""After sampling, Cloud Run data is not visible for up to 180 s (same source)."""
MIN_WINDOW = SAMPLE_PERIOD + MAX_VISIBILITY_DELAY  # == metrics_judge.MIN_VISIBLE_AFTER
"""The shortest window that always holds a visible sample: a window ending now holds a point only if the
point ended inside it; the newest point sure to be visible ended up to 180 s ago, and its sample period
began 60 s before that, so a window under 240 s can miss every request of a revision that had traffic."""

NoData = Literal["fail", "skip"]
Progress = Callable[[str, bool], None]


@dataclass(frozen=True, kw_only=True)
class MetricsOptions:
    window: int
    timeout: float
    no_data: NoData
    warmup_requests: int

    def describe(self, metrics: Metrics) -> str:
        return (
            f"window {self.window} s, wait up to {self.timeout:g} s for {metrics.min_requests} requests, "
            f"no data -> {self.no_data}, warm-up requests {self.warmup_requests}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricsOptions:
        return cls(**data)


def add_metrics_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate metrics", "revgate metrics: Cloud Monitoring checks of the revision")
    group.addoption(
        "--metrics-window",
        type=int,
        default=None,
        help=f"Seconds of Cloud Monitoring data judged (at least {MIN_WINDOW}: a 60 s sample plus up to 180 s "
        "before it is visible). Env: REVGATE_METRICS_WINDOW; "
        "ini: revgate_metrics_window; default: the checklist's [metrics] window.",
    )
    group.addoption(
        "--metrics-timeout",
        type=float,
        default=None,
        help="Seconds to wait for min_requests requests, and for data of every metric the checks read, "
        "to be visible in Cloud Monitoring. "
        f"Env: REVGATE_METRICS_TIMEOUT; ini: revgate_metrics_timeout; default: {DEFAULT_TIMEOUT:g}.",
    )
    group.addoption(
        "--metrics-no-data",
        default=None,
        choices=["fail", "skip"],
        help="What too little data means: fail the check, or skip it as not verified. "
        "Env: REVGATE_METRICS_NO_DATA; ini: revgate_metrics_no_data; default: fail.",
    )
    group.addoption(
        "--warmup-requests",
        type=int,
        default=None,
        help="Send N requests to the revision URL before waiting, so that a tag-only revision has data. "
        "Env: REVGATE_WARMUP_REQUESTS; default: 0.",
    )
    parser.addini("revgate_metrics_window", "Seconds of Cloud Monitoring data judged.", default=None)
    parser.addini("revgate_metrics_timeout", "Seconds to wait for Cloud Monitoring data.", default=None)
    parser.addini("revgate_metrics_no_data", "fail or skip when there is too little data.", default=None)


MAX_WINDOW = 86_400
"""Seconds: the longest window judged (as the checklist's ``[metrics] window`` allows)."""
MAX_METRICS_TIMEOUT = 3600.0
"""Seconds: the longest wait for Cloud Monitoring data (its samples are visible within 4 minutes)."""
MAX_WARMUP = 10_000
"""Warm-up requests at most (as ``[[latency]] requests`` allows)."""


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def _number(raw: Any, *, what: str, flag: str, kind: type, minimum: float, maximum: float) -> Any:
    """``raw`` as ``kind`` (a finite number) within ``[minimum, maximum]``; ConfigError otherwise."""
    try:
        value = kind(raw)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{flag} {raw!r} is not {what}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{flag} {raw!r} is not a finite number")
    if value < minimum:
        raise ConfigError(f"{flag} {raw} must be at least {minimum:g}")
    if value > maximum:
        raise ConfigError(f"{flag} {raw} must be at most {maximum:g}")
    return value


def resolve_metrics_options(config: pytest.Config, checklist: Checklist) -> MetricsOptions | None:
    """The metric options of this run, or None when the checklist has no ``[metrics]``; raises ConfigError."""
    if checklist.metrics is None:
        return None
    env = os.environ
    window_raw = _first(
        config.getoption("metrics_window"), env.get("REVGATE_METRICS_WINDOW"), config.getini("revgate_metrics_window")
    )
    window = checklist.metrics.window
    if window_raw is not None:
        window = _number(window_raw, what="a whole number of seconds", flag="--metrics-window", kind=int, minimum=1, maximum=MAX_WINDOW)
    if window < MIN_WINDOW:
        where = "--metrics-window" if window_raw is not None else "the checklist's [metrics] window"
        raise ConfigError(
            f"{where} {window} s is shorter than Cloud Monitoring data can cover: at least {MIN_WINDOW} s "
            f"(Cloud Run samples every {SAMPLE_PERIOD} s, and a sample is visible up to {MAX_VISIBILITY_DELAY} s later)"
        )
    timeout_raw = _first(
        config.getoption("metrics_timeout"), env.get("REVGATE_METRICS_TIMEOUT"), config.getini("revgate_metrics_timeout")
    )
    timeout = DEFAULT_TIMEOUT
    if timeout_raw is not None:
        timeout = _number(timeout_raw, what="a number of seconds", flag="--metrics-timeout", kind=float, minimum=0, maximum=MAX_METRICS_TIMEOUT)
    no_data = _first(
        config.getoption("metrics_no_data"), env.get("REVGATE_METRICS_NO_DATA"), config.getini("revgate_metrics_no_data")
    ) or "fail"
    if no_data not in ("fail", "skip"):
        raise ConfigError(f"--metrics-no-data {no_data!r}: choose fail or skip")
    warmup_raw = _first(config.getoption("warmup_requests"), env.get("REVGATE_WARMUP_REQUESTS"))
    warmup = 0
    if warmup_raw is not None:
        warmup = _number(warmup_raw, what="a whole number", flag="--warmup-requests", kind=int, minimum=0, maximum=MAX_WARMUP)
    return MetricsOptions(window=window, timeout=timeout, no_data=no_data, warmup_requests=warmup)


def poll_interval(timeout: float) -> float:
    """Seconds between polls: 15 s against real Cloud Monitoring (60 s samples), shorter for short waits."""
    return min(15.0, max(1.0, timeout / 10))


def wait_for_requests(
    queries: Queries,
    *,
    window_seconds: int,
    min_requests: int,
    timeout: float,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
    started: float | None = None,
) -> tuple[dict[str, dict[str, int]], Window, float]:
    """Poll the request count until ``min_requests`` are visible or ``timeout`` runs out.

    Returns the last counts, their window (the distributions are read over it first) and the seconds waited.
    """
    scope = queries.scope
    started = time.monotonic() if started is None else started
    deadline = started + timeout
    interval = poll_interval(timeout)
    while True:
        window = Window.ending_now(window_seconds)
        counts = queries.request_counts(window)
        seen = sum(sum(counts.get(r, {}).values()) for r in scope.revisions)
        left = deadline - time.monotonic()
        if seen >= min_requests or left <= 0:
            return counts, window, time.monotonic() - started
        progress(
            f"revgate metrics: waiting for Cloud Monitoring: {seen} of {min_requests} requests of "
            f"{scope.describe()} visible, {left:.0f} s left",
            False,
        )
        sleep(min(interval, max(left, 0.0)))


def _short(metric: str) -> str:
    return metric.removeprefix("run.googleapis.com/")


def _has_data(histograms: dict[str, Histogram], revisions: tuple[str, ...]) -> bool:
    return any(histograms[r].count > 0 for r in revisions if r in histograms)


def wait_for_distributions(
    queries: Queries,
    needed: list[str],
    *,
    window: Window,
    deadline: float,
    interval: float,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, dict[str, Histogram]], dict[str, Window], list[str]]:
    """Read each needed distribution over ``window``, then poll those with no data for the revision under test.

    One call per metric, then one call per still-missing metric per poll (polls ``interval`` seconds apart,
    each over a window ending at that poll) until each has data or ``deadline`` (``time.monotonic()``)
    passes. "No data" is what the judge calls no data: an empty distribution for the revision(s) under test.
    Returns the distributions, the later windows of the metrics read again, and the metrics waited for.
    """
    revisions = queries.scope.revisions
    distributions = {metric: queries.distributions(metric, window) for metric in needed}
    windows: dict[str, Window] = {}
    missing = [m for m in needed if not _has_data(distributions[m], revisions)]
    waited_for = list(missing)
    while missing:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        progress(
            f"revgate metrics: waiting for Cloud Monitoring: no {', '.join(_short(m) for m in missing)} data of "
            f"{queries.scope.describe()} yet, {left:.0f} s left",
            False,
        )
        sleep(min(interval, left))
        later = Window.ending_now(window.seconds)
        for metric in missing:
            distributions[metric] = queries.distributions(metric, later)
            windows[metric] = later
        missing = [m for m in missing if not _has_data(distributions[m], revisions)]
    return distributions, windows, waited_for


def collect(
    queries: Queries,
    *,
    metrics: Metrics,
    options: MetricsOptions,
    progress: Progress,
    selected: set[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> MetricsData:
    """Wait for the requests, then read (and wait for) every distribution the selected checks need."""
    from . import own_requests

    started = time.monotonic()
    counts, window, waited = wait_for_requests(
        queries,
        window_seconds=options.window,
        min_requests=metrics.min_requests,
        timeout=options.timeout,
        progress=progress,
        sleep=sleep,
        started=started,
    )
    data = MetricsData(
        scope=queries.scope,
        window=window,
        min_requests=metrics.min_requests,
        waited=waited,
        counts=counts,
        warmup_sent=options.warmup_requests,
        own=own_requests.by_class(),
        own_described=own_requests.describe(),
    )
    distributions: dict[str, dict[str, Histogram]] = {}
    windows: dict[str, Window] = {}
    waited_for: list[str] = []
    if data.too_few_requests() is None:
        distributions, windows, waited_for = wait_for_distributions(
            queries,
            metrics_needed(metrics, selected),
            window=window,
            deadline=started + options.timeout,
            interval=poll_interval(options.timeout),
            progress=progress,
            sleep=sleep,
        )
    total = time.monotonic() - started
    seen = data.requests(queries.scope.revisions)
    line = (
        f"revgate metrics: {seen} requests of {queries.scope.describe()} visible after waiting {waited:.1f} s "
        f"({'enough' if seen >= metrics.min_requests else 'too few'}, {metrics.min_requests} needed); "
    )
    if waited_for:
        absent = [_short(m) for m in waited_for if not _has_data(distributions[m], queries.scope.revisions)]
        line += f"then waited for {', '.join(_short(m) for m in waited_for)}: "
        line += f"still no {', '.join(absent)} data" if absent else "all visible"
        line += f" after {total:.1f} s; "
    progress(line + f"{queries.calls} ListTimeSeries calls", True)
    return MetricsData(
        scope=queries.scope,
        window=window,
        min_requests=metrics.min_requests,
        waited=waited,
        counts=counts,
        distributions=distributions,
        windows=windows,
        waited_for_data=total,
        calls=queries.calls,
        warmup_sent=options.warmup_requests,
        own=own_requests.by_class(),
        own_described=own_requests.describe(),
    )

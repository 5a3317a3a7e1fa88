"""The queries through the real MetricServiceClient (one call per metric, a refused query never reads as
"no data"), the wait for a distribution that has no data yet (one call per missing metric per poll), and
the judging rules (empty or NaN never passes; a thin baseline is inconclusive; no previous revision at all
is a comparison that does not apply)."""

from __future__ import annotations

import math
import time

import pytest

from metric_checks.conftest import METRICS_DELAY, seconds_to_sample_end
from revgate.checklist import Baseline, MetricLimit, Metrics
from revgate.metrics import MetricsData, MetricsOptions, collect, judge_baseline, judge_limit
from revgate.metrics_query import (
    CPU_UTILIZATIONS,
    MEMORY_UTILIZATIONS,
    REQUEST_LATENCIES,
    Histogram,
    MonitoringUnavailable,
    Scope,
    Window,
)


def test_one_call_serves_counts_of_both_revisions_and_one_call_each_distribution(sandbox, traffic, queries_for, service_name):
    previous = sandbox.deploy(service_name)
    canary = sandbox.deploy(service_name, tag="canary", no_traffic=True, faults=["error_rate:1"])
    traffic(sandbox.service_url(service_name), 12)
    traffic(sandbox.tag_url(service_name, "canary"), 7)
    time.sleep(seconds_to_sample_end() + METRICS_DELAY + 0.5)  # visible once their 60 s sample ended, plus the delay
    queries = queries_for(service_name, (canary,), previous)
    window = Window.ending_now(600)
    counts = queries.request_counts(window)
    assert counts == {previous: {"2xx": 12}, canary: {"5xx": 7}}
    latencies = queries.distributions(REQUEST_LATENCIES, window)
    assert latencies[previous].count == 12 and latencies[canary].count == 7
    assert queries.calls == 2
    assert queries.calls_by_metric == {"request_count": 1, "request_latencies": 1}


def test_a_query_the_api_refuses_is_an_error_not_no_data(sandbox, queries_for, service_name):
    canary = sandbox.deploy(service_name)
    queries = queries_for(service_name, (canary,))
    with pytest.raises(MonitoringUnavailable, match=r"refused the request_latency query .*\(INVALID_ARGUMENT: metric.type"):
        queries.distributions("run.googleapis.com/request_latency", Window.ending_now(600))


def test_another_project_is_refused_not_empty(sandbox, queries_for, service_name):
    canary = sandbox.deploy(service_name)
    queries = queries_for(service_name, (canary,))
    queries.scope = Scope(project="other-project", region=sandbox.region, service=service_name, revisions=(canary,))
    with pytest.raises(MonitoringUnavailable, match=r"in project other-project \(NOT_FOUND"):
        queries.request_counts(Window.ending_now(600))


def _data(counts, latencies=None, *, baseline=None, min_requests=20):
    scope = Scope(project="p", region="r", service="s", revisions=("s-2",), baseline=baseline)
    return MetricsData(
        scope=scope,
        window=Window(1_700_000_000, 600),
        min_requests=min_requests,
        waited=3.0,
        counts=counts,
        distributions={REQUEST_LATENCIES: latencies or {}},
    )


def _hist(count, value_bucket=5):
    counts = [0] * 12
    counts[value_bucket] = count
    return Histogram(tuple(float(2**i) for i in range(11)), counts, count, 2.0**value_bucket)


def test_empty_distribution_is_no_data_never_a_pass():
    verdict = judge_limit(MetricLimit(id="p99-latency", limit=2000.0), _data({"s-2": {"2xx": 50}}))
    assert verdict.outcome == "no-data"
    assert "no p99 request latency data" in verdict.message


def test_too_few_requests_is_no_data_even_when_the_rate_looks_fine():
    verdict = judge_limit(MetricLimit(id="error-rate", limit=0.05), _data({"s-2": {"2xx": 19}}))
    assert verdict.outcome == "no-data"
    assert "only 19 of the 20 requests needed" in verdict.message and "revision s-2" in verdict.message


def test_nan_percentile_never_passes():
    hist = Histogram((), [], 0, math.nan)
    assert math.isnan(hist.percentile(99))
    assert not (hist.percentile(99) <= 2000)


def test_baseline_without_any_previous_revision_does_not_apply():
    limit = MetricLimit(id="p95-latency", limit=1.25)
    verdict = judge_baseline(limit, Baseline(), _data({"s-2": {"2xx": 50}}))
    assert verdict.outcome == "skip" and verdict.message.startswith("no previous revision to compare with")
    # not a matter of data: the same with too few requests
    assert judge_baseline(limit, Baseline(), _data({"s-2": {"2xx": 3}})).outcome == "skip"


def test_previous_revision_with_too_few_requests_stays_inconclusive():
    data = _data({"s-2": {"2xx": 50}, "s-1": {"2xx": 5}}, baseline="s-1")
    verdict = judge_baseline(MetricLimit(id="p95-latency", limit=1.25), Baseline(), data)
    assert verdict.outcome == "no-data" and verdict.message.startswith("inconclusive: the previous revision s-1 had 5")


class _FakeQueries:
    """Queries' interface: 50 requests of s-2 at once; ``empty_reads[metric]`` reads of a metric return nothing."""

    def __init__(self, empty_reads):
        self.scope = Scope(project="p", region="r", service="s", revisions=("s-2",))
        self.empty_reads = dict(empty_reads)
        self.calls = 0
        self.calls_by_metric = {}

    def _count(self, metric):
        self.calls += 1
        self.calls_by_metric[metric] = self.calls_by_metric.get(metric, 0) + 1

    def request_counts(self, window):
        self._count("request_count")
        return {"s-2": {"2xx": 50}}

    def distributions(self, metric, window):
        self._count(metric)
        if self.empty_reads.get(metric, 0) > 0:
            self.empty_reads[metric] -= 1
            return {}
        return {"s-2": Histogram((0.25, 0.5, 1.0), [0, 10, 0, 0], 10, 0.3)}


UTILIZATIONS = Metrics(max_memory_utilization=0.9, max_cpu_utilization=0.9)


def _collect(queries, *, timeout, sleep):
    lines = []
    options = MetricsOptions(window=600, timeout=timeout, no_data="fail", warmup_requests=0)
    data = collect(
        queries, metrics=UTILIZATIONS, options=options, progress=lambda line, final: lines.append(line), sleep=sleep
    )
    return data, lines


def test_a_utilization_without_data_yet_is_waited_for_then_judged():
    # a freshly deployed revision: its requests are visible, its CPU samples come two reads later
    queries = _FakeQueries({CPU_UTILIZATIONS: 2})
    data, lines = _collect(queries, timeout=30, sleep=lambda seconds: None)
    assert judge_limit(MetricLimit(id="cpu-utilization", limit=0.9), data).outcome == "pass"
    assert judge_limit(MetricLimit(id="memory-utilization", limit=0.9), data).outcome == "pass"
    # one request_count poll, one read of each utilization, then one read per poll of the missing one only
    assert queries.calls_by_metric == {"request_count": 1, MEMORY_UTILIZATIONS: 1, CPU_UTILIZATIONS: 3}
    waiting = [line for line in lines if "waiting for Cloud Monitoring" in line]
    assert len(waiting) == 2 and all("no container/cpu/utilizations data of s-2 yet" in line for line in waiting)
    assert "memory" not in " ".join(waiting)
    assert "then waited for container/cpu/utilizations: all visible after" in lines[-1]
    assert lines[-1].endswith("; 5 ListTimeSeries calls")
    assert CPU_UTILIZATIONS in data.windows and MEMORY_UTILIZATIONS not in data.windows


def test_a_utilization_still_without_data_at_the_deadline_is_no_data():
    queries = _FakeQueries({CPU_UTILIZATIONS: 99, MEMORY_UTILIZATIONS: 99})
    data, lines = _collect(queries, timeout=0.5, sleep=time.sleep)
    verdict = judge_limit(MetricLimit(id="cpu-utilization", limit=0.9), data)
    assert verdict.outcome == "no-data"
    assert verdict.message.startswith("no p99 CPU utilization data in Cloud Monitoring after waiting 1 s (over the")
    # the first read, then one poll of each missing metric before the deadline
    assert queries.calls_by_metric == {"request_count": 1, MEMORY_UTILIZATIONS: 2, CPU_UTILIZATIONS: 2}
    assert "still no container/memory/utilizations, container/cpu/utilizations data after" in lines[-1]


def test_small_error_increase_that_is_not_significant_is_inconclusive():
    data = _data({"s-2": {"2xx": 19, "5xx": 1}, "s-1": {"2xx": 20}}, baseline="s-1")
    verdict = judge_baseline(MetricLimit(id="error-rate", limit=0.01), Baseline(alpha=0.05), data)
    assert verdict.outcome == "no-data"
    assert "not significant (Fisher exact test p = " in verdict.message


def test_significant_error_increase_fails():
    data = _data({"s-2": {"2xx": 60, "5xx": 40}, "s-1": {"2xx": 100}}, baseline="s-1")
    verdict = judge_baseline(MetricLimit(id="error-rate", limit=0.01), Baseline(), data)
    assert verdict.outcome == "fail"
    assert "error rate 40.00 % (40 of 100) against 0.00 % (0 of 100) for the previous revision s-1" in verdict.message


def test_latency_increase_within_the_slack_passes_the_ratio():
    data = _data({"s-2": {"2xx": 50}, "s-1": {"2xx": 50}}, {"s-2": _hist(50, 3), "s-1": _hist(50, 1)}, baseline="s-1")
    assert judge_baseline(MetricLimit(id="p95-latency", limit=1.25), Baseline(latency_slack_ms=50), data).outcome == "pass"
    assert judge_baseline(MetricLimit(id="p95-latency", limit=1.25), Baseline(latency_slack_ms=0), data).outcome == "fail"

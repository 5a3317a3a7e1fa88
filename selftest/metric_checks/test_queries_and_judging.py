"""The queries through the real MetricServiceClient (one call per metric, a refused query never reads as
"no data") and the judging rules (empty or NaN never passes; a thin baseline is inconclusive)."""

from __future__ import annotations

import math

import pytest

from revgate_support.checklist import Baseline, MetricLimit
from revgate_support.metrics import MetricsData, judge_baseline, judge_limit
from revgate_support.metrics_query import REQUEST_LATENCIES, Histogram, MonitoringUnavailable, Scope, Window


def test_one_call_serves_counts_of_both_revisions_and_one_call_each_distribution(sandbox, traffic, queries_for, service_name):
    previous = sandbox.deploy(service_name)
    canary = sandbox.deploy(service_name, tag="canary", no_traffic=True, faults=["error_rate:1"])
    traffic(sandbox.service_url(service_name), 12)
    traffic(sandbox.tag_url(service_name, "canary"), 7)
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


def test_baseline_without_previous_revision_is_inconclusive():
    verdict = judge_baseline(MetricLimit(id="p95-latency", limit=1.25), Baseline(), _data({"s-2": {"2xx": 50}}))
    assert verdict.outcome == "no-data" and verdict.message.startswith("inconclusive: there is no previous revision")


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

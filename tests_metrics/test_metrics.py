"""Cloud Monitoring limits of the revision under test, and its comparison with the previous revision.

Each limit of ``[metrics]`` is one test (``test_metric[p99-latency]``), each
comparison of ``[metrics.baseline]`` one more (``test_baseline[p95-latency]``).
Outcomes: pass, fail (the metric, the value, the limit, the window, the
revision), or not verified (too little data: a failure or a skip per
``--metrics-no-data``, listed as NOT VERIFIED in the summary) -- never a
silent pass. A baseline comparison without any previous revision (a first
deploy) does not apply: skipped as not verified, and listed the same way.
"""

from __future__ import annotations

import pytest

from revgate.checklist import MetricLimit, Metrics
from revgate.metrics import MetricsData, MetricsOptions, judge_baseline, judge_limit
from revgate.metrics_plugin import settle

# With ``-n N --dist loadgroup`` the metric checks share one worker, hence one wait.
pytestmark = pytest.mark.xdist_group("revgate-metrics")


def test_metric(
    metric_limit: MetricLimit, metric_data: MetricsData, metrics_options: MetricsOptions, request: pytest.FixtureRequest
) -> None:
    settle(judge_limit(metric_limit, metric_data), item=request.node, options=metrics_options)


def test_baseline(
    baseline_limit: MetricLimit,
    metric_data: MetricsData,
    metrics_section: Metrics,
    metrics_options: MetricsOptions,
    request: pytest.FixtureRequest,
) -> None:
    assert metrics_section.baseline is not None  # parametrized only from [metrics.baseline]
    verdict = judge_baseline(baseline_limit, metrics_section.baseline, metric_data)
    settle(verdict, item=request.node, options=metrics_options)

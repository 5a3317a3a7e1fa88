"""Fixtures of the metric checks: the Cloud Monitoring data of the revision, read once per run.

``metric_data`` is session-scoped: the wait for data (bounded by
``--metrics-timeout``, with one progress line at a time: first for the
requests, then for each metric the selected checks read that has no data yet)
and the queries happen once, before the first metric check; every check then
judges the same data. Without a known service (``--service``) the checks are skipped as not
verified; when Cloud Monitoring cannot answer, every check errors with one
line saying why.
"""

from __future__ import annotations

import pytest

from revgate.checklist import Checklist, Metrics
from revgate.metrics import MetricsData, MetricsOptions, MonitoringUnavailable, Scope, collect
from revgate.metrics_plugin import NOT_VERIFIED, deployment_of, metrics_options_of, progress_writer
from revgate.target import Target


@pytest.fixture(scope="session")
def metrics_section(checklist: Checklist) -> Metrics:
    assert checklist.metrics is not None  # the tests are parametrized only from a [metrics] section
    return checklist.metrics


@pytest.fixture(scope="session")
def metrics_options(pytestconfig: pytest.Config) -> MetricsOptions:
    options = metrics_options_of(pytestconfig)
    assert options is not None  # resolved at session start whenever [metrics] exists
    return options


@pytest.fixture(scope="session")
def selected_checks(request: pytest.FixtureRequest) -> set[str]:
    """Ids of the metric checks this run selected (``error-rate``, ``baseline:p95-latency``): only their data is read."""
    selected: set[str] = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "metric_limit" in params:
            selected.add(params["metric_limit"].id)
        if "baseline_limit" in params:
            selected.add("baseline:" + params["baseline_limit"].id)
    return selected


@pytest.fixture(scope="session")
def metric_scope(pytestconfig: pytest.Config, selected_checks: set[str]) -> Scope:
    deployment = deployment_of(pytestconfig)
    if deployment is None:
        pytest.skip(
            f"{NOT_VERIFIED}: the metric checks need the Cloud Run service "
            "(--service, --region, --project or their environment variables)"
        )
    return Scope(
        project=deployment.project,
        region=deployment.region,
        service=deployment.service,
        revisions=tuple(deployment.revisions_under_test),
        # without a baseline check selected, the previous revision is not queried at all
        baseline=deployment.previous_revision if any(c.startswith("baseline:") for c in selected_checks) else None,
    )


def _warm_up(target: Target, path: str, count: int, write: object) -> None:
    answered = sum(1 for _ in range(count) if target.request("GET", path, auth=False).status is not None)
    write(f"revgate metrics: sent {count} warm-up requests to {target.url(path)} ({answered} answered)", True)  # type: ignore[operator]


@pytest.fixture(scope="session")
def metric_data(
    pytestconfig: pytest.Config,
    metric_scope: Scope,
    metrics_section: Metrics,
    metrics_options: MetricsOptions,
    checklist: Checklist,
    target: Target,
    selected_checks: set[str],
) -> MetricsData:
    """Wait (once) until enough requests, then data of every metric the selected checks need, are visible."""
    from revgate.google_clients import metric_client
    from revgate.metrics_query import Queries

    write = progress_writer(pytestconfig)
    if metrics_options.warmup_requests:
        path = checklist.health.path if checklist.health else "/"
        _warm_up(target, path, metrics_options.warmup_requests, write)
    retry_deadline = min(30.0, max(5.0, metrics_options.timeout))
    queries = Queries(metric_client(), metric_scope, timeout=min(20.0, retry_deadline), retry_deadline=retry_deadline)
    try:
        return collect(
            queries, metrics=metrics_section, options=metrics_options, progress=write, selected=selected_checks
        )
    except MonitoringUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)

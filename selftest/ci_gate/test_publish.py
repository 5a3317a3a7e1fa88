"""``--publish-metrics``: each check's outcome and duration, read back from Cloud Monitoring (the sandbox's)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from sandbox.control import Sandbox

PASSED = "custom.googleapis.com/revgate/check_passed"
DURATION = "custom.googleapis.com/revgate/check_duration_seconds"


def _client(sandbox: Sandbox) -> Any:
    from revgate import google_clients

    saved = os.environ.get(google_clients.MONITORING_ENDPOINT_ENV)
    os.environ[google_clients.MONITORING_ENDPOINT_ENV] = sandbox.env["CLOUD_MONITORING_API_ENDPOINT"]
    try:
        client = google_clients.metric_client()
    finally:
        if saved is None:
            os.environ.pop(google_clients.MONITORING_ENDPOINT_ENV)
        else:
            os.environ[google_clients.MONITORING_ENDPOINT_ENV] = saved
    return client


def read_back(sandbox: Sandbox, metric: str, service: str, *, key: str = "check") -> dict[Any, Any]:
    """check label (or ``key``: a tuple of labels) -> (value, labels, resource type) of the newest point,
    through the real monitoring_v3 client."""
    from revgate import google_clients

    client = _client(sandbox)
    now = time.time()
    request = {
        "name": f"projects/{sandbox.project}",
        "filter": f'metric.type = "{metric}" AND metric.labels.service = "{service}"',
        "interval": {"start_time": {"seconds": int(now - 600)}, "end_time": {"seconds": int(now + 60)}},
    }
    out = {}
    for series in client.list_time_series(request=request, timeout=10, retry=google_clients.bounded_retry()):
        point = series.points[0].value
        value = point.int64_value if metric == PASSED else point.double_value
        labels = dict(series.metric.labels)
        name = labels[key] if key == "check" else (labels["check"], labels["target"])
        assert name not in out, f"two series for {name}"
        out[name] = (value, labels, series.resource.type)
    return out


def test_published_outcomes_read_back(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    from revgate.publish import target_label

    sandbox.deploy(service)
    canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])

    url = sandbox.tag_url(service, "canary")
    g = gate(url, f"--service={service}", "--publish-metrics", "--rollback=off")

    assert g.run.returncode == 1
    passed = read_back(sandbox, PASSED, service)
    assert {check: value for check, (value, _, _) in passed.items()} == {
        "test_health[health]": 1,
        "test_api[stats]": 0,
        "test_api_requires_auth[stats]": 1,
        "test_websocket[session]": 1,
    }  # the skipped, empty test_latency is not published
    _, labels, resource = passed["test_api[stats]"]
    host, port = url.removeprefix("http://").split(":")[0], url.rsplit(":", 1)[1].split("/")[0]
    assert labels == {"check": "test_api[stats]", "target": f"{host}:{port}", "service": service, "revision": canary}
    assert target_label(url) == f"{host}:{port}"
    assert resource == "global"
    durations = read_back(sandbox, DURATION, service)
    assert set(durations) == set(passed)
    by_name = {c["name"]: c["duration_s"] for c in g.json["checks"]}
    for check, (seconds, _, _) in durations.items():
        assert abs(seconds - by_name[check]) < 0.01
    assert g.json["published_metrics"]["series"] == 8 and g.json["published_metrics"]["error"] is None
    assert f"published metrics: 8 time series to project {sandbox.project} in 1 request(s)" in g.output


def test_publishing_to_a_dead_endpoint_is_reported_not_fatal(
    sandbox: Sandbox, service: str, gate: Callable[..., Any]
) -> None:
    from sandbox.standalone import free_port

    sandbox.deploy(service)
    dead = f"127.0.0.1:{free_port()}"
    g = gate(
        sandbox.service_url(service),
        "--publish-metrics",
        env={"CLOUD_MONITORING_API_ENDPOINT": dead},
        timeout=120,
    )

    assert g.run.returncode == 0, g.run  # the verdict is the checks'
    assert g.json["verdict"] == "PASS"
    assert "published metrics: FAILED" in g.output
    assert "did not answer" in g.json["published_metrics"]["error"]


def test_batches_hold_at_most_200_series() -> None:
    from revgate.publish import BATCH, build_series
    from revgate.results import Check

    checks = [Check(id=f"t::test_x[{i}]", name=f"test_x[{i}]", gating=True, duration=0.5) for i in range(150)]
    series = build_series(checks, project="p", service="s", revision="r", at=time.time())
    assert len(series) == 300 and BATCH == 200


def test_publish_needs_a_project(sandbox: Sandbox, service: str, run_suite: Callable[..., Any]) -> None:
    sandbox.deploy(service)
    env = {k: v for k, v in sandbox.env.items() if k != "GOOGLE_CLOUD_PROJECT"}
    env["GOOGLE_CLOUD_PROJECT"] = ""
    run = run_suite("tests_smoke", f"--revision-url={sandbox.service_url(service)}", "--publish-metrics", env=env)
    assert run.returncode == 4
    assert "--publish-metrics needs a project: give --project" in run.stderr
    assert "Traceback" not in run.output


def test_two_targets_publish_one_series_each(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    from revgate.publish import target_label

    sandbox.deploy(service)
    sandbox.deploy(service, tag="canary")  # the new revision serves the service URL and its tag URL
    urls = [sandbox.service_url(service), sandbox.tag_url(service, "canary")]
    for url in urls:
        g = gate(url, f"--service={service}", "--publish-metrics", "--rollback=off", "-k", "health")
        assert g.json["published_metrics"]["error"] is None, g.run

    passed = read_back(sandbox, PASSED, service, key="target")
    targets = {target_label(u) for u in urls}
    assert len(targets) == 2
    assert set(passed) == {("test_health[health]", t) for t in targets}  # one series per target, none shared


def test_a_second_point_within_5_s_is_refused_as_cloud_monitoring_does(sandbox: Sandbox) -> None:
    from revgate.publish import build_series, publish
    from revgate.results import Check

    checks = [Check(id="t::test_health[health]", name="test_health[health]", gating=True, duration=0.1)]
    now = time.time()
    labels = {"project": sandbox.project, "service": "five-seconds", "revision": "r1", "target": "h:1"}
    first = publish(build_series(checks, at=now - 4, **labels), project=sandbox.project, client=_client(sandbox))
    assert first.error == "" and first.series == 2
    second = publish(build_series(checks, at=now, **labels), project=sandbox.project, client=_client(sandbox))
    assert second.error == (
        "CreateTimeSeries: InvalidArgument: One or more TimeSeries could not be written: One or more points were "
        "written more frequently than the maximum sampling period configured for the metric.: timeSeries[0]"
    )
    assert "published metrics: FAILED after 1 request(s)" in second.summary()
    third = publish(build_series(checks, at=now + 1.5, **labels), project=sandbox.project, client=_client(sandbox))
    assert third.error == "", third.error  # 5.5 s after the first point


def test_long_label_values_are_cut_within_the_limit_and_stay_distinct(sandbox: Sandbox) -> None:
    from revgate.publish import MAX_LABEL_VALUE, build_series, label_value, publish
    from revgate.results import Check

    base = "test_x[" + "\u00e9" * 1100  # 2-byte characters: cut at a character boundary
    checks = [Check(id=f"t::{base}{i}]", name=f"{base}{i}]", gating=True, duration=0.1) for i in range(2)]
    series = build_series(checks, project=sandbox.project, service="s" * 2000, revision="r", target="t", at=time.time())
    values = [ts.metric.labels["check"] for ts in series]
    assert all(len(v.encode()) <= MAX_LABEL_VALUE for v in values)
    assert len(set(values)) == 2 and values[0].startswith("test_x[\u00e9")
    assert label_value("short") == "short"
    pub = publish(series, project=sandbox.project, client=_client(sandbox))
    assert pub.error == "" and pub.series == 4, pub.error


def test_a_point_older_than_25_hours_is_never_built() -> None:
    import pytest

    from revgate.publish import build_series
    from revgate.results import Check

    checks = [Check(id="t::test_a", name="test_a", gating=True, duration=0.1)]
    with pytest.raises(ValueError, match="more than 25 h old"):
        build_series(checks, project="p", service="s", revision="r", at=time.time() - 25 * 3600 - 60)

"""``--publish-metrics``: each check's outcome and duration, read back from Cloud Monitoring (the sandbox's)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from sandbox.control import Sandbox

PASSED = "custom.googleapis.com/revgate/check_passed"
DURATION = "custom.googleapis.com/revgate/check_duration_seconds"


def read_back(sandbox: Sandbox, metric: str, service: str) -> dict[str, Any]:
    """check label -> (value, labels) of the newest point, through the real monitoring_v3 client."""
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
        out[series.metric.labels["check"]] = (value, dict(series.metric.labels), series.resource.type)
    return out


def test_published_outcomes_and_durations_read_back(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    sandbox.deploy(service)
    canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])

    g = gate(sandbox.tag_url(service, "canary"), f"--service={service}", "--publish-metrics", "--rollback=off")

    assert g.run.returncode == 1
    passed = read_back(sandbox, PASSED, service)
    assert {check: value for check, (value, _, _) in passed.items()} == {
        "test_health[health]": 1,
        "test_api[stats]": 0,
        "test_api_requires_auth[stats]": 1,
        "test_websocket[session]": 1,
    }  # the skipped, empty test_latency is not published
    _, labels, resource = passed["test_api[stats]"]
    assert labels == {"check": "test_api[stats]", "service": service, "revision": canary}
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

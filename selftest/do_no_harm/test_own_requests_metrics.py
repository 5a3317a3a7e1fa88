"""The gate's own requests are never the revision's errors: a tag-only canary that answered 503 while
it started, to nobody but the gate's readiness retries, passes the error-rate check, and the failure
message of a revision that does answer 5xx says how many of the gate's own requests were left out.

Cloud Monitoring's request_count can be filtered by revision and response class only, so the gate
counts what it sent for itself by class and subtracts it (revgate/own_requests.py). This module has a
sandbox of its own whose Monitoring samples every 2 s, so that the data is visible within seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.control import Sandbox

CHECKLIST = """
[health]
ready_budget = 30

[metrics]
window = 240
min_requests = 20
max_error_rate = 0.05
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=3, ready_timeout=15, sample_period=2.0)
    try:
        yield sb
    finally:
        sb.down()


def _gate(sb: Sandbox, run_suite, service: str, tmp_path: Path, *extra: str):  # noqa: ANN001, ANN202
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(CHECKLIST)
    report = tmp_path / "report.json"
    run = run_suite(
        "tests_smoke", "tests_metrics", f"--revision-url={sb.tag_url(service, 'canary')}", f"--service={service}",
        f"--checklist={checklist}", "--warmup-requests=30", "--metrics-timeout=40", f"--report-json={report}", *extra,
        env=sb.env, timeout=180,
    )
    return run, json.loads(report.read_text())


def test_readiness_retries_answered_503_are_not_the_canary_s_errors(sb, run_suite, service, traffic, tmp_path):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["startup_delay:14"])
    before = traffic(service)

    run, report = _gate(sb, run_suite, service, tmp_path)

    ready = next(line for line in run.stdout.splitlines() if line.startswith("revgate readiness"))
    attempts = int(ready.split("ready after ")[1].split(" attempts")[0])
    # at least 3 answers of 503 among at most 30 warm-up requests and the checks': over 5 % if they counted
    assert attempts >= 4, ready
    assert run.returncode == 0, run
    assert report["verdict"] == "PASS", report
    assert traffic(service) == before
    assert traffic(service).split == {stable: 100} and candidate in {r for r, _ in traffic(service).tags.values()}


def test_a_canary_that_answers_5xx_still_fails_and_the_message_says_what_was_left_out(sb, run_suite, service, traffic, tmp_path):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["startup_delay:3", "error_rate:0.5"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})

    run, report = _gate(sb, run_suite, service, tmp_path)

    assert run.returncode == 1, run
    check = next(c for c in report["checks"] if c["name"] == "test_metric[error-rate]")
    assert check["outcome"] == "failed", check
    assert "requests answered 5xx; the gate's own " in check["message"], check
    assert "readiness request" in check["message"], check
    assert traffic(service).split == {stable: 100}

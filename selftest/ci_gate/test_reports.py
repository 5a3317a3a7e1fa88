"""The reports CI systems and people read: JUnit XML, the JSON summary, the step summary, the verdict block."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from sandbox.control import Sandbox

from .conftest import split_of


def test_failed_canary_reports_each_check_and_the_rollback(
    sandbox: Sandbox, service: str, gate: Callable[..., Any]
) -> None:
    stable = sandbox.deploy(service, tag="stable")
    canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])
    sandbox.update_traffic(service, to_revisions={stable: 90, canary: 10})
    token = sandbox.env["REVGATE_AUTH_TOKEN"]

    g = gate(sandbox.tag_url(service, "canary"), f"--service={service}")

    assert g.run.returncode == 1
    # JUnit XML: parses, names each check, carries the failure message and the target
    root = ET.fromstring(g.run.junit_text())
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None and suite.get("name") == f"revgate {service}"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["revgate.service"] == service
    assert props["revgate.revisions"] == canary
    assert props["revgate.verdict"] == "FAIL"
    cases = {c.get("name"): c for c in suite.iter("testcase") if c.find("skipped") is None}
    assert set(cases) == {"test_health[health]", "test_api[stats]", "test_api_requires_auth[stats]", "test_websocket[session]"}
    failure = cases["test_api[stats]"].find("failure")
    assert failure is not None and "expected 200, answered 500" in failure.get("message", "")
    # JSON summary: verdict, every check, the rollback record
    assert g.json["verdict"] == "FAIL"
    assert g.json["target"]["service"] == service and g.json["target"]["revisions"] == [canary]
    api = g.check("test_api[stats]")
    assert api["outcome"] == "failed" and api["gating"] and "answered 500" in api["message"]
    assert api["duration_s"] >= 0
    assert g.check("test_health[health]")["outcome"] == "passed"
    assert g.json["rollback"]["status"] == "done"
    assert g.json["promotion"] is None
    assert split_of(sandbox, service) == {stable: 100}
    # Markdown step summary: verdict, a table of checks, what was done to traffic
    assert f"revgate verdict: FAIL — {canary}" in g.markdown
    assert "| `test_api[stats]` | FAILED |" in g.markdown
    assert "rollback (done): traffic restored" in g.markdown
    # the terminal block: the verdict, what failed on one line, what was done to traffic
    block = g.output.split("revgate verdict ===", 1)[1]
    assert f"revgate verdict: FAIL {canary}" in block
    assert "FAILED   test_api[stats]: GET " in block
    assert "rollback (done): traffic restored" in block
    # no secret anywhere
    for text in (g.output, g.run.junit_text(), str(g.json), g.markdown):
        assert token not in text


def test_passing_run_reports_pass_and_traffic_untouched(sandbox: Sandbox, service: str, gate: Callable[..., Any]) -> None:
    sandbox.deploy(service)
    canary = sandbox.deploy(service, tag="canary", no_traffic=True)
    before = split_of(sandbox, service)

    g = gate(sandbox.tag_url(service, "canary"), f"--service={service}")

    assert g.run.returncode == 0, g.run
    assert g.json["verdict"] == "PASS"
    assert {c["name"]: c["outcome"] for c in g.json["checks"] if c["outcome"] != "skipped"} == {
        "test_health[health]": "passed",
        "test_api[stats]": "passed",
        "test_api_requires_auth[stats]": "passed",
        "test_websocket[session]": "passed",
    }
    assert g.json["rollback"]["status"] == "not-needed"
    assert f"revgate verdict: PASS {canary} (4 checks, 4 passed)" in g.output  # no [[latency]] entry: no test at all
    assert "revgate verdict: PASS" in g.markdown and "| `test_websocket[session]` | passed |" in g.markdown
    assert split_of(sandbox, service) == before


def test_without_service_the_reports_say_traffic_was_not_changed(
    sandbox: Sandbox, service: str, gate: Callable[..., Any]
) -> None:
    sandbox.deploy(service)
    g = gate(sandbox.service_url(service))

    assert g.run.returncode == 0, g.run
    assert g.json["rollback"] is None and g.json["target"] == {"url": sandbox.service_url(service)}
    assert "traffic: not changed (no --service" in g.output
    assert "traffic: not changed (no --service" in g.markdown


def test_bad_report_path_and_retries_are_usage_errors(sandbox: Sandbox, service: str, gate: Callable[..., Any], tmp_path: Any, run_suite: Callable[..., Any]) -> None:
    sandbox.deploy(service)
    url = sandbox.service_url(service)
    missing = tmp_path / "no-such-dir" / "report.json"
    run = run_suite("tests_smoke", f"--revision-url={url}", f"--report-json={missing}", env=sandbox.env)
    assert run.returncode == 0 and missing.is_file(), run  # its folder is created, as --output's is
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    run = run_suite("tests_smoke", f"--revision-url={url}", f"--report-json={blocked / 'report.json'}", env=sandbox.env)
    assert run.returncode == 4
    assert f"--report-json {blocked / 'report.json'}: cannot create the directory {blocked}" in run.stderr
    assert "Traceback" not in run.output

    run = run_suite("tests_smoke", f"--revision-url={url}", "--retries", "many", env=sandbox.env)
    assert run.returncode == 4
    assert "--retries 'many' is not a whole number of retries" in run.stderr
    assert "Traceback" not in run.output

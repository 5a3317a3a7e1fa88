"""Readiness once, before every check: a Ready revision (Cloud Run's TCP startup probe) that still
answers 503 while its app starts is waited for within the [health] budget before any check runs;
the API check (collected before the health check) never judges it while it starts."""

from __future__ import annotations

from do_no_harm.conftest import last_line

CHECKLIST = """
[health]
ready_budget = 30

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = { preferences = "object", concepts = "object", stats = "object" }
"""


def test_a_starting_canary_is_waited_for_and_not_rolled_back(sb, gate, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["startup_delay:10"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})

    result = gate(service, sb.tag_url(service, "canary"))

    assert result.run.returncode == 0, result.run
    assert traffic(service).split == {stable: 90, candidate: 10}
    assert last_line(result.output, "revgate verdict:").startswith(f"revgate verdict: PASS {candidate}")
    line = last_line(result.output, "revgate readiness")
    assert "once before every check): ready after" in line, line
    assert result.record["status"] == "not-needed"


def test_a_revision_that_never_gets_ready_fails_within_one_budget(sb, gate, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(CHECKLIST.replace("ready_budget = 30", "ready_budget = 2"))
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["startup_delay:600"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})

    result = gate(service, sb.tag_url(service, "canary"))

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert "still answering 503 after" in last_line(result.output, "revgate readiness")
    assert result.record["status"] == "done"
    # the budget was spent once, at session start: the health check does not wait a second time
    import xml.etree.ElementTree as ET

    times = {c.get("name"): float(c.get("time", "0")) for c in ET.parse(result.run.junit_path).getroot().iter("testcase")}
    assert times["test_health[health]"] < 1.0, times
    assert "attempts within the 2 s readiness budget" in result.output

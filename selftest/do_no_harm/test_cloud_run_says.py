"""The outcome is what Cloud Run says: transient codes are retried within the existing bounds, an
error once the update was sent is followed by reading the service until its traffic is known (the
report states that traffic), and a gate that changed nothing but saw the traffic change says so."""

from __future__ import annotations

import time

import pytest

from do_no_harm.conftest import FAILED_KEY, last_line


@pytest.mark.parametrize("code", ["INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED"])
def test_one_transient_error_is_retried(sb, gate, service, traffic, canary, code):
    stable, candidate, url = canary()
    sb.inject("UpdateService", code, 1)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert result.record["status"] == "done"
    assert sb.calls("UpdateService") == 2  # the injected answer, then the retry
    assert "ROLLBACK DONE" in last_line(result.output, "ROLLBACK")


def test_an_update_whose_answer_is_lost_is_seen_as_done_not_as_someone_elses(sb, gate, service, traffic, annotations, canary):
    stable, candidate, url = canary()
    sb.inject("UpdateService:applied", "UNKNOWN", 1)  # carried out, then answered UNKNOWN: the retry is stale

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert result.record["status"] == "done", result.record
    line = last_line(result.output, "ROLLBACK")
    assert line.startswith("ROLLBACK DONE: traffic restored:"), line
    assert "already acted" not in result.output
    assert annotations(service)[FAILED_KEY] == candidate


def test_a_lost_answer_that_is_never_retried_still_reports_the_traffic_served(sb, gate, service, traffic, canary):
    stable, candidate, url = canary()
    sb.inject("UpdateService:applied", "PERMISSION_DENIED", 1)  # a final code: no retry, the change was made

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert result.record["status"] == "done", result.record
    assert result.record["traffic"]["after"] is not None
    assert last_line(result.output, "ROLLBACK").startswith("ROLLBACK DONE: traffic restored:")
    assert "error: attempt 1: PERMISSION_DENIED: injected fault" in result.output  # what Cloud Run answered, shown


def test_getservice_failing_after_the_update_is_not_a_failed_rollback(sb, start_gate, service, traffic, canary, tmp_path):
    import json

    from do_no_harm.test_signals import SLOW_CHECKLIST, Running

    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_500", "ws_reject"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    sb.set_operation_delay(2)

    gate = Running(start_gate(service, sb.tag_url(service, "canary"), "-v"))
    gate.wait_for("test_api[stats] FAILED")
    sb.inject("GetService", "PERMISSION_DENIED", 3)  # while the operation runs: the re-reads after it fail
    code, output = gate.finish()

    assert code == 1, output
    assert traffic(service).split == {stable: 100}
    record = json.loads((tmp_path / "rollback.json").read_text())
    assert record["status"] == "done", record
    assert "ROLLBACK DONE" in last_line(output, "ROLLBACK"), output


def test_a_healthy_gate_says_when_someone_else_changed_the_traffic(sb, start_gate, service, traffic, tmp_path):
    from do_no_harm.test_signals import Running

    (tmp_path / "checklist.toml").write_text(
        '[health]\nready_budget = 5\n\n[[api]]\nid = "stats"\npath = "/api/memory/user/stats"\n'
    )
    stable = sb.deploy(service)
    good = sb.deploy(service, tag="good", no_traffic=True, faults=["stats_slow:3"])
    other = sb.deploy(service, tag="other", no_traffic=True)
    sb.update_traffic(service, to_revisions={stable: 80, good: 10, other: 10})

    gate = Running(start_gate(service, sb.tag_url(service, "good"), "-v"))
    gate.wait_for("collected")
    time.sleep(0.5)
    sb.update_traffic(service, to_revisions={stable: 70, good: 20, other: 10})  # another gate, or a person
    code, output = gate.finish()

    assert code == 0, output
    line = last_line(output, "no gating check failed")
    assert "traffic unchanged by this gate" in line, line
    assert f"but the traffic changed during the run, not by this gate: now {stable}=70%" in line, line


def test_two_canaries_gated_together_the_good_ones_gate_says_its_share_changed(sb, service, traffic, tmp_path):
    import json

    from do_no_harm.test_signals import Running
    from rollback_plugin.conftest import gate_args, popen_gate

    stable = sb.deploy(service)
    bad = sb.deploy(service, tag="bad", no_traffic=True, faults=["stats_500"])
    good = sb.deploy(service, tag="good", no_traffic=True, faults=["stats_slow:8"])  # slower: ends after the rollback
    sb.update_traffic(service, to_revisions={stable: 80, bad: 10, good: 10})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    good_gate = Running(popen_gate(sb, gate_args(sb, service, sb.tag_url(service, "good"), tmp_path / "a", "-v")))
    good_gate.wait_for("collected")  # its snapshot of the traffic is taken: the other gate acts after it
    bad_gate = Running(popen_gate(sb, gate_args(sb, service, sb.tag_url(service, "bad"), tmp_path / "b", "-v")))
    bad_code, bad_output = bad_gate.finish()
    good_code, good_output = good_gate.finish()

    assert bad_code == 1, bad_output
    assert good_code == 0, good_output
    after = traffic(service).split
    assert bad not in after and after[stable] + after[good] == 100
    line = last_line(good_output, "no gating check failed")
    assert "traffic unchanged by this gate" in line, line
    assert "but the traffic changed during the run, not by this gate: now" in line, line
    record = json.loads((tmp_path / "a" / "rollback.json").read_text())
    assert record["status"] == "not-needed" and record["traffic"]["at_finish"] is not None

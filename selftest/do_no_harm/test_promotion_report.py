"""The gate's own promotion is reported as the gate's: never as "the traffic changed during the run,
not by this gate"; and the JSON report's exit_status is the process's exit code."""

from __future__ import annotations

import json


def test_the_gate_s_own_promotion_is_not_reported_as_someone_else_s(gate, canary, service, traffic, tmp_path):
    stable, candidate, url = canary(faults=())
    report = tmp_path / "report.json"

    result = gate(service, url, "--promote=50", f"--report-json={report}")

    assert result.run.returncode == 0, result.run
    assert traffic(service).split == {stable: 50, candidate: 50}
    assert "not by this gate" not in result.output, result.output
    assert "the traffic is as this run set it (its promotion or rollout)" in result.output, result.output
    data = json.loads(report.read_text())
    assert (data["verdict"], data["exit_status"]) == ("PASS", 0), data
    assert data["promotion"]["status"] == "done", data["promotion"]
    assert "not by this gate" not in json.dumps(data)


def test_a_refused_promotion_exits_1_and_the_report_says_so(sb, gate, canary, service, traffic, tmp_path):
    stable, candidate, url = canary(faults=())
    report = tmp_path / "report.json"
    sb.inject("UpdateService", "PERMISSION_DENIED", -1, "the gate's account may not update the service")

    result = gate(service, url, "--promote=50", f"--report-json={report}")

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 90, candidate: 10}
    data = json.loads(report.read_text())
    assert data["exit_status"] == 1, data  # it said 0
    assert data["verdict"] == "ERROR", data  # it said PASS: the checks passed, the promotion did not
    assert data["promotion"]["status"] == "failed", data["promotion"]

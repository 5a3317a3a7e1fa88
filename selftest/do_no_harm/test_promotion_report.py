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

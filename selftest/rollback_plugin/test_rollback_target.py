"""The rollback target is known before any check: named in the header and the records,
required by ``[rollback] require_target``, and kept by ``--promote 100``."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import CHECKLIST

TARGET_TEST = "tests_revision/test_rollback_target.py"


def _checklist(tmp_path: Path, rollback: str) -> None:
    text = CHECKLIST.format(api_extra="", ws_timeout=2.0) + "\n[rollback]\n" + rollback + "\n"
    (tmp_path / "checklist.toml").write_text(text)


def test_header_and_records_name_the_target(sb, gate, service, canary, tmp_path):
    stable, candidate, url = canary(faults=())
    report = tmp_path / "report.json"

    result = gate(service, url, f"--report-json={report}")

    assert result.run.returncode == 0, result.run
    line = next(line for line in result.output.splitlines() if line.startswith("revgate rollback target:"))
    assert line.startswith(f"revgate rollback target: {stable} 100 % (Ready; the pre-run split without {candidate}"), line
    assert result.record["rollback_target"]["split"] == {stable: 100}
    assert result.record["rollback_target"]["ready"] is True
    summary = json.loads(report.read_text())
    assert summary["target"]["rollback_target"]["revisions"] == [stable]


def test_require_target_fails_when_nothing_is_ready_to_go_back_to(sb, gate, service, traffic, tmp_path):
    broken = sb.deploy(service, not_ready=True)
    candidate = sb.deploy(service)
    assert traffic(service).split == {candidate: 100}
    _checklist(tmp_path, "require_target = true")

    result = gate(service, sb.service_url(service), TARGET_TEST, "--promote=100")

    assert result.run.returncode == 1, result.run
    assert result.run.outcomes["test_rollback_target[rollback-target]"] == "failed"
    assert f"revgate rollback target: none: no good revision older than {candidate} to give the traffic to (not Ready: {broken})" in result.output
    assert f"no Ready revision of {service} to roll back to from {candidate} ([rollback] require_target)" in result.output
    assert "not promoted to 100 %: the verdict is FAIL" in result.output
    assert result.record["rollback_target"]["found"] is False
    assert traffic(service).split == {candidate: 100}  # nothing to roll back to: the traffic stays


def test_require_target_passes_with_a_ready_previous_revision(sb, gate, service, canary, tmp_path):
    stable, candidate, url = canary(faults=())
    _checklist(tmp_path, "require_target = true")

    result = gate(service, url, TARGET_TEST)

    assert result.run.returncode == 0, result.run
    assert result.run.outcomes["test_rollback_target[rollback-target]"] == "passed"


def test_a_first_deploy_is_not_applicable(sb, gate, service, traffic, tmp_path):
    only = sb.deploy(service)
    _checklist(tmp_path, "require_target = true")

    result = gate(service, sb.service_url(service), TARGET_TEST)

    assert result.run.returncode == 0, result.run  # the other checks passed: a skip that does not apply is no NOT VERIFIED
    assert result.run.outcomes["test_rollback_target[rollback-target]"] == "skipped"
    assert f"not applicable: a first deploy of {service} ({only} is its only revision)" in result.output
    assert "revgate rollback target: none: a first deploy (no older revision; not applicable)" in result.output


def test_promote_100_refuses_to_leave_no_ready_older_revision(sb, gate, service, traffic, tmp_path):
    broken = sb.deploy(service, not_ready=True)
    candidate = sb.deploy(service, tag="cand", no_traffic=True)
    before = traffic(service)

    result = gate(service, sb.tag_url(service, "cand"), "--promote=100")

    assert result.run.returncode == 1, result.run  # every check passed, the promotion asked for did not happen
    assert "it will be refused" in result.output  # said in the header, before any check
    assert f"{candidate} at 100 % would leave no Ready older revision to roll back to ({broken} is not Ready)" in result.output
    assert traffic(service).entries == before.entries


def test_promote_100_without_target_when_the_checklist_says_so(sb, gate, service, traffic, tmp_path):
    sb.deploy(service, not_ready=True)
    candidate = sb.deploy(service, tag="cand", no_traffic=True)
    _checklist(tmp_path, "promote_without_target = true")

    result = gate(service, sb.tag_url(service, "cand"), "--promote=100")

    assert result.run.returncode == 0, result.run
    assert traffic(service).split == {candidate: 100}

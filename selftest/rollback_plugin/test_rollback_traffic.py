"""Which traffic the rollback restores, read back through the real run_v2 client afterwards."""

from __future__ import annotations

FAILED_KEY = "revgate.dev/failed-revisions"


def test_tag_only_failure_shifts_nothing_and_still_fails(sb, gate, service, traffic):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True, faults=["stats_500"])
    before = traffic(service)

    result = gate(service, sb.tag_url(service, "cand"))

    assert result.run.returncode == 1, result.run
    assert "nothing to shift" in result.output
    assert f"{candidate} serves no traffic" in result.output
    assert sb.calls("UpdateService") == 1  # the known-bad mark alone (update_mask annotations): no traffic sent
    assert traffic(service) == before
    assert before.split == {stable: 100}
    assert result.record["status"] == "nothing-to-shift"
    assert result.record["marks_written"][FAILED_KEY] == candidate
    assert dict(sb.get_service(service).annotations)[FAILED_KEY] == candidate


def test_canary_failure_restores_previous_and_keeps_tags(sb, gate, service, traffic):
    stable = sb.deploy(service, tag="stable")
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    tags_before = traffic(service).tags

    result = gate(service, sb.tag_url(service, "canary"))

    assert result.run.returncode == 1, result.run
    after = traffic(service)
    assert after.split == {stable: 100}
    assert after.tags == tags_before  # both tag URLs survive
    assert result.record["status"] == "done"
    assert "ROLLBACK DONE" in result.output
    assert sb.calls("UpdateService") == 1


def test_candidate_at_100_rolls_back_to_newest_older_ready_revision(sb, gate, service, traffic):
    sb.deploy(service)
    second = sb.deploy(service)
    candidate = sb.deploy(service, faults=["stats_500"])  # takes all the traffic
    assert traffic(service).split == {candidate: 100}

    result = gate(service, sb.service_url(service))

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {second: 100}
    assert result.record["traffic"]["rule"] == f"the newest Ready revision created before {candidate}"


def test_rollback_restores_pre_run_split(sb, gate, service, traffic):
    first = sb.deploy(service)
    second = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True, faults=["stats_500"])
    sb.update_traffic(service, to_revisions={first: 70, second: 20, candidate: 10})

    result = gate(service, sb.tag_url(service, "cand"))

    assert result.run.returncode == 1, result.run
    after = traffic(service)
    assert after.split == {first: 78, second: 22}  # 70/90 -> 77.8, 20/90 -> 22.2: largest remainder
    assert after.tags["cand"][0] == candidate
    assert result.record["traffic"]["planned_split"] == {first: 78, second: 22}


def test_previous_revision_option_gets_all_the_traffic(sb, gate, service, traffic):
    first = sb.deploy(service)
    second = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True, faults=["stats_500"])
    sb.update_traffic(service, to_revisions={second: 50, candidate: 50})

    result = gate(service, sb.tag_url(service, "cand"), f"--previous-revision={first}")

    assert result.run.returncode == 1, result.run
    assert f"revgate previous revision: {first}" in result.output
    assert traffic(service).split == {first: 100}


def test_previous_not_ready_is_skipped(sb, gate, service, traffic):
    first = sb.deploy(service)
    broken = sb.deploy(service, not_ready=True)
    candidate = sb.deploy(service, faults=["stats_500"])
    assert traffic(service).split == {candidate: 100}

    result = gate(service, sb.service_url(service))

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {first: 100}
    assert result.record["traffic"]["skipped_not_ready"] == [broken]
    assert f"skipped (not Ready): {broken}" in result.output


def test_no_ready_revision_to_restore_changes_nothing(sb, gate, service, traffic):
    candidate = sb.deploy(service, faults=["stats_500"])
    before = traffic(service)

    result = gate(service, sb.service_url(service))

    assert result.run.returncode == 1, result.run
    assert sb.calls("UpdateService") == 1  # the known-bad mark alone: no traffic sent
    assert traffic(service) == before
    assert f"no good revision older than {candidate} to give the traffic to" in result.output
    assert result.record["status"] == "failed"
    assert dict(sb.get_service(service).annotations)[FAILED_KEY] == candidate

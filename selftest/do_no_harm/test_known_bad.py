"""A rollback or a promotion never sends traffic to a revision known to be bad: revgate records its
verdicts on the service (``revgate.dev/failed-revisions``, written in the same UpdateService as the
traffic), honours a person's marking, and prefers the revisions that last held traffic."""

from __future__ import annotations

import pytest

from do_no_harm.conftest import FAILED_KEY, LAST_SERVING_KEY, last_line


def test_failed_canary_then_bad_deploy_at_100_goes_back_to_the_last_good(sb, gate, service, traffic, annotations, canary):
    stable, bad_canary, url = canary()
    first = gate(service, url)
    assert first.run.returncode == 1, first.run
    assert traffic(service).split == {stable: 100}
    marks = annotations(service)
    assert marks[FAILED_KEY] == bad_canary
    assert marks[LAST_SERVING_KEY] == f"{stable}=100"
    assert first.record["marks_written"][FAILED_KEY] == bad_canary

    # a plain deploy at 100 % of another broken revision: the newest Ready revision before it is the bad canary
    second_bad = sb.deploy(service, faults=["stats_500"])
    assert traffic(service).split == {second_bad: 100}
    second = gate(service, sb.service_url(service))

    assert second.run.returncode == 1, second.run
    assert traffic(service).split == {stable: 100}
    assert second.record["traffic"]["rule"] == f"the revisions that last held traffic before {second_bad} ({LAST_SERVING_KEY})"
    assert annotations(service)[FAILED_KEY] == f"{bad_canary},{second_bad}"
    assert "ROLLBACK DONE" in last_line(second.output, "ROLLBACK")


def test_a_persons_marking_is_skipped_like_not_ready_and_other_annotations_kept(
    sb, gate, service, traffic, annotations, set_annotations
):
    oldest = sb.deploy(service)
    marked = sb.deploy(service)
    candidate = sb.deploy(service, faults=["stats_500"])
    set_annotations(service, {FAILED_KEY: f"projects/p/locations/r/services/{service}/revisions/{marked}", "team.example/owner": "payments"})

    result = gate(service, sb.service_url(service))

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {oldest: 100}
    assert result.record["traffic"]["skipped_failed"] == [marked]
    assert f"skipped (known bad, {FAILED_KEY}): {marked}" in result.output
    after = annotations(service)
    assert after["team.example/owner"] == "payments"
    assert after[FAILED_KEY] == f"{marked},{candidate}"


def test_nothing_good_left_stops_with_a_clear_error_and_changes_nothing(sb, gate, service, traffic, set_annotations):
    marked = sb.deploy(service)
    candidate = sb.deploy(service, faults=["stats_500"])
    set_annotations(service, {FAILED_KEY: marked})
    before = traffic(service)
    sb.reset_calls()

    result = gate(service, sb.service_url(service))

    assert result.run.returncode == 1, result.run
    assert traffic(service) == before
    assert before.split == {candidate: 100}
    assert sb.calls("UpdateService") == 1  # no traffic: the candidate's known-bad mark alone (update_mask annotations)
    line = last_line(result.output, "ROLLBACK")
    assert line.startswith("ROLLBACK FAILED: no good revision older than"), line
    assert f"marked failed in {FAILED_KEY}: {marked}" in line
    assert result.record["status"] == "failed"


def test_a_marked_revision_is_never_promoted(sb, gate, service, traffic, set_annotations, tmp_path):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True)  # healthy: its checks pass
    set_annotations(service, {FAILED_KEY: candidate})
    sb.reset_calls()

    result = gate(service, sb.tag_url(service, "cand"), "--promote=100", f"--report-json={tmp_path / 'report.json'}")

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert sb.calls("UpdateService") == 0
    assert f"{candidate} is marked failed ({FAILED_KEY} on the service): it is never promoted" in result.output


def test_promotion_writes_the_last_serving_split(sb, gate, service, traffic, annotations):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True)

    result = gate(service, sb.tag_url(service, "cand"), "--promote=100")

    assert result.run.returncode == 0, result.run
    assert traffic(service).split == {candidate: 100}
    assert annotations(service)[LAST_SERVING_KEY] == f"{candidate}=100"
    assert FAILED_KEY not in annotations(service)
    assert stable


def test_sandbox_annotations_follow_the_documented_rules(sb, service, annotations, set_annotations):
    from google.api_core import exceptions

    sb.deploy(service)
    set_annotations(service, {"team.example/owner": "payments"})
    sb.deploy(service)  # a deploy keeps the service's annotations
    assert annotations(service) == {"team.example/owner": "payments"}
    for key in ("run.googleapis.com/launch-stage", "serving.knative.dev/creator", "bad key"):
        with pytest.raises(exceptions.InvalidArgument):
            set_annotations(service, {key: "x"})
    with pytest.raises(exceptions.InvalidArgument):
        set_annotations(service, {"team.example/big": "x" * (256 * 1024)})
    assert annotations(service) == {"team.example/owner": "payments"}

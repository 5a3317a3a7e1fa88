"""The known-bad memory (``revgate.dev/failed-revisions``, ``revgate.dev/last-serving``): every revision that
failed a gate is marked, the marks never make the rollback fail, the list forgets deleted revisions first."""

from __future__ import annotations

import pytest

from rollback_plugin.conftest import FAILED_KEY, LAST_SERVING_KEY, one_line


@pytest.mark.parametrize(
    "code, message",
    [
        ("PERMISSION_DENIED", "Permission 'run.services.update' denied on the annotations of the resource"),
        ("INVALID_ARGUMENT", "metadata.annotations: refused by the organization policy"),
    ],
)
def test_marks_refused_with_the_traffic_are_sent_again_with_the_traffic_alone(
    sb, gate, service, traffic, annotations, canary, code, message
):
    stable, candidate, url = canary()
    sb.inject("UpdateService:annotations", code, -1, message=message)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    after = traffic(service)
    assert after.split == {stable: 100}
    assert after.tags["canary"][0] == candidate
    assert sb.calls("UpdateService") == 2  # traffic,annotations refused, then traffic alone at once
    line = one_line(result.output, "ROLLBACK")
    assert line.startswith(f"ROLLBACK DONE: traffic restored: {stable}=100%"), line
    assert f"the known-bad mark could not be written ({code}: {message})" in line
    assert f"add {candidate} to {FAILED_KEY} by hand" in line
    assert result.record["status"] == "done"
    assert result.record["marks_written"] == {}
    assert result.record["marks_error"] == f"{code}: {message}"
    assert FAILED_KEY not in annotations(service)


def test_a_tag_only_failure_is_marked_and_last_serving_follows_a_change_by_hand(
    sb, gate, service, traffic, annotations, set_annotations
):
    old = sb.deploy(service)
    stable = sb.deploy(service)  # a person moved the traffic on since revgate last wrote its split
    set_annotations(service, {LAST_SERVING_KEY: f"{old}=100"})
    candidate = sb.deploy(service, tag="cand", no_traffic=True, faults=["stats_500"])
    before = traffic(service)

    result = gate(service, sb.tag_url(service, "cand"))

    assert result.run.returncode == 1, result.run
    assert traffic(service) == before and before.split == {stable: 100}
    line = one_line(result.output, "ROLLBACK")
    assert line.startswith(f"ROLLBACK NOTHING-TO-SHIFT: {candidate} serves no traffic (") and line.endswith(
        f"): nothing to shift; {candidate} marked failed ({FAILED_KEY})"
    ), line
    marks = annotations(service)
    assert marks[FAILED_KEY] == candidate
    assert marks[LAST_SERVING_KEY] == f"{stable}=100"  # the fresh split, not the stale recorded one
    assert result.record["marks_written"] == {FAILED_KEY: candidate, LAST_SERVING_KEY: f"{stable}=100"}

    # the next failing deploy at 100 % goes back to what really served, never to the marked canary
    bad = sb.deploy(service, faults=["stats_500"])
    second = gate(service, sb.service_url(service))

    assert second.run.returncode == 1, second.run
    assert traffic(service).split == {stable: 100}
    assert second.record["traffic"]["rule"] == f"the revisions that last held traffic before {bad} ({LAST_SERVING_KEY})"
    assert annotations(service)[FAILED_KEY] == f"{candidate},{bad}"


def test_a_mark_refused_when_nothing_is_shifted_is_reported(sb, gate, service, traffic, annotations):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True, faults=["stats_500"])
    sb.inject("UpdateService:annotations", "PERMISSION_DENIED", -1, message="denied on annotations")

    result = gate(service, sb.tag_url(service, "cand"))

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    line = one_line(result.output, "ROLLBACK")
    assert line.startswith("ROLLBACK NOTHING-TO-SHIFT: ") and line.endswith(
        f"the known-bad mark could not be written (PERMISSION_DENIED: denied on annotations): add {candidate} to {FAILED_KEY} by hand"
    ), line
    assert result.record["marks_error"] == "PERMISSION_DENIED: denied on annotations"
    assert FAILED_KEY not in annotations(service)


def test_the_list_keeps_a_thousand_names_and_drops_deleted_revisions_first(
    sb, gate, service, traffic, annotations, set_annotations, canary
):
    stable, candidate, url = canary()
    bad_old = sb.deploy(service, tag="old", no_traffic=True)  # an existing revision marked long ago: it must stay
    # 2,100 names of deleted revisions (63 characters each): 134 KB, over the list's 128 KiB budget
    deleted = [f"gone-{i:058d}" for i in range(2100)]
    set_annotations(service, {FAILED_KEY: ",".join([bad_old, *deleted]), "team.example/owner": "payments"})

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    after = annotations(service)
    names = after[FAILED_KEY].split(",")
    assert names[0] == bad_old and names[-1] == candidate  # the existing one kept, the new one added
    assert len(names) >= 1000
    assert len(after[FAILED_KEY]) <= 128 * 1024
    assert names[1:-1] == deleted[len(deleted) - (len(names) - 2) :]  # the oldest deleted names went first
    assert after["team.example/owner"] == "payments"


def test_a_thousand_names_under_the_budget_are_all_kept(sb, gate, service, traffic, annotations, set_annotations, canary):
    stable, candidate, url = canary()
    marked = [f"{service}-{i:05d}" for i in range(100, 1200)]  # 1,100 names: the old list kept only 100
    set_annotations(service, {FAILED_KEY: ",".join(marked)})

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert annotations(service)[FAILED_KEY].split(",") == [*marked, candidate]



def test_marks_carried_out_although_the_answer_was_an_error_are_reported_written(sb, gate, service, traffic, annotations, canary):
    stable, candidate, url = canary()
    sb.inject("UpdateService:applied", "PERMISSION_DENIED", 1)  # traffic and marks carried out, then answered an error

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    line = one_line(result.output, "ROLLBACK")
    assert line.startswith("ROLLBACK DONE: traffic restored:") and "could not be written" not in line, line
    assert annotations(service)[FAILED_KEY] == candidate
    assert result.record["marks_written"][FAILED_KEY] == candidate
    assert result.record["marks_error"] is None


def test_the_mark_alone_is_sent_again_after_an_etag_conflict(sb, gate, service, traffic, annotations):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="cand", no_traffic=True, faults=["stats_500"])
    before = traffic(service)
    sb.reset_calls()
    sb.inject("UpdateService", "ABORTED", 1)  # the first mark is refused as stale: re-read, sent again

    result = gate(service, sb.tag_url(service, "cand"))

    assert result.run.returncode == 1, result.run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 2  # the refused mark, then the mark made again from a fresh read
    assert one_line(result.output, "ROLLBACK").endswith(f"nothing to shift; {candidate} marked failed ({FAILED_KEY})")
    assert annotations(service)[FAILED_KEY] == candidate
    assert stable in before.split

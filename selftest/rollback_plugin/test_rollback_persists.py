"""The rollback does not give up early: transient read errors, a target deleted during the run, a failing
ListRevisions; and when it does fail, its message carries the command for the target the header showed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rollback_plugin.conftest import FAILED_KEY, REPO, one_line, wait_for_header
from sandbox.control import ControlError


@pytest.mark.parametrize("code", ["ABORTED", "FAILED_PRECONDITION", "UNAVAILABLE", "DEADLINE_EXCEEDED"])
def test_transient_errors_on_the_fresh_read_are_retried(sb, gate, service, traffic, annotations, canary, code):
    stable, candidate, url = canary()
    sb.inject("GetService", code, 2, after=1)  # the read at session start passes; the rollback's next two fail

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert one_line(result.output, "ROLLBACK") == f"ROLLBACK DONE: traffic restored: {stable}=100%, {candidate}=0% (tag canary)"
    assert result.record["status"] == "done"
    assert annotations(service)[FAILED_KEY] == candidate
    assert sb.calls("GetService") >= 4  # start, two refused, the read that planned (then the confirmations)


def test_a_target_deleted_during_the_run_is_relisted_and_replanned(
    sb, service, traffic, annotations, start_gate, write_checklist, tmp_path
):
    import json

    oldest = sb.deploy(service)
    previous = sb.deploy(service)
    candidate = sb.deploy(service, faults=["ws_silent"])  # at 100 %: the target is the newest older revision
    write_checklist(ws_timeout=3)
    proc = start_gate(service, sb.service_url(service))
    header = wait_for_header(proc)
    assert f"revgate rollback target: {previous} 100 %" in header, header

    sb.delete_revision(previous)  # someone prunes revisions while the checks run

    out, _ = proc.communicate(timeout=120)
    record = json.loads((tmp_path / "rollback.json").read_text())
    assert proc.returncode == 1, out
    assert traffic(service).split == {oldest: 100}
    assert one_line(out, "ROLLBACK") == f"ROLLBACK DONE: traffic restored: {oldest}=100%"
    assert record["traffic"]["rule"] == f"the newest Ready revision created before {candidate}"
    assert annotations(service)[FAILED_KEY] == candidate


def test_a_failing_list_revisions_falls_back_to_the_revisions_known_at_start(sb, gate, service, traffic, annotations, canary):
    stable, candidate, url = canary()
    sb.inject("ListRevisions", "PERMISSION_DENIED", -1, after=1, message="Permission 'run.revisions.list' denied")

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert one_line(result.output, "ROLLBACK").startswith(f"ROLLBACK DONE: traffic restored: {stable}=100%")
    assert (
        "ListRevisions failed (PERMISSION_DENIED: Permission 'run.revisions.list' denied): "
        "planned with the 2 revisions known at start"
    ) in result.record["errors"]
    assert annotations(service)[FAILED_KEY] == candidate


def test_a_failure_before_any_plan_gives_the_command_for_the_header_target(sb, gate, service, traffic, canary):
    stable, candidate, url = canary()
    before = traffic(service)
    sb.inject("GetService", "PERMISSION_DENIED", -1, after=1)

    result = gate(service, url)

    sb.inject("GetService", "PERMISSION_DENIED", 0)  # cleared, to read the traffic back
    assert result.run.returncode == 1, result.run
    assert traffic(service) == before
    command = (
        f"gcloud run services update-traffic {service} --region {sb.region} --project {sb.project} "
        f"--to-revisions {stable}=100"
    )
    assert f"revgate rollback target: {stable} 100 %" in result.output
    line = one_line(result.output, "ROLLBACK")
    assert line.startswith(f"ROLLBACK FAILED: cannot read projects/{sb.project}/locations/{sb.region}/services/{service}"), line
    assert line.endswith(f"; finish it by hand: {command}"), line
    assert result.record["manual_command"] == command
    assert "Traceback" not in result.output


def test_sandbox_deletes_only_revisions_that_serve_no_traffic(sb, service, traffic):
    from google.api_core import exceptions

    old = sb.deploy(service)
    stable = sb.deploy(service)
    tagged = sb.deploy(service, tag="cand", no_traffic=True)
    with pytest.raises(ControlError) as serving:
        sb.delete_revision(stable)
    assert serving.value.code == "FAILED_PRECONDITION" and "is serving traffic" in str(serving.value)
    with pytest.raises(ControlError) as named:
        sb.delete_revision(tagged)
    assert named.value.code == "FAILED_PRECONDITION"

    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "--home", str(sb.home), "delete-revision", old],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )

    assert done.returncode == 0 and done.stdout == f"revision {old} deleted\n", done
    names = [r["name"] for r in sb.status(service)["services"][0]["revisions"]]
    assert old not in names and {stable, tagged} <= set(names)
    listed = _list_revisions(sb, service)
    assert old not in listed and stable in listed
    with pytest.raises(exceptions.NotFound):
        _get_revision(sb, service, old)
    again = subprocess.run(
        [sys.executable, "-m", "sandbox", "--home", str(sb.home), "delete-revision", old],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "not found" in again.stderr, again
    assert traffic(service).split == {stable: 100}


def _revisions_client(sb):  # noqa: ANN001, ANN202
    import grpc
    from google.cloud import run_v2
    from google.cloud.run_v2.services.revisions.transports import RevisionsGrpcTransport

    channel = grpc.insecure_channel(sb.env["CLOUD_RUN_API_ENDPOINT"])
    return run_v2.RevisionsClient(transport=RevisionsGrpcTransport(channel=channel)), channel


def _list_revisions(sb, service: str) -> list[str]:  # noqa: ANN001
    client, channel = _revisions_client(sb)
    try:
        return [r.name.rsplit("/", 1)[-1] for r in client.list_revisions(parent=sb.service_name(service), timeout=10)]
    finally:
        channel.close()


def _get_revision(sb, service: str, name: str):  # noqa: ANN001, ANN202
    client, channel = _revisions_client(sb)
    try:
        return client.get_revision(name=f"{sb.service_name(service)}/revisions/{name}", timeout=10)
    finally:
        channel.close()

"""The rollback when Cloud Run gets in the way: conflicts, errors, slow operations, bad input."""

from __future__ import annotations

import json
import time

import pytest


def _wait_for_header(proc, needle="revgate rollback:", timeout=60.0) -> str:
    """Read the gate's output until the report header line (the snapshot is taken by then)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError("no report header from the gate:\n" + "".join(seen))


def _finish(proc, tmp_path) -> tuple[int, str, dict]:
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out, json.loads((tmp_path / "rollback.json").read_text())


def test_someone_already_rolled_back_during_the_run(sb, service, traffic, start_gate, write_checklist, tmp_path):
    first = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["ws_silent"])
    sb.update_traffic(service, to_revisions={first: 90, candidate: 10})
    write_checklist(ws_timeout=4)
    proc = start_gate(service, sb.tag_url(service, "canary"))
    _wait_for_header(proc)

    sb.update_traffic(service, to_revisions={first: 100})  # an operator acts while the checks run

    code, out, record = _finish(proc, tmp_path)
    assert code == 1, out
    assert "someone already acted" in out
    assert record["status"] == "already-acted"
    # the fresh read before the update showed another etag: no traffic was sent, only the known-bad mark
    # (update_mask annotations), and last-serving follows the operator's split
    assert sb.calls("UpdateService") == 1
    assert traffic(service).split == {first: 100}
    marks = dict(sb.get_service(service).annotations)
    assert marks["revgate.dev/failed-revisions"] == candidate
    assert marks["revgate.dev/last-serving"] == f"{first}=100"
    assert record["marks_written"]["revgate.dev/failed-revisions"] == candidate


def test_other_traffic_change_during_the_run_is_replanned(sb, service, traffic, start_gate, write_checklist, tmp_path):
    first = sb.deploy(service)
    second = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["ws_silent"])
    sb.update_traffic(service, to_revisions={first: 70, second: 20, candidate: 10})
    write_checklist(ws_timeout=4)
    proc = start_gate(service, sb.tag_url(service, "canary"))
    _wait_for_header(proc)

    sb.update_traffic(service, to_revisions={first: 50, second: 40, candidate: 10})

    code, out, record = _finish(proc, tmp_path)
    assert code == 1, out
    assert record["status"] == "done", out
    # the fresh read showed the change (etag and generation): planned from it, one request, no conflict
    assert record["attempts"] == 1 and record["errors"] == []
    # re-planned from 50/40/10, not from the pre-run 70/20/10 (which would give 78/22)
    assert traffic(service).split == {first: 56, second: 44}
    assert sb.calls("UpdateService") == 1


def test_injected_aborted_is_replanned(sb, gate, service, traffic, canary):
    stable, _, url = canary()
    sb.inject("UpdateService", "ABORTED", 1)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert result.record["attempts"] == 2
    assert sb.calls("UpdateService") == 2


def test_transient_unavailable_is_retried(sb, gate, service, traffic, canary):
    stable, _, url = canary()
    sb.inject("UpdateService", "UNAVAILABLE", 2)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    assert result.record["status"] == "done"
    assert sb.calls("UpdateService") == 3


@pytest.mark.slow
def test_persistent_failure_leaves_traffic_and_prints_the_command(sb, gate, service, traffic, canary):
    stable, candidate, url = canary()
    before = traffic(service)
    sb.inject("UpdateService", "UNAVAILABLE", -1)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service) == before
    assert result.record["status"] == "failed"
    assert result.record["errors"]
    command = (
        f"gcloud run services update-traffic {service} --region {sb.region} --project {sb.project} "
        f"--to-revisions {stable}=100"
    )
    assert command in result.output
    assert result.record["manual_command"] == command
    assert "ROLLBACK FAILED" in result.output


def test_slow_operation_is_polled(sb, gate, service, traffic, canary):
    stable, _, url = canary()
    sb.set_operation_delay(2.5)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service).split == {stable: 100}
    timings = result.record["timings"]
    assert timings["operation_done_s"] - timings["request_sent_s"] >= 2.4


def test_record_fields(sb, gate, service, canary):
    stable, candidate, url = canary()

    result = gate(service, url)

    record = result.record
    assert record["trigger"]["test"].startswith("tests_smoke/test_api.py::test_api[stats]")
    assert "answered 500" in record["trigger"]["reason"] and "\n" not in record["trigger"]["reason"]
    assert {(e["revision"], e["percent"]) for e in record["traffic"]["before"]} >= {(stable, 90), (candidate, 10)}
    assert [(e["revision"], e["percent"], e["tag"]) for e in record["traffic"]["planned"]] == [
        (stable, 100, ""),
        (candidate, 0, "canary"),
    ]
    assert {(e["revision"], e["percent"]) for e in record["traffic"]["after"] if e["percent"]} == {(stable, 100)}
    assert record["etag"]
    assert record["mode"] == "on-failure"
    timings = record["timings"]
    assert timings["first_failure_at"]
    assert 0 <= timings["request_sent_s"] <= timings["operation_done_s"]
    assert record["errors"] == []
    assert record["revisions_under_test"] == [candidate]
    assert record["previous_revision"] == stable


@pytest.mark.parametrize(
    "extra, expected",
    [
        (("--service=no-such-service",), "service no-such-service not found"),
        (("--project=other-project",), "not found"),
        (("--revision-url=http://127.0.0.1:9",), "belongs to no revision of service"),
        (("--revision=nope-00009",), "is not a revision of service"),
        (("--previous-revision=nope-00009",), "is not a revision of the service"),
    ],
)
def test_bad_input_is_one_line_exit_4(sb, run_suite, service, canary, tmp_path, write_checklist, traffic, extra, expected):
    _, _, url = canary()
    write_checklist()
    before = traffic(service)
    args = ["tests_smoke", f"--revision-url={url}", f"--service={service}", f"--checklist={tmp_path / 'checklist.toml'}"]
    args = [a for a in args if not any(a.split("=")[0] == e.split("=")[0] for e in extra)] + list(extra)

    result = run_suite(*args, env=sb.env)

    assert result.returncode == 4, result
    errors = [line for line in result.output.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and expected in errors[0], result
    assert "Traceback" not in result.output
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0

"""The rollback against Cloud Run's documented Admin API behaviour: traffic-only updates, etag modes,
errors by kind, both URL styles, the default TCP startup probe.

Every test runs the gate in a subprocess against the sandbox (real google-cloud-run client, real
gRPC) and asserts the verdict, the message and the traffic read back afterwards.
"""

from __future__ import annotations

import pytest

from .test_rollback_failures import _finish, _wait_for_header


def _styled(sb, service, style: str, tag: str = "") -> str:
    """The hash-style (``a.run.app``) or deterministic-style URL of the service, with ``TAG---`` when given."""
    uri, hashed, deterministic = sb.service_urls(service)
    url = {"hash": hashed, "deterministic": deterministic}[style]
    assert (".a.run.app:" in url) == (style == "hash"), url
    return url.replace("http://", f"http://{tag}---") if tag else url


def test_concurrent_deploy_keeps_its_template_and_tag(sb, service, traffic, start_gate, write_checklist, tmp_path):
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["ws_silent"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    write_checklist(ws_timeout=4)
    proc = start_gate(service, sb.tag_url(service, "canary"))
    _wait_for_header(proc)

    hotfix = sb.deploy(service, tag="hotfix", no_traffic=True, faults=["latency_ms:1"])  # someone deploys meanwhile

    code, out, record = _finish(proc, tmp_path)
    assert code == 1, out
    assert record["status"] == "done", out
    assert "ROLLBACK DONE" in out
    after = traffic(service)
    assert after.split == {stable: 100}
    assert after.tags["hotfix"][0] == hotfix and after.tags["canary"][0] == candidate
    svc = sb.get_service(service)
    assert svc.template.revision == hotfix  # the deploy's template, not the one read at session start
    assert [e.value for e in svc.template.containers[0].env] == ["latency_ms:1"]
    assert svc.latest_created_revision.endswith("/" + hotfix)


@pytest.mark.parametrize("mode", ["ABORTED", "FAILED_PRECONDITION"])
def test_real_etag_conflict_is_replanned_in_either_code(sb, service, traffic, start_gate, write_checklist, tmp_path, mode):
    first = sb.deploy(service)
    second = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["ws_silent"])
    sb.update_traffic(service, to_revisions={first: 70, second: 20, candidate: 10})
    sb.set_etag_mode(mode)
    write_checklist(ws_timeout=4)
    proc = start_gate(service, sb.tag_url(service, "canary"))
    _wait_for_header(proc)
    # right after the rollback's fresh GetService, someone else changes the split: its etag is stale
    sb.race_next_get(service, {first: 50, second: 40, candidate: 10})

    code, out, record = _finish(proc, tmp_path)
    assert code == 1, out
    assert record["status"] == "done", out
    assert record["attempts"] == 2
    assert record["errors"][0].startswith(f"attempt 1: etag conflict: {mode}: etag"), record["errors"]
    assert traffic(service).split == {first: 56, second: 44}  # re-planned from 50/40/10
    assert sb.calls("UpdateService") == 2


def test_no_etag_enforcement_still_replans_from_a_fresh_read(
    sb, service, traffic, start_gate, write_checklist, tmp_path
):
    first = sb.deploy(service)
    second = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["ws_silent"])
    sb.update_traffic(service, to_revisions={first: 70, second: 20, candidate: 10})
    sb.set_etag_mode("NONE")  # Cloud Run would accept a stale etag: revgate compares etag and generation itself
    write_checklist(ws_timeout=4)
    proc = start_gate(service, sb.tag_url(service, "canary"))
    _wait_for_header(proc)

    sb.update_traffic(service, to_revisions={first: 50, second: 40, candidate: 10})

    code, out, record = _finish(proc, tmp_path)
    assert code == 1, out
    assert record["status"] == "done", out
    assert record["attempts"] == 1
    assert traffic(service).split == {first: 56, second: 44}  # not 78/22 from the stale snapshot
    assert traffic(service).tags["canary"][0] == candidate


@pytest.mark.parametrize(
    "code, message",
    [
        ("ALREADY_EXISTS", "Revision named 'x-00002' with different configuration already exists."),
        ("INVALID_ARGUMENT", "spec.traffic: tag 'canary' is used by more than one traffic target"),
        ("PERMISSION_DENIED", "Permission 'run.services.update' denied on resource"),
    ],
)
def test_final_errors_are_one_line_with_the_gcloud_command(sb, gate, service, traffic, canary, code, message):
    stable, _, url = canary()
    before = traffic(service)
    sb.inject("UpdateService", code, -1, message=message)

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    assert traffic(service) == before  # nothing half-done
    # final: not retried, not re-planned; only sent again at once without the marks (they may be what was refused)
    assert sb.calls("UpdateService") == 2
    command = (
        f"gcloud run services update-traffic {service} --region {sb.region} --project {sb.project} "
        f"--to-revisions {stable}=100"
    )
    lines = [line for line in result.output.splitlines() if line.startswith("ROLLBACK FAILED")]
    assert len(lines) == 1, result.output
    assert f"Cloud Run refused the traffic update ({code}): {message}" in lines[0]
    assert lines[0].endswith(f"finish it by hand: {command}")
    assert "Traceback" not in result.output
    assert result.record["status"] == "failed" and result.record["manual_command"] == command


def test_failed_reconcile_reports_its_own_message(sb, gate, service, traffic, canary):
    stable, candidate, url = canary()
    sb.fail_next_reconcile("Revision 'x' is not ready and cannot serve traffic. Container failed to start.")

    result = gate(service, url)

    assert result.run.returncode == 1, result.run
    line = [line for line in result.output.splitlines() if line.startswith("ROLLBACK FAILED")][0]
    assert "Cloud Run could not apply the traffic: Revision 'x' is not ready and cannot serve traffic." in line
    assert "did not complete" not in line and "do not match" not in line  # not a timeout
    assert traffic(service).split == {stable: 90, candidate: 10}
    assert result.record["timings"]["operation_done_s"] < 10


@pytest.mark.parametrize(
    "style, suffix",
    [("hash", "/"), ("deterministic", "/"), ("hash", "")],
    ids=["hash-trailing-slash", "deterministic-trailing-slash", "hash-bare"],
)
def test_both_url_styles_with_a_tag_are_rolled_back(sb, gate, service, traffic, canary, style, suffix):
    stable, candidate, _ = canary()
    url = _styled(sb, service, style, tag="canary") + suffix

    result = gate(service, url, "-p", "sandbox.resolver")

    assert result.run.returncode == 1, result.run
    assert f"revgate revision under test: {candidate}, serving 10 %" in result.output
    assert "answered 500" in result.record["trigger"]["reason"]  # the checks reached the canary by its styled URL
    assert traffic(service).split == {stable: 100}
    assert traffic(service).tags["canary"][0] == candidate


@pytest.mark.parametrize("style", ["hash", "deterministic"])
@pytest.mark.parametrize("tag, path", [("canary", "/some/path"), ("", "/some/path/")], ids=["tag-path", "service-path"])
def test_url_styles_match_with_a_path(sb, run_suite, service, canary, tmp_path, write_checklist, style, tag, path):
    """A path after a Cloud Run URL is refused before any check (every check's path is relative to the
    root Cloud Run serves a revision at: a base path would make a healthy revision 404 and roll back)."""
    canary()
    write_checklist()
    url = _styled(sb, service, style, tag=tag) + path

    result = run_suite(
        "tests_smoke", "--collect-only", f"--revision-url={url}", f"--service={service}",
        f"--checklist={tmp_path / 'checklist.toml'}", env=sb.env,
    )

    result.assert_usage_error(f"has a path ({path.rstrip('/')}): Cloud Run serves a revision at the root of its URL")


def test_url_matching_nothing_lists_the_urls_that_would(sb, run_suite, service, canary, tmp_path, write_checklist, traffic):
    _, _, tag_url = canary()
    write_checklist()
    hashed = _styled(sb, service, "hash")
    wrong = hashed.replace(f"{service}-", f"{service}x-")

    for url, fragment in [(wrong, "belongs to no revision"), (_styled(sb, service, "hash", tag="nope"), "tag 'nope'")]:
        result = run_suite(
            "tests_smoke", f"--revision-url={url}", f"--service={service}",
            f"--checklist={tmp_path / 'checklist.toml'}", env=sb.env,
        )
        result.assert_usage_error(fragment)
    line = [line for line in run_suite(
        "tests_smoke", f"--revision-url={wrong}", f"--service={service}",
        f"--checklist={tmp_path / 'checklist.toml'}", env=sb.env,
    ).stderr.splitlines() if line.strip()][0]
    for expected in [*sb.service_urls(service), tag_url, _styled(sb, service, "deterministic", tag="canary")]:
        assert expected in line, line
    assert sb.calls("UpdateService") == 0


def test_ready_canary_whose_health_answers_500_is_rolled_back(sb, gate, service, traffic):
    stable = sb.deploy(service)
    # the default TCP startup probe: Ready although /health answers 500 (as on Cloud Run)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["health_500"])
    assert [r for r in sb.status(service)["services"][0]["revisions"] if r["name"] == candidate][0]["ready"]
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})

    result = gate(service, sb.tag_url(service, "canary"))

    assert result.run.returncode == 1, result.run
    assert "test_health[health]" in " ".join(result.run.failed())
    assert result.record["status"] == "done"
    assert traffic(service).split == {stable: 100}

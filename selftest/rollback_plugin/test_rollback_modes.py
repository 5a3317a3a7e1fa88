"""When the rollback runs, and how often: modes, advisory and skipped checks, healthy revisions, xdist."""

from __future__ import annotations

import pytest


def test_dry_run_validates_and_changes_nothing(sb, gate, service, traffic, canary):
    stable, candidate, url = canary()
    before = traffic(service)

    result = gate(service, url, "--rollback=dry-run")

    assert result.run.returncode == 1, result.run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert sb.calls("UpdateService:validate_only") == 1
    assert "ROLLBACK VALIDATED" in result.output
    assert f"{stable}=100%" in result.output  # the plan is printed
    assert result.record["status"] == "validated"
    assert result.record["traffic"]["planned_split"] == {stable: 100}


def test_rollback_off_leaves_traffic(sb, gate, service, traffic, canary):
    _, _, url = canary()
    before = traffic(service)

    result = gate(service, url, "--rollback=off")

    assert result.run.returncode == 1, result.run
    assert "revgate rollback: off" in result.output
    assert traffic(service) == before
    assert sb.calls("UpdateService") + sb.calls("UpdateService:validate_only") == 0
    assert result.record["status"] == "off"


def test_advisory_failure_does_not_trigger(sb, gate, service, traffic, canary, tmp_path, write_checklist):
    _, _, url = canary()
    write_checklist(advisory_api=True)
    before = traffic(service)

    result = gate(service, url)

    assert result.run.returncode == 0, result.run
    assert "test_api[stats]" in " ".join(result.run.failed())
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert result.record["status"] == "not-needed"


def test_skipped_failing_check_does_not_trigger(sb, gate, service, traffic, canary, tmp_path, write_checklist):
    _, _, url = canary(faults=("ws_reject",))
    (tmp_path / "skip_websocket.py").write_text(
        "import pytest\n\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        if 'websocket' in item.nodeid:\n"
        "            item.add_marker(pytest.mark.skip(reason='skipped by the selftest'))\n"
    )
    before = traffic(service)

    result = gate(service, url, "-p", "skip_websocket", env={"PYTHONPATH": str(tmp_path)})

    assert result.run.returncode == 0, result.run
    assert any(o == "skipped" for o in result.run.outcomes.values()), result.run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0


def test_healthy_revision_sends_no_update(sb, gate, service, traffic, canary):
    _, _, url = canary(faults=())
    before = traffic(service)

    result = gate(service, url)

    assert result.run.returncode == 0, result.run
    assert traffic(service) == before
    assert sb.calls("UpdateService") + sb.calls("UpdateService:validate_only") == 0
    assert "no gating check failed" in result.output
    assert result.record["status"] == "not-needed"


@pytest.mark.parametrize("workers", [2, 4])
def test_xdist_rolls_back_exactly_once(sb, gate, service, traffic, canary, workers):
    stable, _, url = canary(faults=("stats_500", "ws_reject"))

    result = gate(service, url, "-n", str(workers))

    assert result.run.returncode == 1, result.run
    assert len(result.run.failed()) >= 2, result.run
    assert sb.calls("UpdateService") == 1
    assert traffic(service).split == {stable: 100}
    assert result.record["status"] == "done"


def test_no_service_means_no_rollback(sb, run_suite, service, traffic, canary, tmp_path, write_checklist):
    _, _, url = canary()
    before = traffic(service)
    write_checklist()

    result = run_suite("tests_smoke", f"--revision-url={url}", f"--checklist={tmp_path / 'checklist.toml'}", env=sb.env)

    assert result.returncode == 1, result
    assert "revgate rollback: off (no --service given" in result.output
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0

"""Monitoring runs: ``--retries`` shows a retried pass everywhere, and rollback stays off unless asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.control import Sandbox

from .conftest import split_of


def test_retried_pass_is_shown_in_every_report(
    sandbox: Sandbox, service: str, gate: Callable[..., Any], checklist: Path
) -> None:
    # a revision that answers 503 for its first 8 s (not waited for), a readiness budget of 1 s, and retries
    # 1 s apart: the first attempts fail, a later one passes
    checklist.write_text("[health]\nready_budget = 1\n")
    sandbox.deploy(service)
    sandbox.deploy(service, tag="slow", no_traffic=True, faults=["startup_delay:8"], ready_timeout=0.2)

    g = gate(sandbox.tag_url(service, "slow"), "--retries", "10")

    assert g.run.returncode == 0, g.run
    health = g.check("test_health[health]")
    assert health["outcome"] == "passed" and health["retries"] >= 1
    assert health["message"].startswith(f"passed after {health['retries']} retr")
    assert "503" in health["message"]  # the first attempt's failure is kept
    assert g.json["verdict"] == "PASS"
    assert "passed after retry" in g.json["counts"]
    assert "RETRIED  test_health[health]: passed after" in g.output
    assert "| `test_health[health]` | passed |" in g.markdown and "passed after" in g.markdown
    assert "rerun" in g.output  # pytest-rerunfailures' own count in the last line


def test_retries_from_the_environment(sandbox: Sandbox, service: str, gate: Callable[..., Any], checklist: Path) -> None:
    checklist.write_text("[health]\nready_budget = 1\n")
    sandbox.deploy(service)
    sandbox.deploy(service, tag="slow", no_traffic=True, faults=["startup_delay:8"], ready_timeout=0.2)

    g = gate(sandbox.tag_url(service, "slow"), env={"REVGATE_RETRIES": "10"})

    assert g.run.returncode == 0, g.run
    assert g.check("test_health[health]")["retries"] >= 1


def test_monitoring_run_with_rollback_off_leaves_traffic(
    sandbox: Sandbox, service: str, gate: Callable[..., Any]
) -> None:
    stable = sandbox.deploy(service)
    broken = sandbox.deploy(service, tag="canary", no_traffic=True, faults=["stats_500"])
    sandbox.update_traffic(service, to_revisions={stable: 50, broken: 50})

    # what the monitoring examples set: REVGATE_ROLLBACK=off, and retries
    g = gate(
        sandbox.tag_url(service, "canary"),
        f"--service={service}",
        "--retries",
        "1",
        env={"REVGATE_ROLLBACK": "off"},
    )

    assert g.run.returncode == 1
    assert g.json["verdict"] == "FAIL"
    assert g.json["rollback"]["status"] == "off"
    assert "rollback (off): a gating check failed; rollback is off" in g.output
    assert g.check("test_api[stats]")["message"].endswith("(failed 2 attempts)")
    assert split_of(sandbox, service) == {stable: 50, broken: 50}

"""Sandbox lifecycle through the CLI: up prints the environment, state survives down/up, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.control import Sandbox
from sandbox.lifecycle import pid_alive

REPO = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "CLOUD_"))}
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "--home", str(home), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def _exports(stdout: str) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in stdout.splitlines() if line.startswith("export "))


def _pids(status: dict[str, Any]) -> list[int]:
    return [r["pid"] for s in status["services"] for r in s["revisions"] if r["pid"]]


def test_state_survives_down_and_up_and_nothing_is_left_behind(tmp_path: Path) -> None:
    home = tmp_path / "sb"
    up = cli(home, "up", "--project", "demo-project", "--region", "us-central1", "--seed", "1")
    assert up.returncode == 0, up.stderr
    env = _exports(up.stdout)
    assert env["GOOGLE_CLOUD_PROJECT"] == "demo-project" and env["CLOUD_RUN_REGION"] == "us-central1"
    assert env["CLOUD_RUN_API_ENDPOINT"].startswith("127.0.0.1:") and env["REVGATE_AUTH_TOKEN"]
    try:
        assert cli(home, "deploy", "web").returncode == 0
        canary = cli(home, "deploy", "web", "--tag", "canary", "--no-traffic")
        assert canary.returncode == 0 and "tag URL (canary): http://127.0.0.1:" in canary.stdout
        moved = cli(home, "update-traffic", "web", "--to-revisions", "web-00001=75,web-00002=25")
        assert moved.returncode == 0, moved.stderr
        table = cli(home, "status")
        assert "web-00002  True   25%      canary" in table.stdout, table.stdout
        before = json.loads(cli(home, "status", "--json").stdout)
        daemon_pid = Sandbox(home, json.loads((home / "daemon.json").read_text())).pid
        pids = _pids(before)
        assert len(pids) == 2
    finally:
        down = cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not any(pid_alive(p) for p in [daemon_pid, *pids])
    assert cli(home, "status").returncode == 1

    again = cli(home, "up")
    try:
        assert again.returncode == 0, again.stderr
        assert _exports(again.stdout) == env  # same endpoints, project and region
        web = before["services"][0]
        assert f"# service web: {web['uri']}" in again.stdout
        after = json.loads(cli(home, "status", "--json").stdout)["services"][0]
        for key in ("uri", "etag", "traffic", "traffic_status", "tags"):
            assert after[key] == web[key], key
        assert all(r["pid"] for r in after["revisions"])
        assert httpx.get(web["tags"]["canary"] + "/health", timeout=5).headers["x-revision"] == "web-00002"
    finally:
        assert cli(home, "down").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["update-traffic", "web"],
        ["update-traffic", "web", "--to-revisions", "web-00001=lots"],
        ["update-traffic", "web", "--to-latest", "--to-tags", "a=100"],
        ["up", "--seed", "many"],
        ["up", "--operation-delay", "-1"],
        ["delay", "forever", "1"],
        ["launch"],
        [],
    ],
    ids=["no-target", "bad-percent", "two-targets", "bad-seed", "negative-delay", "bad-choice", "unknown-command", "none"],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = cli(tmp_path, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_commands_need_a_running_sandbox(tmp_path: Path) -> None:
    result = cli(tmp_path, "deploy", "web")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"sandbox: error: the sandbox is not running in {tmp_path.resolve()}: start it with `python -m sandbox up`"
    )


def test_cli_refusals_against_a_running_sandbox(sandbox: Sandbox, two_revisions: tuple[str, str, str]) -> None:
    home = sandbox.home
    bad = cli(home, "update-traffic", "shop", "--to-revisions", "shop-00001=50")
    assert bad.returncode == 2 and bad.stderr.strip() == "sandbox: error: traffic percentages add up to 50, not 100"
    missing = cli(home, "status", "nowhere")
    assert missing.returncode == 1 and "service 'nowhere' not found" in missing.stderr
    injected = cli(home, "inject", "GetRevision", "unavailable", "--times", "0")
    assert injected.returncode == 0 and "cleared" in injected.stdout
    calls = json.loads(cli(home, "calls", "--json").stdout)
    assert isinstance(calls, dict)

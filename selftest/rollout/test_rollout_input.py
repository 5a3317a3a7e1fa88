"""Bad rollout settings are one line and exit 4, before any check and any traffic change."""

from __future__ import annotations

import subprocess

import pytest

from rollout.conftest import gate_command, split

from sandbox.control import Sandbox

CASES = {
    "duration-unit": (["--rollout=10,100", "--soak=10x"], "--soak '10x' is not a duration: write it as 30s, 10m or 1h"),
    "decreasing": (["--rollout=50,10"], "the percents must increase"),
    "over-100": (["--rollout=10,150"], "each step is a whole percent from 1 to 100"),
    "soaks-per-step": (["--rollout=10,50", "--soak=1m,2m,3m"], "--soak gives 3 soaks for 2 steps"),
    "probe-too-fast": (["--rollout=10", "--probe-interval=0.5s"], "--probe-interval '0.5s' is out of range"),
    "max-below-soak": (["--rollout=10", "--soak=2m", "--max-soak=1m"], "is shorter than the soak of step 1"),
    "soak-alone": (["--soak=1m"], "--soak is for a rollout: give --rollout STEPS"),
    "empty": (["--rollout="], "--rollout is empty"),
    "with-promote": (["--rollout=10,100", "--promote=10"], "--rollout and --promote both move traffic"),
    "dry-run": (["--rollout=10,100", "--rollback=dry-run"], "use --rollback on-failure"),
    "nothing-to-resume": (["--rollout=10,100", "--resume"], "--resume: no rollout of"),
}


@pytest.fixture(scope="module")
def deployed(sandbox: Sandbox) -> tuple[str, str, str, str]:
    service = "ro-bad-input"
    stable = sandbox.deploy(service)
    canary = sandbox.deploy(service, tag="canary", no_traffic=True)
    return service, stable, canary, sandbox.tag_url(service, "canary")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_rollout_settings_are_one_line_and_exit_4(case, sandbox, deployed, tmp_path):
    service, stable, canary, url = deployed
    args, fragment = CASES[case]
    cmd, env = gate_command(sandbox, service, url, tmp_path, *args)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert split(sandbox, service) == {stable: 100}


def test_a_rollout_needs_the_service(sandbox, deployed, tmp_path):
    service, stable, canary, url = deployed
    cmd, env = gate_command(sandbox, service, url, tmp_path, "--rollout=10,100")
    cmd = [c for c in cmd if not c.startswith("--service=")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--rollout moves traffic: give --service" in proc.stderr


def test_the_checklist_holds_the_rollout(sandbox, deployed, tmp_path):
    """``[rollout]`` in the checklist, with a bad soak: the same one line, naming the key."""
    service, stable, canary, url = deployed
    cmd, env = gate_command(sandbox, service, url, tmp_path)
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(checklist.read_text() + '\n[rollout]\nsteps = [10, 100]\nsoak = "ten minutes"\n')
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "[rollout]" in proc.stderr and "ten minutes" in proc.stderr, proc.stderr

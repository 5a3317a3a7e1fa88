"""Every command of ``python -m sandbox`` explains itself (argparse formats each help text with %)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["up", "deploy", "update-traffic", "status", "inject", "delete-revision", "delay", "calls", "down"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_sandbox_command_has_help(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", command, "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m sandbox {command}"), proc.stdout
    assert "Traceback" not in proc.stderr

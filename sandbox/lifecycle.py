"""Starting and stopping the detached sandbox daemon.

``start`` spawns ``python -m sandbox.daemon`` in a new session (so it outlives
the shell; its revision processes share its process group), logging to
``HOME/daemon.log``, and waits until the daemon has written
``HOME/daemon.json``. ``stop`` asks it to shut down, waits, and then kills what
is left of its process group, so nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sandbox.daemon import DAEMON_FILE

__all__ = ["HOME_ENV", "SandboxError", "default_home", "read_info", "start", "stop", "pid_alive"]

HOME_ENV = "REVGATE_SANDBOX_HOME"
PID_FILE = "daemon.pid"


class SandboxError(RuntimeError):
    """The sandbox could not do what was asked; the message says why and what to do."""


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or ".sandbox")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child is reaped and counts as gone)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_info(home: Path) -> dict[str, Any] | None:
    """The running daemon's ``daemon.json``, or ``None`` when it is not running."""
    try:
        info = json.loads((home / DAEMON_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if pid_alive(int(info.get("pid", 0))) else None


def _log_tail(home: Path, lines: int = 5) -> str:
    try:
        return " | ".join((home / "daemon.log").read_text().strip().splitlines()[-lines:])
    except OSError:
        return ""


def start(
    home: Path,
    *,
    project: str | None = None,
    region: str | None = None,
    seed: int | None = None,
    metrics_delay: float = 0.0,
    operation_delay: float = 0.0,
    ready_timeout: float | None = None,
    etag_mode: str | None = None,
    sample_period: float | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Start the daemon unless it runs already; the contents of ``daemon.json``."""
    home = home.resolve()
    info = read_info(home)
    if info is not None:
        return info
    home.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sandbox.daemon", "--home", str(home)]
    if project:
        cmd += ["--project", project]
    if region:
        cmd += ["--region", region]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    cmd += ["--metrics-delay", str(metrics_delay), "--operation-delay", str(operation_delay)]
    if ready_timeout is not None:
        cmd += ["--ready-timeout", str(ready_timeout)]
    if etag_mode is not None:
        cmd += ["--etag-mode", etag_mode]
    if sample_period is not None:
        cmd += ["--sample-period", str(sample_period)]
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    with open(home / "daemon.log", "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=repo, env=env, start_new_session=True
        )
    (home / PID_FILE).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_info(home)
        if info is not None and info.get("pid") == proc.pid:
            return info
        if proc.poll() is not None:
            raise SandboxError(f"the sandbox daemon exited with code {proc.returncode}: {_log_tail(home)}")
        time.sleep(0.05)
    stop(home)
    raise SandboxError(f"the sandbox daemon was not ready within {timeout:g}s; see {home / 'daemon.log'}")


def stop(home: Path, *, timeout: float = 15.0) -> bool:
    """Stop the daemon and every revision process; whether anything was running."""
    home = home.resolve()
    try:
        pid = int((home / PID_FILE).read_text())
    except (OSError, ValueError):
        return False
    was_running = pid_alive(pid)
    if was_running:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever is left of the daemon's process group
    except (ProcessLookupError, PermissionError):
        pass
    pid_alive(pid)
    (home / PID_FILE).unlink(missing_ok=True)
    (home / DAEMON_FILE).unlink(missing_ok=True)
    return was_running

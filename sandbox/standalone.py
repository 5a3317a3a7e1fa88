"""The sample service on its own, outside the sandbox: for selftests and benchmarks.

:func:`start_sample_service` runs ``python -m sandbox.app`` on a free loopback
port and returns once it answers (with ``wait_ready``, once it stops answering
503, so a ``startup_delay`` fault is waited out).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "start_sample_service"]

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sample_service(
    *, token: str, faults: str = "", wait_ready: bool = True, timeout: float = 20.0
) -> tuple[str, subprocess.Popen[bytes]]:
    """(URL, process) of a running sample service; the caller terminates the process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.app", "--port", str(port), "--faults", faults, "--token", token],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sample service exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            # /favicon.ico: no fault but error_rate and startup_delay touches it
            status = httpx.get(url + "/favicon.ico", timeout=0.5).status_code
            if not wait_ready or status != 503:
                return url, proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the sample service did not start within {timeout:g} s")

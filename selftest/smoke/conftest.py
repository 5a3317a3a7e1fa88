"""Fixtures for the smoke selftests: the sample service as a real process on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "selftest-token-5f1c9a7e"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sample_service(faults: str = "", *, wait_ready: bool = True) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.app", "--host", "127.0.0.1", "--port", str(port), "--faults", faults, "--token", TOKEN],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sample service exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            status = httpx.get(url + "/favicon.ico", timeout=0.5).status_code
            if not wait_ready or status != 503:
                return url, proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sample service did not start within 20 s")


@pytest.fixture
def sample_service() -> Iterator[Callable[..., str]]:
    """``sample_service("stats_500")`` starts the sample service with those faults and returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(faults: str = "", *, wait_ready: bool = True) -> str:
        url, proc = start_sample_service(faults, wait_ready=wait_ready)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def auth_env() -> dict[str, str]:
    """The environment that gives the gate the sample service's API token."""
    return {"REVGATE_AUTH_TOKEN": TOKEN}


@pytest.fixture
def checklist_variant(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the shipped checklist with some lines replaced: ``checklist_variant({"ready_budget = 60": "ready_budget = 4"})``."""

    def make(replacements: dict[str, str], *, name: str = "checklist.toml") -> Path:
        text = (REPO / "checklist.toml").read_text()
        for old, new in replacements.items():
            assert old in text, f"{old!r} is not in the shipped checklist"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text)
        return path

    return make

"""Fixtures of the rollout selftests: one sandbox whose Cloud Monitoring samples every 2 s, a fresh
service per test, user traffic on its service URL, and the gate run as a user runs it.

With Cloud Run's 60 s samples a rollout's soak takes minutes; the sandbox's sample period is
settable (``up --sample-period``), so a three-step rollout soaks in seconds here. The gate itself
is unchanged: it judges whatever samples Monitoring shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.control import Sandbox
from sandbox.users import Users

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PERIOD = 2.0

CHECKLIST = """
[health]
ready_budget = 5

[[api]]
id = "hints"
path = "/api/hints"
auth = false

[[websocket]]
id = "session"
path = "/ws/{{session}}"
send = {{ type = "ping", id = 1 }}
expect = {{ type = "pong", id = 1 }}
timeout = 3

[metrics]
window = 240
min_requests = 20
max_error_rate = 0.05
p99_latency_ms = {p99}
"""


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=5, ready_timeout=15, sample_period=SAMPLE_PERIOD)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    words = request.node.name.removeprefix("test_").replace("_", "-")
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    return f"ro-{words[:20].rstrip('-')}-{digest}"


@pytest.fixture
def users(sandbox: Sandbox) -> Iterator[Callable[[str], Users]]:
    started: list[Users] = []

    def start(service: str) -> Users:
        u = Users(sandbox.service_url(service), seconds=150).start()
        started.append(u)
        return u

    yield start
    for u in started:
        u.stop()


@dataclass
class Run:
    returncode: int
    output: str
    report: dict[str, Any]
    rollback: dict[str, Any]

    @property
    def rollout(self) -> dict[str, Any]:
        return self.report.get("rollout") or {}

    def __repr__(self) -> str:
        return f"exit {self.returncode}\n{self.output[-6000:]}"


PAGE_AND_LOGS = """
[[page]]
id = "home"
path = "/"
selectors = ["#proactive-hints[data-ready='true']"]
auth = false

[[logs]]
id = "errors"
"""


def gate_command(sandbox: Sandbox, service: str, url: str, tmp_path: Path, *extra: str, p99: int = 2000,
                 more: str = "", env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    extra_env = env or {}
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(CHECKLIST.format(p99=p99) + more)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    env.update(sandbox.env, PYTHONUNBUFFERED="1", **extra_env)
    cmd = [
        sys.executable, "-m", "revgate", f"--revision-url={url}", f"--service={service}", f"--checklist={checklist}",
        "--sections=smoke,metrics" + (",frontend,logs" if more else ""), f"--report-json={tmp_path / 'report.json'}",
        f"--rollback-report={tmp_path / 'rollback.json'}", f"--junitxml={tmp_path / 'junit.xml'}", *extra,
    ]
    return cmd, env


def finish(proc: subprocess.Popen[str], tmp_path: Path, timeout: float = 200) -> Run:
    output, _ = proc.communicate(timeout=timeout)
    report = tmp_path / "report.json"
    rollback = tmp_path / "rollback.json"
    return Run(
        proc.returncode,
        output,
        json.loads(report.read_text()) if report.exists() else {},
        json.loads(rollback.read_text()) if rollback.exists() else {},
    )


@pytest.fixture
def start_gate(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start_gate(service, url, *extra, p99=2000)``: the ``revgate`` command in the background, from a
    directory of its own (as a team runs it from its repository)."""
    procs: list[subprocess.Popen[str]] = []
    workdir = tmp_path / "repo"
    workdir.mkdir(exist_ok=True)

    def start(service: str, url: str, *extra: str, p99: int = 2000, more: str = "",
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        cmd, env = gate_command(sandbox, service, url, tmp_path, *extra, p99=p99, more=more, env=env)
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def gate(start_gate: Callable[..., subprocess.Popen[str]], tmp_path: Path) -> Callable[..., Run]:
    """``gate(service, url, *extra)``: run the rollout to its end."""
    return lambda service, url, *extra, **kw: finish(start_gate(service, url, *extra, **kw), tmp_path)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A chat webhook on loopback: its URL and the JSON bodies it received."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/rollout-5e1f0c2a9b", received
    server.shutdown()


def split(sandbox: Sandbox, service: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in sandbox.traffic(service):
        if entry["percent"]:
            out[entry["revision"]] = out.get(entry["revision"], 0) + entry["percent"]
    return out


def wait_for_split(sandbox: Sandbox, service: str, want: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while split(sandbox, service) != want:
        assert time.monotonic() < deadline, f"the traffic never became {want}: {split(sandbox, service)}"
        time.sleep(0.2)

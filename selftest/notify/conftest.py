"""Fixtures of the notification selftests: webhook receivers on loopback, one sandbox per module.

A :class:`Receiver` is a real HTTP server on 127.0.0.1 (a thread of the test
process) that records every request. It answers as it is told: ``ok`` (200,
the body Slack answers), ``fail`` (500 every time), ``refuse`` (400, like
Slack's ``invalid_payload``), ``hang`` (holds the request past any
timeout), ``limited:S`` (429 with ``Retry-After: S`` the first time, then 200)
or ``throttled:S`` (429 with ``Retry-After: S`` every time). Its URL carries a secret path and token, as real webhooks do, so
that the tests can look for them in everything the gate prints and writes.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.control import Sandbox

SECRET_PATH = "/services/T0NOTIFY1/B0NOTIFY2/s3cretWebhookPath9f2c"
SECRET_TOKEN = "tok-7d1e0c9b5a3f4e21"

CHECKLIST = """
[health]
ready_budget = 5

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = {{ preferences = "object", concepts = "object", stats = "object" }}

{notify}
"""


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Receiver:
    """A webhook receiver on loopback; ``mode`` is what it answers."""

    mode: str = "ok"
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}?token={SECRET_TOKEN}"

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            receiver.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
            if receiver.mode == "hang":
                time.sleep(30)
                return
            extra: dict[str, str] = {}
            mode = receiver.mode
            if mode.startswith("limited:"):  # Slack's rate limit: 429 with Retry-After, the first time only
                mode = "ok" if len(receiver.requests) > 1 else "limited"
            if mode.startswith("throttled:"):  # 429 with Retry-After every time
                mode = "limited"
            if mode == "limited":
                extra["Retry-After"] = receiver.mode.split(":", 1)[1]
            status, text = {"ok": (200, "ok"), "fail": (500, "rollup_error"), "refuse": (400, "invalid_payload"),
                            "limited": (429, "rate_limited")}[mode]
            data = text.encode()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """``receiver("ok" | "fail" | "refuse" | "hang")``: a started receiver (stopped at teardown)."""
    started: list[Receiver] = []

    def start(mode: str = "ok") -> Receiver:
        rec = Receiver(mode=mode)
        rec.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
        rec.server.daemon_threads = True
        threading.Thread(target=rec.server.serve_forever, daemon=True).start()
        started.append(rec)
        return rec

    yield start
    for rec in started:
        assert rec.server is not None
        rec.server.shutdown()
        rec.server.server_close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused), with a secret path too."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}/refused"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=23, ready_timeout=15)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    words = request.node.name.removeprefix("test_").replace("_", "-").replace("[", "-").rstrip("]")
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    return f"nt-{words[:21].rstrip('-')}-{digest}"


@pytest.fixture
def canary(sandbox: Sandbox, service: str) -> Callable[..., tuple[str, str, str]]:
    """``canary(faults)``: a stable revision at 90 %, a canary at 10 %; returns (stable, canary, tag URL)."""

    def make(faults: tuple[str, ...] = ("stats_500",)) -> tuple[str, str, str]:
        stable = sandbox.deploy(service)
        candidate = sandbox.deploy(service, tag="canary", no_traffic=True, faults=list(faults))
        sandbox.update_traffic(service, to_revisions={stable: 90, candidate: 10})
        return stable, candidate, sandbox.tag_url(service, "canary")

    return make


@dataclass
class GateRun:
    run: Any
    report: dict[str, Any]
    seconds: float

    @property
    def output(self) -> str:
        return self.run.output


@pytest.fixture
def gate(sandbox: Sandbox, run_suite: Callable[..., Any], tmp_path: Path) -> Callable[..., GateRun]:
    """``gate(service, url, *args, notify="[notify] ...", env={...})``: the gate against the sandbox,
    with the JSON report; returns the run, the report and the wall time."""

    def run(service: str, url: str, *extra: str, notify: str = "", env: dict[str, str] | None = None) -> GateRun:
        checklist = tmp_path / "checklist.toml"
        checklist.write_text(CHECKLIST.format(notify=notify))
        report = tmp_path / "report.json"
        report.unlink(missing_ok=True)
        started = time.monotonic()
        result = run_suite(
            "tests_smoke",
            f"--revision-url={url}",
            f"--service={service}",
            f"--checklist={checklist}",
            f"--report-json={report}",
            *extra,
            env={**sandbox.env, **(env or {})},
        )
        seconds = time.monotonic() - started
        data = json.loads(report.read_text()) if report.exists() else {}
        return GateRun(result, data, seconds)

    return run


def split_of(sandbox: Sandbox, service: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in sandbox.traffic(service):
        if entry["percent"]:
            out[entry["revision"]] = out.get(entry["revision"], 0) + entry["percent"]
    return out


def assert_no_webhook_secret(run: GateRun, *extra_texts: str) -> None:
    """Neither the secret path nor the token appears in stdout, stderr, the JSON report or the JUnit XML."""
    texts = {
        "stdout": run.run.stdout,
        "stderr": run.run.stderr,
        "json report": json.dumps(run.report),
        "junit xml": run.run.junit_text(),
    }
    texts.update({f"extra {i}": t for i, t in enumerate(extra_texts)})
    for where, text in texts.items():
        for secret in (SECRET_PATH, SECRET_TOKEN, "s3cretWebhookPath9f2c"):
            assert secret not in text, f"{secret!r} appears in the {where}"

"""The sample service (``python -m sandbox.app``), run as the sandbox runs it: a real process on loopback.

Every configuration the module needs is started at once (in parallel) and shared;
only the ``startup_delay`` test, which depends on the moment of start, gets its own
process. Faults use short values so that the module stays fast.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sandbox.app import Faults, FaultError, parse_faults

REPO = Path(__file__).resolve().parents[2]
TOKEN = "selftest-token-5c1f"
REVISION = "emergence-00042-abc"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAMPLE_", "K_"))}
    env.update(extra)
    return env


@dataclass
class Service:
    """One running sample service process."""

    faults: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    signaled: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, faults: str, *, log_dir: Path, env: dict[str, str] | None = None) -> Service:
        port = _free_port()
        cmd = [sys.executable, "-m", "sandbox.app", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--token", TOKEN, "--revision", REVISION]
        if faults:
            cmd += ["--faults", faults]
        log = log_dir / f"sample-{port}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                cmd, cwd=REPO, env=env or _env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        return cls(faults, port, popen, log)

    def wait_listening(self, timeout: float = 15.0) -> None:
        """Return once the port accepts connections (whatever the routes answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"sample service {self.faults!r} exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"sample service {self.faults!r} did not listen within {timeout} s")

    def terminate(self) -> None:
        """Ask the process to shut down (once: uvicorn treats a second signal as "exit now")."""
        if not self.signaled and self.popen.poll() is None:
            self.popen.terminate()
        self.signaled = True

    def stop(self) -> str:
        """Terminate the process and wait for it; return what it printed."""
        self.terminate()
        if self.popen.poll() is None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        return self.log.read_text(errors="replace")


# Configurations shared by the module, started together.
CONFIGS = [
    "",
    "health_500",
    "health_slow:0.4",
    "stats_500",
    "stats_schema",
    "stats_open",
    "stats_slow:0.4",
    "ws_reject",
    "ws_silent",
    "error_rate:1",
    "latency_ms:300",
    "js_error,console_error,hints_missing,missing_asset",
    "slow_asset:0.5",
]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    log_dir = tmp_path_factory.mktemp("sample")
    running = {faults: Service.start(faults, log_dir=log_dir) for faults in CONFIGS}
    try:
        for service in running.values():
            service.wait_listening()
        yield running
    finally:
        for service in running.values():  # signal all first: each takes a moment to shut down
            service.terminate()
        outputs = {faults: service.stop() for faults, service in running.items()}
    for faults, output in outputs.items():
        assert TOKEN not in output, f"the token appears in the output of {faults!r}"
        assert "Traceback" not in output, f"{faults!r} printed a traceback:\n{output}"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


# --- healthy service ------------------------------------------------------------------------------------------


def test_health_answers_ok_with_revision_header_only(services: dict[str, Service], client: httpx.Client) -> None:
    r = client.get(services[""].url + "/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["x-revision"] == REVISION


def test_stats_require_the_bearer_token(services: dict[str, Service], client: httpx.Client) -> None:
    url = services[""].url + "/api/memory/user/stats"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert isinstance(r.json()["detail"], str)
    r = client.get(url, headers=_auth())
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"preferences", "concepts", "stats"}
    assert all(isinstance(body[k], dict) for k in body)
    assert {"total_memories", "sessions", "last_active"} <= set(body["stats"])


def test_hints_are_public_json(services: dict[str, Service], client: httpx.Client) -> None:
    r = client.get(services[""].url + "/api/hints")
    assert r.status_code == 200
    hints = r.json()
    assert hints and all({"id", "title", "body"} <= set(h) for h in hints)


def test_pages_reference_their_assets_and_assets_are_served(services: dict[str, Service], client: httpx.Client) -> None:
    base = services[""].url
    index = client.get(base + "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<div id="hints-root"' in index.text
    assert 'href="/static/app.css"' in index.text and 'src="/static/hints.js"' in index.text
    assert "missing.css" not in index.text and "data-faults" not in index.text
    memory = client.get(base + "/memory")
    assert memory.status_code == 200
    assert 'href="/static/app.css"' in memory.text and 'src="/static/memory.js"' in memory.text
    assets = {"/static/app.css": "text/css", "/static/hints.js": "javascript", "/static/memory.js": "javascript"}
    for path, kind in assets.items():
        r = client.get(base + path)
        assert r.status_code == 200 and kind in r.headers["content-type"], path
    assert "proactive-hints" in client.get(base + "/static/hints.js").text
    memory_js = client.get(base + "/static/memory.js").text
    assert "memory-login-required" in memory_js and "memory-stats" in memory_js
    assert client.get(base + "/favicon.ico").status_code in (200, 204)


def test_websocket_protocol(services: dict[str, Service]) -> None:
    with connect(services[""].ws + "/ws/sess-1", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "ping", "id": 7}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "id": 7, "session_id": "sess-1"}
        ws.send(json.dumps({"type": "message", "text": "hello"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "ack", "session_id": "sess-1", "text": "hello"}
        ws.send("not json")
        reply = json.loads(ws.recv(timeout=5))
        assert reply["type"] == "error" and reply["detail"]
        ws.send(json.dumps({"type": "ping", "id": 8}))  # still open after an error
        assert json.loads(ws.recv(timeout=5))["id"] == 8
        ws.close(code=1000)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


# --- HTTP faults ----------------------------------------------------------------------------------------------


def test_health_500(services: dict[str, Service], client: httpx.Client) -> None:
    assert client.get(services["health_500"].url + "/health").status_code == 500


def test_health_slow(services: dict[str, Service], client: httpx.Client) -> None:
    started = time.perf_counter()
    r = client.get(services["health_slow:0.4"].url + "/health")
    assert r.status_code == 200 and time.perf_counter() - started >= 0.4


def test_stats_500(services: dict[str, Service], client: httpx.Client) -> None:
    assert client.get(services["stats_500"].url + "/api/memory/user/stats", headers=_auth()).status_code == 500


def test_stats_schema_lacks_concepts(services: dict[str, Service], client: httpx.Client) -> None:
    r = client.get(services["stats_schema"].url + "/api/memory/user/stats", headers=_auth())
    assert r.status_code == 200
    assert "concepts" not in r.json() and "stats" in r.json()


def test_stats_open_answers_without_token(services: dict[str, Service], client: httpx.Client) -> None:
    r = client.get(services["stats_open"].url + "/api/memory/user/stats")
    assert r.status_code == 200 and "stats" in r.json()


def test_stats_slow(services: dict[str, Service], client: httpx.Client) -> None:
    started = time.perf_counter()
    r = client.get(services["stats_slow:0.4"].url + "/api/memory/user/stats", headers=_auth())
    assert r.status_code == 200 and time.perf_counter() - started >= 0.4


def test_error_rate_one_fails_every_route(services: dict[str, Service], client: httpx.Client) -> None:
    base = services["error_rate:1"].url
    for path in ("/health", "/api/hints", "/", "/static/app.css"):
        assert client.get(base + path).status_code == 500, path


def test_error_rate_share_is_reproducible_with_seed(tmp_path: Path, client: httpx.Client) -> None:
    def codes() -> list[int]:
        service = Service.start("error_rate:0.5", log_dir=tmp_path, env=_env(SAMPLE_SEED="7"))
        try:
            service.wait_listening()
            return [client.get(service.url + "/api/hints").status_code for _ in range(30)]
        finally:
            service.stop()

    first = codes()
    assert set(first) == {200, 500}
    assert 5 <= first.count(500) <= 25
    assert codes() == first


def test_latency_ms_delays_every_request(services: dict[str, Service], client: httpx.Client) -> None:
    for path in ("/health", "/api/hints"):
        started = time.perf_counter()
        assert client.get(services["latency_ms:300"].url + path).status_code == 200
        assert time.perf_counter() - started >= 0.3, path


def test_startup_delay_answers_503_then_200(tmp_path: Path, client: httpx.Client) -> None:
    service = Service.start("startup_delay:1", log_dir=tmp_path)
    try:
        service.wait_listening()
        for path in ("/health", "/api/hints"):
            r = client.get(service.url + path)
            assert r.status_code == 503 and r.json() == {"detail": "starting"}, path
        deadline = time.monotonic() + 5
        while (status := client.get(service.url + "/health").status_code) == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200
    finally:
        service.stop()


# --- WebSocket faults -----------------------------------------------------------------------------------------


def test_ws_reject_refuses_the_handshake(services: dict[str, Service]) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(services["ws_reject"].ws + "/ws/sess-2", open_timeout=5)
    assert info.value.response.status_code == 403


def test_ws_silent_accepts_and_never_answers(services: dict[str, Service]) -> None:
    with connect(services["ws_silent"].ws + "/ws/sess-3", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "ping", "id": 1}))
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
        ws.close(code=1000)


# --- frontend faults ------------------------------------------------------------------------------------------


def test_page_faults_reach_the_page(services: dict[str, Service], client: httpx.Client) -> None:
    base = services["js_error,console_error,hints_missing,missing_asset"].url
    page = client.get(base + "/").text
    assert 'data-faults="js_error,console_error,hints_missing"' in page
    assert 'href="/static/missing.css"' in page
    assert client.get(base + "/static/missing.css").status_code == 404
    assert "data-faults" not in client.get(base + "/memory").text


def test_slow_asset_delays_only_hints_js(services: dict[str, Service], client: httpx.Client) -> None:
    base = services["slow_asset:0.5"].url
    started = time.perf_counter()
    assert client.get(base + "/static/app.css").status_code == 200
    assert time.perf_counter() - started < 0.4
    started = time.perf_counter()
    assert client.get(base + "/static/hints.js").status_code == 200
    assert time.perf_counter() - started >= 0.5


# --- the fault list -------------------------------------------------------------------------------------------


def test_parse_faults_defaults_and_values() -> None:
    faults = parse_faults(" health_slow , latency_ms:20,error_rate:0.25,js_error ")
    assert faults == Faults(health_slow=5.0, latency_ms=20.0, error_rate=0.25, js_error=True)
    assert parse_faults("") == Faults()
    assert faults.active() == ["health_slow:5", "error_rate:0.25", "latency_ms:20", "js_error"]


@pytest.mark.parametrize(
    "text", ["bogus", "health_500:1", "error_rate:2", "error_rate", "latency_ms:abc", "stats_slow:-1", "slow_asset:nan"]
)
def test_parse_faults_rejects(text: str) -> None:
    with pytest.raises(FaultError, match=r"unknown fault .*known: health_500"):
        parse_faults(text)


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (["--faults", "health_500,bogus"], {}, "bogus"),
        ([], {"SAMPLE_FAULTS": "error_rate:1.5"}, "error_rate:1.5"),
    ],
    ids=["flag", "env"],
)
def test_unknown_fault_exits_2_with_one_line(args: list[str], env: dict[str, str], shown: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox.app", "--port", str(_free_port()), *args],
        cwd=REPO,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"sandbox.app: unknown fault '{shown}' (")
    assert "known: health_500, health_slow[:S]" in lines[0]
    assert proc.stdout == ""


def test_environment_fallbacks(tmp_path: Path, client: httpx.Client) -> None:
    port = _free_port()
    env = _env(SAMPLE_API_TOKEN="env-token", SAMPLE_REVISION="rev-from-env", SAMPLE_FAULTS="stats_schema")
    log = tmp_path / "env.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "sandbox.app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    service = Service("env", port, popen, log)
    try:
        service.wait_listening()
        url = service.url + "/api/memory/user/stats"
        assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
        r = client.get(url, headers={"Authorization": "Bearer env-token"})
        assert r.status_code == 200 and "concepts" not in r.json()
        assert r.headers["x-revision"] == "rev-from-env"
    finally:
        assert "env-token" not in service.stop()

"""Targets that misbehave: each check fails within its timeout with a message that says what happened."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

HEALTH_ONLY = "[health]\nready_budget = 0\njson = { status = \"ok\" }\n"
ECHO_TOKEN = "selftest-echoed-secret-42"


class HostileServer:
    """An HTTP/1.1 server on loopback whose every answer misbehaves in one way (``mode``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.sock = sock
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, sock=self.sock))
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if self.mode == "hang":
                    await asyncio.sleep(3600)
                writer.write(self._answer(head))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, head: bytes) -> bytes:
        def http(status: str, body: bytes, ctype: str = "text/html", extra: str = "") -> bytes:
            return f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body

        if self.mode == "nonjson":
            return http("200 OK", b"<html><body>maintenance page</body></html>")
        if self.mode == "huge":
            return http("200 OK", b"x" * (10 * 1024 * 1024), "application/json")
        if self.mode == "redirect":
            return http("302 Found", b"", extra="location: /health\r\n")
        if self.mode == "echo":  # reflects the credentials it was sent: a token must still never be printed
            sent = [line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization")]
            return http("500 Internal Server Error", b"you sent: " + b"; ".join(sent), "text/plain")
        raise AssertionError(self.mode)

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def hostile() -> Iterator:
    servers: list[HostileServer] = []

    def start(mode: str) -> HostileServer:
        servers.append(HostileServer(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def health_only(tmp_path):
    path = tmp_path / "health.toml"
    path.write_text(HEALTH_ONLY)
    return str(path)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("nonjson", "the body is not JSON (text/html"),
        ("huge", "answered 200 with a body over 1024 KiB"),
        ("redirect", "answered 302 after"),
        ("hang", "no complete answer within 2 s (timeout"),
    ],
)
def test_hostile_target_fails_with_a_clear_message(hostile, run_suite, health_only, mode, message):
    server = hostile(mode)
    run = run_suite("--revision-url", server.url, f"--checklist={health_only}", "--request-timeout", "2", timeout=60)
    assert run.returncode == 1, run
    assert run.failed() == {"test_health[health]"}, run
    assert message in run.stdout, run
    assert "Traceback" not in run.output, run


def test_redirect_names_where_it_points(hostile, run_suite, health_only):
    run = run_suite("--revision-url", hostile("redirect").url, f"--checklist={health_only}")
    assert "Location: /health (not followed: set follow_redirects = true to follow it)" in run.stdout, run


@pytest.mark.parametrize("url", ["http://127.0.0.1:{closed}", "http://revgate-selftest.invalid"])
def test_unreachable_target_fails_fast_with_cannot_connect(run_suite, url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = url.format(closed=closed)
    run = run_suite("tests_smoke", "--revision-url", url, env={"REVGATE_AUTH_TOKEN": "selftest-unused-token"}, timeout=60)
    assert run.returncode == 1, run
    assert "test_health[health]" in run.failed(), run
    assert f"cannot connect to {url}/health" in run.stdout, run
    assert "WebSocket" in run.stdout and "cannot connect" in run.stdout, run


def test_reflected_token_never_printed(hostile, run_suite, tmp_path):
    checklist = tmp_path / "api.toml"
    checklist.write_text("[[api]]\nid = 'echo'\npath = '/api/echo'\nauth = true\n")
    run = run_suite(
        "--revision-url", hostile("echo").url, f"--checklist={checklist}", env={"REVGATE_AUTH_TOKEN": ECHO_TOKEN}
    )
    assert run.returncode == 1, run
    assert "answered 500" in run.stdout, run
    assert "you sent: Authorization: Bearer ***" in run.stdout, run
    assert ECHO_TOKEN not in run.output, run
    assert ECHO_TOKEN not in run.junit_text()

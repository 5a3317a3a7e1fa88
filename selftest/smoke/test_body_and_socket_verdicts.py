"""What must NOT come back, and answers that are not JSON: ``[[api]]`` ``contains``, ``matches`` (RE2) and
``content_type`` on a plain-text body; ``[[websocket]]`` ``forbid`` (an error frame before or after the
awaited one), a socket checked by its handshake and hold alone, and a binary protocol; HTTP Basic auth,
with every form of the credentials kept out of the output. Tiny real servers on loopback, the gate in a
subprocess."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from websockets.sync.server import serve

USER = "gate-user"
PASSWORD = "p@ss/w%rd+9f31c7e2"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class _Handler(BaseHTTPRequestHandler):
    version = "4.2.1"

    def _send(self, status: int, body: str, kind: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/version":
            return self._send(200, f"tiny {self.server.version}\n", "text/plain; charset=utf-8")  # type: ignore[attr-defined]
        if self.path == "/private":
            if self.headers.get("Authorization") != BASIC:
                return self._send(401, "who are you?", "text/plain", {"WWW-Authenticate": 'Basic realm="tiny"'})
            # a careless app echoing what it was sent, in every form
            echo = f"hello {USER}:{PASSWORD} {quote(PASSWORD)} {self.headers.get('Authorization')}"
            return self._send(200, echo, "text/plain")
        self._send(404, "not found", "text/plain")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_app() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.version = "4.2.1"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def checklist_text(tmp_path) -> Callable[[str], str]:
    def make(text: str) -> str:
        path = tmp_path / f"c{len(list(tmp_path.glob('c*.toml')))}.toml"
        path.write_text(text)
        return str(path)

    return make


PLAIN = """[[api]]
id = "version"
path = "/version"
auth = false
content_type = "text/plain"
contains = "tiny"
matches = '(?m)^tiny 4\\.\\d+\\.\\d+$'
"""


def test_plain_text_api_body_is_checked_by_contains_matches_and_content_type(plain_app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", _url(plain_app), f"--checklist={checklist_text(PLAIN)}")
    assert run.returncode == 0, run
    assert run.passed() == {"test_api[version]"}, run

    plain_app.version = "5.0"  # type: ignore[attr-defined]
    text = PLAIN.replace('content_type = "text/plain"', 'content_type = "application/json"')
    run = run_suite("tests_smoke", "--revision-url", _url(plain_app), f"--checklist={checklist_text(text)}")
    assert run.returncode == 1, run
    assert run.failed() == {"test_api[version]"}, run
    assert "unexpected answer: content type 'text/plain', expected 'application/json'; " in run.stdout, run
    assert "the body does not match '(?m)^tiny 4\\\\.\\\\d+\\\\.\\\\d+$'" in run.stdout, run
    assert "body: 'tiny 5.0\\n'" in run.stdout, run


def test_a_backtracking_pattern_is_a_usage_error(plain_app, run_suite, checklist_text):
    text = PLAIN.replace("matches = '(?m)^tiny 4\\.\\d+\\.\\d+$'", "matches = '(?=tiny)'")
    run = run_suite("tests_smoke", "--revision-url", _url(plain_app), f"--checklist={checklist_text(text)}")
    run.assert_usage_error("[[api]] 'version' key 'matches'", "RE2")


@pytest.fixture
def ws_app() -> Iterator[str]:
    """/kernel: a status, an error frame on 'fail', then 'done'; /late: 'done' then an error frame;
    /quiet: sends nothing, stays open; /drop: closes after 200 ms; /bin: a binary echo behind a 2-byte header."""

    def handler(ws) -> None:  # noqa: ANN001 - websockets' ServerConnection
        path = ws.request.path
        if path == "/quiet":
            for _ in ws:
                pass
            return
        if path == "/drop":
            import time

            time.sleep(0.2)
            ws.close(code=1011)
            return
        for message in ws:
            if path == "/bin":
                ws.send(b"\x0a\x01" + (message if isinstance(message, bytes) else message.encode()))
                continue
            request = json.loads(message)
            ws.send(json.dumps({"type": "status", "state": "busy"}))
            if path == "/late":
                ws.send(json.dumps({"type": "done", "ok": True}))
                ws.send(json.dumps({"type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero"}))
                continue
            if request.get("code") == "fail":
                ws.send(json.dumps({"type": "error", "ename": "NameError", "evalue": "name 'x' is not defined"}))
            ws.send(json.dumps({"type": "done", "ok": True}))

    server = serve(handler, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    server.shutdown()


WS = """[[websocket]]
id = "kernel"
path = "/kernel"
send = { code = "ok" }
expect = { type = "done" }
forbid = ['"type": "error"']

[[websocket]]
id = "open"
path = "/quiet"
hold_ms = 300

[[websocket]]
id = "binary"
path = "/bin"
binary = true
send = "hex:cafe"
expect = "hex:0a01cafe"
forbid = ["hex:dead"]
"""


def test_websocket_forbid_hold_and_binary(ws_app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", ws_app, f"--checklist={checklist_text(WS)}")
    assert run.returncode == 0, run
    assert run.passed() == {"test_websocket[kernel]", "test_websocket[open]", "test_websocket[binary]"}, run

    broken = (
        WS.replace('send = { code = "ok" }', 'send = { code = "fail" }')
        .replace('path = "/quiet"', 'path = "/drop"')
        .replace('send = "hex:cafe"', 'send = "base64:3q0="')  # 0xdead: the echo carries a forbidden pattern
        + '\n[[websocket]]\nid = "late"\npath = "/late"\nsend = { code = "ok" }\nexpect = { type = "done" }\nforbid = [\'"type": "error"\']\n'
        # a frame after the awaited one is read while the socket is held (with no hold, only if it came already)
        + 'hold_ms = 500\n'
    )
    run = run_suite("tests_smoke", "--revision-url", ws_app, f"--checklist={checklist_text(broken)}")
    assert run.returncode == 1, run
    assert run.failed() == {"test_websocket[kernel]", "test_websocket[open]", "test_websocket[binary]", "test_websocket[late]"}, run
    assert f"WebSocket {ws_app.replace('http', 'ws')}/kernel: a frame before the one matching {{'type': 'done'}} matches forbid " in run.stdout, run
    assert "NameError" in run.stdout, run
    assert "/late: a frame after the exchange matches forbid" in run.stdout and "ZeroDivisionError" in run.stdout, run
    assert "/drop: the server closed the connection (code 1011) after " in run.stdout, run
    assert "it must stay open 1000 ms (hold_ms)" not in run.stdout and "it must stay open 300 ms (hold_ms)" in run.stdout, run
    assert "/bin: a frame before the one matching 'hex:0a01cafe' matches forbid 'hex:dead': bytes 0a01dead" in run.stdout, run


def test_websocket_binary_bytes_must_be_hex_or_base64(ws_app, run_suite, checklist_text):
    text = WS.replace('send = "hex:cafe"', 'send = "cafe"')
    run = run_suite("tests_smoke", "--revision-url", ws_app, f"--checklist={checklist_text(text)}")
    run.assert_usage_error("[[websocket]] 'binary'", "hex:")


BASIC_CHECKS = """[defaults]
auth_scheme = "Basic"

[[api]]
id = "private"
path = "/private"
contains = "hello"
"""


def test_basic_auth_from_user_and_password_or_a_token_file_and_every_form_scrubbed(plain_app, run_suite, checklist_text, tmp_path):
    checklist = checklist_text(BASIC_CHECKS)
    run = run_suite("tests_smoke", "--revision-url", _url(plain_app), f"--checklist={checklist}",
                    env={"REVGATE_AUTH_USER": USER, "REVGATE_AUTH_TOKEN": PASSWORD})
    assert run.returncode == 0, run
    assert run.passed() == {"test_api[private]", "test_api_requires_auth[private]"}, run

    token_file = tmp_path / "credentials"
    token_file.write_text(f"{USER}:wrong-{PASSWORD}\n")
    run = run_suite("tests_smoke", "--revision-url", _url(plain_app), f"--checklist={checklist}", f"--auth-token-file={token_file}")
    assert run.returncode == 1, run  # a wrong password: refused, and the message shows none of its forms
    assert run.failed() == {"test_api[private]"}, run
    assert "GET " + _url(plain_app) + "/private (with token): expected 200, answered 401" in run.stdout, run

    # the app echoes the credentials: decoded, URL-encoded and base64; none reaches the output
    failing = checklist_text(BASIC_CHECKS.replace('contains = "hello"', 'contains = "goodbye"'))
    run = run_suite("tests_smoke", "--revision-url", _url(plain_app), f"--checklist={failing}",
                    env={"REVGATE_AUTH_USER": USER, "REVGATE_AUTH_TOKEN": PASSWORD})
    assert run.returncode == 1, run
    assert "the body does not contain 'goodbye'" in run.stdout, run
    seen = run.output + run.junit_text()
    for form in (PASSWORD, f"{USER}:{PASSWORD}", quote(PASSWORD, safe=""), quote(PASSWORD), BASIC.split()[1]):
        assert form not in seen, form
    assert "hello ***" in run.stdout, run

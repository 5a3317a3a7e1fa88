"""The checklist keys real services need, against tiny real servers on loopback: auth in another
header, session cookies that must not authenticate the refusal probes, plain-text health, status
lists and redirects, WebSocket subprotocols and frames before the expected one; and the usage
errors of a short token and of typos in the new keys."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from websockets.sync.server import serve

API_KEY = "selftest-api-key-8d2c71"


class _Handler(BaseHTTPRequestHandler):
    """A token-auth app: X-API-Key or the session cookie it sets; / answers a plain 'ok'."""

    def _send(self, status: int, body: str, kind: str = "application/json", headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/healthz":
            return self._send(200, "ok", "text/plain")
        if self.path == "/old":
            return self._send(302, "", headers={"Location": "/api/items"})
        if self.path.startswith("/api/"):
            by_key = self.headers.get("X-API-Key") == API_KEY
            by_cookie = "session=granted" in (self.headers.get("Cookie") or "")
            if not (by_key or by_cookie):
                return self._send(401, '{"error": "login required"}')
            body = {"items": [{"id": 1, "name": "one", "note": None}], "next": None, "stats": {"total": 1}}
            if self.path == "/api/list":
                body = [{"id": 1}, {"id": 2}]  # type: ignore[assignment]
            return self._send(200, json.dumps(body), headers={"Set-Cookie": "session=granted; Path=/", "X-Served-By": "tiny"})
        self._send(404, '{"error": "not found"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def ws_app() -> Iterator[str]:
    """A WebSocket speaking 'v1.tiny': two status frames, then an echo of each message, then a status frame."""

    def handler(ws) -> None:  # noqa: ANN001 - websockets' ServerConnection
        ws.send(json.dumps({"type": "status", "state": "busy"}))
        ws.send(json.dumps({"type": "status", "state": "idle"}))
        for message in ws:
            ws.send(json.dumps({"type": "status", "state": "busy"}))
            ws.send(json.dumps({"type": "echo", "data": json.loads(message)}))

    server = serve(handler, "127.0.0.1", 0, subprotocols=["v1.tiny"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    server.shutdown()


@pytest.fixture
def checklist_text(tmp_path) -> Callable[[str], str]:
    def make(text: str) -> str:
        path = tmp_path / f"c{len(list(tmp_path.glob('c*.toml')))}.toml"
        path.write_text(text)
        return str(path)

    return make


API = """[defaults]
auth_header = "X-API-Key"
auth_scheme = ""

[health]
path = "/healthz"
contains = "ok"

[[api]]
id = "items"
path = "/api/items"
keys = { "items.0.id" = "integer", "items.0.note" = "string|null", next = "string|null", "stats.total" = "integer" }
equals = { "items.0.name" = "one", "stats.total" = 1 }
min_items = { items = 1 }
response_headers = { content-type = "json", x-served-by = "tiny" }
status = [200, 203]

[[api]]
id = "list"
path = "/api/list"
keys = { "$" = "array", "1.id" = "integer" }
min_items = { "$" = 2 }

[[api]]
id = "moved"
path = "/old"
auth = true
refuse_without_token = false
follow_redirects = true
keys = { items = "array" }
"""


def test_api_key_header_session_cookie_and_new_keys_pass(app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", app, f"--checklist={checklist_text(API)}", env={"REVGATE_AUTH_TOKEN": API_KEY})
    assert run.returncode == 0, run
    # the app set a session cookie on the first answer: the refusal probes did not send it
    assert run.passed() == {"test_health[health]", "test_api[items]", "test_api[list]", "test_api[moved]",
                            "test_api_requires_auth[items]", "test_api_requires_auth[list]"}, run
    assert "test_api_requires_auth[moved]" not in run.outcomes, run


SESSION = """[defaults]
auth_header = "X-API-Key"
auth_scheme = ""

[health]
path = "/api/items"
auth = true
json = { "stats.total" = 1 }

[[api]]
id = "login"
path = "/api/items"
session = true

[[api]]
id = "by-cookie"
path = "/api/items"
auth = false
session = true

[[api]]
id = "no-session"
path = "/api/items"
auth = false
"""


def test_only_session_entries_share_cookies(app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", app, f"--checklist={checklist_text(SESSION)}", env={"REVGATE_AUTH_TOKEN": API_KEY})
    assert run.returncode == 1, run
    # 'by-cookie' rides on the cookie 'login' received; 'no-session' has none, and is refused
    assert {"test_health[health]", "test_api[login]", "test_api[by-cookie]", "test_api_requires_auth[login]"} <= run.passed(), run
    assert run.failed() == {"test_api[no-session]"}, run
    assert "GET " + app + "/api/items (no token): expected 200, answered 401" in run.stdout, run


def test_emptied_or_changed_data_fails_naming_each_path(app, run_suite, checklist_text):
    text = API.replace('min_items = { items = 1 }', 'min_items = { items = 3 }').replace('"stats.total" = 1 }', '"stats.total" = 2 }')
    text = text.replace('x-served-by = "tiny"', 'x-served-by = "other"')
    run = run_suite("tests_smoke", "--revision-url", app, f"--checklist={checklist_text(text)}", env={"REVGATE_AUTH_TOKEN": API_KEY})
    assert run.returncode == 1, run
    assert run.failed() == {"test_api[items]"}, run
    assert "'items' has 1 item, expected at least 3" in run.stdout, run
    assert "'stats.total': want 2, got 1" in run.stdout, run
    assert "response header 'x-served-by': want it to contain 'other', got 'tiny'" in run.stdout, run


def test_health_checks_only_what_it_says(app, run_suite, checklist_text):
    plain = checklist_text('[health]\npath = "/healthz"\n')
    run = run_suite("tests_smoke", "--revision-url", app, f"--checklist={plain}")
    assert run.returncode == 0, run  # a plain "ok" body: no hidden JSON expectation
    ready = checklist_text('[health]\npath = "/healthz"\ncontains = "ready"\n')
    run = run_suite("tests_smoke", "--revision-url", app, f"--checklist={ready}")
    assert run.returncode == 1, run
    assert "the body does not contain 'ready'" in run.stdout, run


WS = """[[websocket]]
id = "tiny"
path = "/"
subprotocols = ["v1.tiny"]
steps = [
  { expect = { type = "status", state = "idle" } },
  { send = { hello = "{session}" }, expect = { type = "echo" } },
]
"""


def test_websocket_waits_for_the_matching_frame_with_a_subprotocol(ws_app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", ws_app, f"--checklist={checklist_text(WS)}")
    assert run.returncode == 0, run
    assert run.passed() == {"test_websocket[tiny]"}, run


def test_websocket_lists_the_frames_it_skipped(ws_app, run_suite, checklist_text):
    text = WS.replace('expect = { type = "echo" }', 'expect = { type = "reply" }').replace("[[websocket]]", "[[websocket]]\ntimeout = 1.0")
    run = run_suite("tests_smoke", "--revision-url", ws_app, f"--checklist={checklist_text(text)}")
    assert run.returncode == 1, run
    assert "no frame matching {'type': 'reply'} within 1 s after sending '{\"hello\": \"revgate-" in run.stdout, run
    assert "skipped 2 frames: " in run.stdout and "'type': want 'reply', got 'echo'" in run.stdout, run


def test_a_subprotocol_the_server_does_not_speak_fails(ws_app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", ws_app, f"--checklist={checklist_text(WS.replace('v1.tiny', 'v2.other'))}")
    assert run.returncode == 1, run
    # this server refuses the handshake (400); one that accepts without a subprotocol fails the check too
    assert f"WebSocket {ws_app.replace('http', 'ws')}/: handshake refused with HTTP 400" in run.stdout, run


def test_a_short_token_is_a_usage_error(app, run_suite, checklist_text):
    run = run_suite("tests_smoke", "--revision-url", app, f"--checklist={checklist_text(API)}", env={"REVGATE_AUTH_TOKEN": "abc123"})
    run.assert_usage_error("REVGATE_AUTH_TOKEN", "6 characters long", "at least 8")
    assert "abc123" not in run.output, run


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[[api]]\nid = "a"\npath = "/x"\nkeys = { next = "string|nul" }\n', ["[[api]] 'a' key 'keys'", "'string|nul' is not a JSON type"]),
        ('[[api]]\nid = "a"\npath = "/x"\nmin_itmes = { rows = 1 }\n', ["[[api]] 'a' key 'min_itmes'", "unknown key"]),
        ('[[api]]\nid = "a"\npath = "/x"\nstatus = [200, 99]\n', ["[[api]] 'a' key 'status'", "99 is not an HTTP status"]),
        ('[[api]]\nid = "a"\npath = "/x"\nheaders = { Authorization = "Bearer x" }\n', ["key 'headers'", "credentials are not written"]),
        ('[[api]]\nid = "a"\npath = "/x"\nequals = { "rows..id" = 1 }\n', ["key 'equals'", "'rows..id' is not a path"]),
        ('[defaults]\nauth_header = "X API Key"\n', ["[defaults] key 'auth_header'", "not an HTTP header name"]),
        ('[health]\njson_subset = { status = "ok" }\n', ["[health] key 'json_subset'", "unknown key"]),
        ('[[websocket]]\nid = "w"\npath = "/ws"\nsend = "x"\n', ["[[websocket]] 'w'", "give expect"]),
        ('[[websocket]]\nid = "w"\npath = "/ws"\nsteps = [{ sned = "x", expect = "y" }]\n', ["[[websocket]] 'w' key 'steps.0.sned'", "unknown key"]),
        ('[[page]]\nid = "p"\npath = "/"\nsettle_ms = -1\n', ["[[page]] 'p' key 'settle_ms'"]),
        ('[[page]]\nid = "p"\npath = "/"\nignore_requests = ["("]\n', ["[[page]] 'p' key 'ignore_requests'", "not a valid regular expression"]),
    ],
)
def test_a_typo_in_a_new_key_is_a_one_line_usage_error(run_suite, checklist_text, text, fragments):
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--checklist={checklist_text(text)}")
    run.assert_usage_error(*fragments)

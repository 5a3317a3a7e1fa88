"""No secret in any output, in any form: a target that echoes the token base64-encoded (as inside
Basic credentials) or URL-encoded gets it shown as *** in the terminal, the JUnit XML and the JSON."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

TOKEN = "do-no-harm-token+/=9x7Q"

CHECKLIST = """
[health]
ready_budget = 1

[[api]]
id = "echo"
path = "/api/echo"
keys = { missing = "object" }
"""


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/health":
            body = b'{"status": "ok"}'
        else:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            body = json.dumps(
                {
                    "basic": base64.b64encode(f"user:{token}".encode()).decode(),
                    "plain64": base64.b64encode(token.encode()).decode(),
                    "urlsafe64": base64.urlsafe_b64encode(f"ab{token}".encode()).decode(),
                    "query": f"/cb?t={quote(token, safe='')}",
                }
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_base64_and_url_encoded_forms_of_the_token_are_scrubbed(run_suite, echo_server, tmp_path):
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(CHECKLIST)
    report = tmp_path / "report.json"

    run = run_suite(
        "tests_smoke", f"--revision-url={echo_server}", f"--checklist={checklist}", f"--report-json={report}",
        "-k", "test_api and not requires_auth", env={"REVGATE_AUTH_TOKEN": TOKEN}, timeout=60,
    )

    assert run.returncode == 1, run
    assert "unexpected JSON shape" in run.output  # the body excerpt is shown, scrubbed
    everything = run.output + run.junit_text() + report.read_text()
    forbidden = [
        TOKEN,
        quote(TOKEN, safe=""),
        base64.b64encode(TOKEN.encode()).decode().rstrip("="),
        base64.b64encode(f"user:{TOKEN}".encode()).decode()[8:-4],
        base64.urlsafe_b64encode(f"ab{TOKEN}".encode()).decode()[4:-4],
    ]
    for form in forbidden:
        assert form not in everything, form
    assert "***" in run.output


class _Page(BaseHTTPRequestHandler):
    """A page that shows the visitor's API key in its text when ``/?show`` (as a settings page would)."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/health"):
            body, kind = b'{"status": "ok"}', "application/json"
        else:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            shown = f"<p>Your API key: {token}</p>" if "show" in self.path else "<p>Settings</p>"
            body, kind = f"<html><body><h1>Account</h1>{shown}</body></html>".encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


PAGE_CHECKLIST = """
[health]
ready_budget = 1

[[page]]
id = "{id}"
path = "{path}"
selectors = ["#never-there"]
auth = true
"""


@pytest.mark.parametrize("path, shows_token", [("/account?show", True), ("/account", False)], ids=["shows-token", "plain"])
def test_a_page_showing_the_token_gets_no_screenshot_and_says_so(run_suite, tmp_path, path, shows_token):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        checklist = tmp_path / "checklist.toml"
        checklist.write_text(PAGE_CHECKLIST.format(id="account", path=path))
        out = tmp_path / "out"
        run = run_suite(
            "tests_frontend", f"--revision-url=http://127.0.0.1:{server.server_address[1]}", f"--checklist={checklist}",
            f"--output={out}", env={"REVGATE_AUTH_TOKEN": TOKEN}, timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()

    assert run.returncode == 1, run  # the selector is missing either way: the page fails
    shots = list(out.rglob("screenshot.png"))
    if shows_token:
        assert shots == [], shots
        assert "no screenshot: the page's visible text contains the API token" in run.stdout, run
    else:
        assert len(shots) == 1, run
        assert "screenshot and console log in" in run.stdout, run
    assert TOKEN not in run.output + run.junit_text()
    for artifact in out.rglob("*"):
        if artifact.is_file():
            assert TOKEN.encode() not in artifact.read_bytes(), artifact

"""``revgate init --from-url`` writes a starter that passes on the app it probed: against a single-page app
whose catch-all page answers every unknown path with 200, a framework health path, Basic auth named by
``WWW-Authenticate``, and an endpoint that refuses even the right credentials (a read-only mode). What it
could not verify or saw fail is left as a comment saying why; a second ``init`` says how to replace the file."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

USER = "reader"
PASSWORD = "s3cret-pass-word-71"
INDEX = "<!doctype html><html><head><meta charset='utf-8'><title>spa</title></head><body><main>App</main></body></html>"


class _Spa(BaseHTTPRequestHandler):
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
        path = self.path.split("?")[0]
        good = self.headers.get("Authorization") == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if path == "/_stcore/health":
            return self._send(200, "ok", "text/plain; charset=utf-8")
        if path == "/api/version":
            return self._send(200, "1.4.2", "text/plain")
        if path == "/api/v1":
            if good:
                return self._send(200, '{"items": [], "total": 0}', "application/json")
            return self._send(401, '{"detail": "login required"}', "application/json", {"WWW-Authenticate": 'Basic realm="spa"'})
        if path == "/api/status":  # read-only mode: refused whatever the credentials
            return self._send(401, '{"detail": "disabled in read-only mode"}', "application/json")
        if path.startswith("/api/"):
            return self._send(404, '{"detail": "not found"}', "application/json")
        return self._send(200, INDEX, "text/html; charset=utf-8")  # the SPA's catch-all: /health too

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def spa() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Spa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _revgate(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "revgate", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=240,
        stdin=subprocess.DEVNULL,
    )


def test_init_writes_only_what_passes_and_says_why_for_the_rest(spa, tmp_path):
    made = _revgate(tmp_path, "init", "--from-url", spa)
    assert made.returncode == 0, made.stdout + made.stderr
    text = (tmp_path / "checklist.toml").read_text()
    data = tomllib.loads(text)
    assert data["defaults"]["auth_scheme"] == "Basic", text  # from WWW-Authenticate
    assert data["health"] == {"path": "/_stcore/health", "status": 200, "contains": "ok"}, text
    assert "# /health answered 200 as an unknown path does (a catch-all page): not a health endpoint" in text, text
    assert [a["path"] for a in data["api"]] == ["/api/version"], text  # no catch-all page taken for an API
    assert data["api"][0]["content_type"] == "text/plain", text
    assert [p["path"] for p in data["page"]] == ["/"], text
    for path in ("/api/status", "/api/v1"):
        assert f'# path = "{path}"' in text, text
    assert "# dropped: not tried, it needs the API token: set REVGATE_AUTH_TOKEN and run revgate init --from-url again" in text
    assert "2 dropped (api /api/status (auth), api /api/v1 (auth)): the file says why" in made.stdout, made.stdout
    gate = _revgate(tmp_path, "--revision-url", spa)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "revgate verdict: PASS" in gate.stdout, gate.stdout

    again = _revgate(tmp_path, "init", "--from-url", spa)
    assert again.returncode == 4, again
    assert again.stderr.strip() == (
        f"revgate init: checklist.toml already exists and is kept; edit it, replace it "
        f"(revgate init --from-url {spa} --force), or write another file (--output FILE)"
    ), again.stderr
    assert (tmp_path / "checklist.toml").read_text() == text

    creds = {"REVGATE_AUTH_USER": USER, "REVGATE_AUTH_TOKEN": PASSWORD}
    forced = _revgate(tmp_path, "init", "--from-url", spa, "--force", env=creds)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    text = (tmp_path / "checklist.toml").read_text()
    data = tomllib.loads(text)
    assert [a["path"] for a in data["api"]] == ["/api/v1", "/api/version"], text  # tried with the credentials: it holds
    assert data["api"][0]["auth"] is True
    # the read-only endpoint refuses even the right credentials: dropped, with what it answered
    assert (
        f"# dropped: it failed on {spa}: GET {spa}/api/status (with token): expected 200, answered 401"
    ) in text, text
    assert PASSWORD not in text and base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in text
    gate = _revgate(tmp_path, "--revision-url", spa, env=creds)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "revgate verdict: PASS" in gate.stdout, gate.stdout

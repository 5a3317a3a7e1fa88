"""``revgate init --from-url`` reads the service's OpenAPI document, and works after a plain ``revgate init``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "shop", "version": "1"},
    "paths": {
        "/api/items": {"get": {"responses": {"200": {"description": "the items"}}}},
        "/api/items/{item_id}": {"get": {"parameters": [{"name": "item_id", "in": "path", "required": True}]}},
        "/api/search": {"get": {"parameters": [{"name": "q", "in": "query", "required": True}]}},
        "/api/orders": {"post": {"responses": {"201": {"description": "created"}}}},
        "/api/broken": {"get": {"responses": {"200": {"description": "documented, but it fails"}}}},
    },
}


class _Shop(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        answers = {
            "/health": (200, {"status": "ok"}),
            "/openapi.json": (200, OPENAPI),
            "/api/items": (200, {"items": [], "total": 0}),
            "/api/broken": (500, {"detail": "internal error"}),
        }
        status, body = answers.get(self.path, (404, {"detail": "Not Found"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def shop() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _revgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "revgate", *args], cwd=cwd, capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_init_from_url_after_init_writes_the_openapi_get_operations_that_pass(shop: str, tmp_path: Path) -> None:
    plain = _revgate("init", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    probed = _revgate("init", "--from-url", shop, cwd=tmp_path)
    assert probed.returncode == 0, probed.stdout + probed.stderr  # the untouched starter is replaced
    text = (tmp_path / "checklist.toml").read_text()
    assert 'path = "/api/items"' in text and "OpenAPI document" in text, text
    assert "/api/items/{item_id}" not in text and 'path = "/api/search"' not in text, "operations that need a parameter"
    assert "/api/orders" not in text, "only GET operations"
    broken = [line for line in text.splitlines() if "/api/broken" in line]
    assert broken and all(line.lstrip().startswith("#") for line in broken), "a documented operation that fails is dropped"
    checked = _revgate("check", "checklist.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr

    (tmp_path / "checklist.toml").write_text(text + "\n# edited by the team\n")
    again = _revgate("init", "--from-url", shop, cwd=tmp_path)
    assert again.returncode == 4 and "already exists and is kept" in again.stderr, "an edited checklist is never replaced"
    assert (tmp_path / "checklist.toml").read_text().endswith("# edited by the team\n")

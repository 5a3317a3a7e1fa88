"""What ``revgate`` leaves in the team's directory it runs from: its reports where it was asked (their
folders created, as ``--output`` creates its own), and nothing else: no ``.pytest_cache``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ok_app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _revgate(team: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    env["XDG_CACHE_HOME"] = str(team.parent / "user-cache")
    return subprocess.run(
        [sys.executable, "-m", "revgate", *args], cwd=team, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_reports_get_their_folders_and_no_pytest_cache_is_left_behind(ok_app, tmp_path):
    team = tmp_path / "team-repo"
    team.mkdir()
    (team / "checklist.toml").write_text('[health]\npath = "/health"\ncontains = "ok"\n')
    run = _revgate(team, "--revision-url", ok_app, "--report-json", "reports/gate/run.json", "--junitxml", "reports/junit/gate.xml")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((team / "reports" / "gate" / "run.json").read_text())
    assert report, report
    assert (team / "reports" / "junit" / "gate.xml").is_file()
    assert sorted(p.name for p in team.iterdir()) == ["checklist.toml", "reports"], list(team.iterdir())

    # --lf needs pytest's cache: it lives in the user's cache folder, not in the team's directory
    run = _revgate(team, "--revision-url", ok_app, "--lf")
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (team / ".pytest_cache").exists()
    assert any((tmp_path / "user-cache" / "revgate" / "pytest").iterdir())

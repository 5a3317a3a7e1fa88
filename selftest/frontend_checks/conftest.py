"""Fixtures for the frontend selftests: the sample service, a hand-made revision with a third-party script, checklists.

Everything is real: the gate runs in a subprocess with a real Chromium, against
real servers on loopback. ``revision_with_third_party`` is a tiny HTTP server
standing in for a revision whose page loads a script from another origin (a
second tiny server that answers 500, or a port that refuses); both record the
headers they receive, so a test can check where the token went.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = {"test_page[home-chromium]", "test_page[memory-chromium]"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """pytest-playwright's ``--output`` for one run (the shared default would collide with other runs)."""
    return tmp_path / "test-results"


def _artifacts(output: Path) -> dict[str, set[str]]:
    if not output.exists():
        return {}
    return {d.name: {f.name for f in d.iterdir()} for d in output.iterdir() if d.is_dir()}


@pytest.fixture
def artifacts() -> Callable[[Path], dict[str, set[str]]]:
    """``artifacts(output_dir)``: test folder -> names of the files in it."""
    return _artifacts


@pytest.fixture
def page_checklist(tmp_path: Path) -> Callable[..., Path]:
    """A checklist file holding only the given TOML text (``[[page]]`` entries)."""

    def make(text: str, *, name: str = "pages.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


@pytest.fixture
def shipped_pages(tmp_path: Path) -> Callable[..., Path]:
    """The shipped checklist's ``[[page]]`` entries alone, with some lines replaced."""

    def make(replacements: dict[str, str] | None = None) -> Path:
        text = (REPO / "checklist.toml").read_text()
        start = text.index("[[page]]")
        rest = text[start:]
        blocks = rest.split("\n\n")
        pages = "\n\n".join(b for b in blocks if b.startswith("[[page]]"))
        for old, new in (replacements or {}).items():
            assert old in pages, f"{old!r} is not in the shipped [[page]] entries"
            pages = pages.replace(old, new)
        path = tmp_path / "shipped-pages.toml"
        path.write_text(pages + "\n")
        return path

    return make


@pytest.fixture
def pages_without_time_budgets(shipped_pages: Callable[..., Path]) -> Path:
    """The shipped pages without their time budgets: a fault's message alone, however loaded the machine is."""
    path = shipped_pages()
    lines = path.read_text().splitlines()
    path.write_text("\n".join(l for l in lines if not l.startswith(("load_ms", "dom_content_loaded_ms"))) + "\n")
    return path


@dataclass
class Recorder:
    """The requests a tiny server received: (path, headers with lower-case names)."""

    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def authorizations(self) -> list[str]:
        return [h["authorization"] for _, h in self.seen if "authorization" in h]

    def paths(self) -> list[str]:
        return [p for p, _ in self.seen]


def _serve(routes: Callable[[str], tuple[int, str, str, dict[str, str]]], recorder: Recorder) -> tuple[str, ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, kind, body, headers = routes(self.path)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


@dataclass
class ThirdPartySite:
    url: str
    """The revision's URL (serves ``/``)."""
    third_party_url: str
    revision: Recorder
    third_party: Recorder


@pytest.fixture
def revision_with_third_party() -> Iterator[Callable[..., ThirdPartySite]]:
    """``revision_with_third_party(refuse=False)``: a revision whose page loads ``lib.js`` from another origin.

    The other origin answers 500 to everything (or, with ``refuse=True``, is a
    closed port). The page's icon, ``/icon.png``, is missing (404). The page also loads ``/out.png``, which the revision redirects
    to the other origin: the redirected request must not carry the token either.
    """
    servers: list[ThreadingHTTPServer] = []

    def make(*, refuse: bool = False) -> ThirdPartySite:
        third = Recorder()
        if refuse:
            other = f"http://127.0.0.1:{_free_port()}"
        else:
            other, server = _serve(lambda path: (500, "text/plain", "third-party outage", {}), third)
            servers.append(server)
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>variant</title>
<link rel="icon" href="/icon.png">
<script src="/app.js" defer></script>
<script src="{other}/lib.js" defer></script>
</head><body><main id="main">Variant page</main><img id="pixel" src="/out.png" alt=""></body></html>
"""
        app_js = "document.getElementById('main').dataset.ready = 'true';\n"

        def routes(path: str) -> tuple[int, str, str, dict[str, str]]:
            if path == "/":
                return 200, "text/html; charset=utf-8", page, {}
            if path == "/app.js":
                return 200, "text/javascript", app_js, {}
            if path == "/out.png":
                return 302, "text/plain", "", {"Location": f"{other}/landing.png"}
            return 404, "text/plain", "not found", {}

        revision = Recorder()
        url, server = _serve(routes, revision)
        servers.append(server)
        return ThirdPartySite(url, other, revision, third)

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class Site:
    url: str
    recorder: Recorder


@pytest.fixture
def tiny_site() -> Iterator[Callable[..., Site]]:
    """``tiny_site({"/": (200, "text/html", "<html>...", {})})``: a revision serving exactly these paths
    (anything else answers 404); ``{ORIGIN}`` in a body or header becomes the site's own origin."""
    servers: list[ThreadingHTTPServer] = []

    def make(pages: dict[str, tuple[int, str, str, dict[str, str]]]) -> Site:
        recorder = Recorder()
        origin: list[str] = []

        def routes(path: str) -> tuple[int, str, str, dict[str, str]]:
            status, kind, body, headers = pages.get(path.split("?")[0], (404, "text/plain", "not found", {}))
            fill = lambda text: text.replace("{ORIGIN}", origin[0])  # noqa: E731
            return status, kind, fill(body), {k: fill(v) for k, v in headers.items()}

        url, server = _serve(routes, recorder)
        origin.append(url)
        servers.append(server)
        return Site(url, recorder)

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()

"""Pages that look fine to a naive check: an error box or toast on a page answering 200 (``absent``,
``absent_text``), assets a single-page app answered with its index page (HTML for a stylesheet, a
script, a font), a font that does not decode, console warnings when the checklist counts them, a
stylesheet refused 404 behind the token route, and a page whose never-ending request (an EventSource)
must not keep it from being judged at ``settle_ms``. One real Chromium run for the healthy pages,
one for the broken ones."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TOKEN = "selftest-page-token-3e9b1d"
FONT_CSS = "@font-face { font-family: Brand; src: url('/static/brand.woff2') format('woff2'); } body { font-family: Brand; }"
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body><main id="app">Dashboard</main>{body}</body></html>"""

LATE_ERROR_BOX = """<script>
setTimeout(() => {
  const box = document.createElement('div');
  box.className = 'error-box';
  box.textContent = 'Traceback: ZeroDivisionError: division by zero';
  document.body.appendChild(box);
  console.log('cell failed');
}, 150);
</script><div class="error-box" style="display:none">hidden since load</div>"""
TOAST = """<script>
setTimeout(() => { const t = document.createElement('div'); t.setAttribute('role', 'alert');
  t.textContent = 'An internal error occurred'; document.body.appendChild(t); }, 100);
</script>"""
STREAM = """<script>
const events = new EventSource('/events');
events.onmessage = () => {};
fetch('/poll');  // a long poll that never answers
</script>"""


def _routes() -> dict[str, tuple[int, str, bytes]]:
    html = "text/html; charset=utf-8"
    fallback = PAGE.format(title="index", head="", body="").encode()
    return {
        "/healthy": (200, html, PAGE.format(
            title="healthy",
            head='<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script>',
            body='<div class="error-box" style="display:none">no error</div><script>console.warn("deprecated API");</script>' + STREAM,
        ).encode()),
        "/static/app.css": (200, "text/css", b"main { color: #123; }"),
        "/static/app.js": (200, "text/javascript", b"document.getElementById('app').dataset.ready = 'true';"),
        "/errbox": (200, html, PAGE.format(title="errbox", head="", body=LATE_ERROR_BOX).encode()),
        "/toast": (200, html, PAGE.format(title="toast", head="", body=TOAST).encode()),
        # the SPA fallback: every missing asset answers 200 with the index page
        "/spa": (200, html, PAGE.format(
            title="spa",
            head='<link rel="stylesheet" href="/static/gone.css"><link rel="stylesheet" href="/static/font.css">'
                 '<script src="/static/gone.js"></script>',
            body="",
        ).encode()),
        "/static/gone.css": (200, html, fallback),
        "/static/gone.js": (200, html, fallback),
        "/static/font.css": (200, "text/css", FONT_CSS.encode()),
        "/static/brand.woff2": (200, html, fallback),
        "/badfont": (200, html, PAGE.format(title="badfont", head='<link rel="stylesheet" href="/static/bad-font.css">', body="").encode()),
        "/static/bad-font.css": (200, "text/css", FONT_CSS.replace("brand.woff2", "broken.woff2").encode()),
        "/static/broken.woff2": (200, "font/woff2", b"this is no font at all, only bytes" * 8),
        "/allowed": (200, html, PAGE.format(title="allowed", head='<link rel="stylesheet" href="/static/gone.css">', body="").encode()),
        "/private": (200, html, PAGE.format(title="private", head='<link rel="stylesheet" href="/static/private.css">', body="").encode()),
    }


class _Site(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}
    stop = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        if path in ("/events", "/poll"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if path == "/events" else "application/json")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if path == "/events":
                self.wfile.write(b"data: hello\n\n")
                self.wfile.flush()
            self.stop.wait(60)  # never ends while the page is watched
            return
        status, kind, body = self.routes.get(path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    _Site.routes = _routes()
    _Site.stop.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Site.stop.set()
    server.shutdown()
    server.server_close()


HEALTHY = """[[page]]
id = "healthy"
path = "/healthy"
selectors = ["#app[data-ready='true']"]
absent = [".error-box"]
absent_text = ["An internal error occurred"]
settle_ms = 300
timeout = 20

[[page]]
id = "allowed"
path = "/allowed"
allow_mime_mismatch = ["/static/gone\\\\.css$"]
settle_ms = 0
"""

BROKEN = """[[page]]
id = "errbox"
path = "/errbox"
absent = [".error-box"]
settle_ms = 2000

[[page]]
id = "toast"
path = "/toast"
absent_text = ["An internal error occurred"]
settle_ms = 2000

[[page]]
id = "spa"
path = "/spa"

[[page]]
id = "badfont"
path = "/badfont"

[[page]]
id = "warnings"
path = "/healthy"
console_levels = ["error", "warning"]
settle_ms = 0

[[page]]
id = "private"
path = "/private"
auth = true

[[page]]
id = "own-timeout"
path = "/private"
selectors = ["#never-shown"]
timeout = 1
"""


def _properties(junit: Path, name: str) -> dict[str, str]:
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.get("name") == name:
            return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return {}


def _seconds(junit: Path, name: str) -> float:
    return next(float(c.get("time", "0")) for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == name)


def test_healthy_pages_pass_and_a_never_ending_request_is_not_waited_for(site, run_suite, page_checklist, output_dir):
    run = run_suite("tests_frontend", "--revision-url", site, f"--checklist={page_checklist(HEALTHY)}", f"--output={output_dir}")
    assert run.returncode == 0, run
    assert run.passed() == {"test_page[healthy-chromium]", "test_page[allowed-chromium]"}, run
    # the EventSource and the long poll never end: the page was judged at settle_ms, not at its 20 s timeout
    assert _seconds(run.junit_path, "test_page[healthy-chromium]") < 8, run
    still_open = _properties(run.junit_path, "test_page[healthy-chromium]").get("revgate_still_open", "")
    assert f"GET {site}/events (eventsource), open " in still_open, still_open
    assert f"GET {site}/poll (fetch), open " in still_open, still_open


def test_what_must_not_happen_fails_the_page_naming_it(site, run_suite, page_checklist, output_dir):
    run = run_suite(
        "tests_frontend", "--revision-url", site, f"--checklist={page_checklist(BROKEN)}", f"--output={output_dir}",
        env={"REVGATE_AUTH_TOKEN": TOKEN},
    )
    assert run.returncode == 1, run
    assert run.failed() == {f"test_page[{p}-chromium]" for p in ("errbox", "toast", "spa", "badfont", "warnings", "private", "own-timeout")}, run
    out = run.stdout
    assert f"GET {site}/errbox (no token): 1 problem" in out, run
    assert "  - absent '.error-box' is visible (" in out and "'Traceback: ZeroDivisionError: division by zero'" in out, run
    assert "hidden since load" not in out, run
    assert "  - absent_text 'An internal error occurred' is shown (" in out, run
    # three assets answered with the index page: one line naming each, and what was asked
    assert (
        f"  - 3 assets came back as text/html, not what was asked: {site}/static/gone.css (stylesheet), "
        f"{site}/static/gone.js (script), {site}/static/brand.woff2 (font)"
    ) in out, run
    assert "MIME type" not in out, run  # Chromium's own line for the refused stylesheet is not listed twice
    assert f"  - font {site}/static/broken.woff2 failed to decode" in out, run
    assert "  - console warning: deprecated API" in out, run
    assert f"GET {site}/private (with token): 1 problem" in out, run
    assert f"  - request GET {site}/static/private.css (stylesheet): HTTP 404" in out, run
    assert "  - selector '#never-shown': nothing visible matches it within 1 s" in out, run  # the page's own timeout
    assert TOKEN not in run.output, run


def test_one_asset_served_as_html_names_what_was_asked_and_allow_mime_mismatch_accepts_it(site, run_suite, page_checklist, output_dir):
    text = HEALTHY.replace('allow_mime_mismatch = ["/static/gone\\\\.css$"]', 'allow_mime_mismatch = ["/static/other\\\\.css$"]')
    run = run_suite("tests_frontend", "--revision-url", site, f"--checklist={page_checklist(text)}", f"--output={output_dir}")
    assert run.returncode == 1, run
    assert run.failed() == {"test_page[allowed-chromium]"}, run
    assert (
        f"  - request GET {site}/static/gone.css: a stylesheet was asked, and 200 text/html came back "
        "(an app's page instead of a missing file?)"
    ) in run.stdout, run


def test_an_absent_selector_the_browser_cannot_parse_is_a_usage_error(site, run_suite, page_checklist, output_dir):
    text = '[[page]]\nid = "bad"\npath = "/healthy"\nabsent = ["div[[["]\n'
    run = run_suite("tests_frontend", "--revision-url", site, f"--checklist={page_checklist(text)}", f"--output={output_dir}")
    run.assert_usage_error("div[[[")

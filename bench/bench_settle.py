"""Benchmark: a page that keeps requests open forever is judged at ``settle_ms``, not at its timeout.

A tiny server on loopback serves a page that opens an EventSource, starts a long
poll and a Web Worker whose telemetry fetch never completes; none of them ever
ends. Each ``settle_ms`` below is visited ``--rounds`` times with the gate's own
page visit (:func:`revgate.pages_visit.visit_page`, the same Chromium as a run),
with a 30 s page timeout. Measured per visit: the settle period (from the
selectors shown to the judgement) minus ``settle_ms`` (the overshoot), and the
whole visit. Before the settle that ends, every such page took its whole timeout.

    .venv/bin/python bench/bench_settle.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from revgate.checklist import Page  # noqa: E402
from revgate.pages_visit import visit_page  # noqa: E402

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>never ends</title></head>
<body><main id="app">loading</main><script>
new EventSource('/events');
fetch('/poll');
new Worker('/worker.js');
document.getElementById('app').dataset.ready = 'true';
</script></body></html>"""
WORKER = b"fetch('/telemetry', { method: 'POST', body: 'x' });"
SETTLES = (0, 250, 500, 1000, 2000)
TIMEOUT = 30.0
STOP = threading.Event()


class _Site(BaseHTTPRequestHandler):
    def _hold(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"data: hi\n\n")
        self.wfile.flush()
        STOP.wait(120)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path in ("/events", "/poll"):
            return self._hold()
        body, kind = (WORKER, "text/javascript") if self.path == "/worker.js" else (PAGE, "text/html")
        if self.path not in ("/", "/worker.js"):
            body, kind = b"", "text/plain"
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._hold()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from revgate.browser import choose_chromium

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    overshoot: dict[int, list[float]] = {s: [] for s in SETTLES}
    visits: dict[int, list[float]] = {s: [] for s in SETTLES}
    open_counts: list[int] = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        choice = choose_chromium(playwright_executable=pw.chromium.executable_path)
        browser = pw.chromium.launch(**choice.apply({}))
        for round_ in range(args.rounds):
            for settle in SETTLES:  # interleaved: a slow moment of the machine hits every line alike
                check = Page(id="never-ends", path="/", selectors=["#app[data-ready='true']"], settle_ms=settle, timeout=TIMEOUT)
                context = browser.new_context()
                started = time.monotonic()
                visit = visit_page(
                    context, check, base_url=url, timeout=TIMEOUT, auth_label="no token",
                    evidence_dir=Path(tmp), scrub=lambda text: text,
                )
                visits[settle].append(time.monotonic() - started)
                context.close()
                assert not visit.problems, visit.message()
                overshoot[settle].append(visit.settle_s * 1000 - settle)
                if overshoot[settle][-1] > 50:
                    print(f"  round {round_ + 1}, settle_ms {settle}: {overshoot[settle][-1]:.1f} ms over", flush=True)
                open_counts.append(len(visit.still_open))
        browser.close()
    STOP.set()
    server.shutdown()

    print(f"{args.rounds} rounds; requests still open at the judgement: {min(open_counts)} to {max(open_counts)} "
          f"(page timeout {TIMEOUT:g} s)")
    print(f"{'settle_ms':>9}  {'overshoot median':>16}  {'overshoot max':>13}  {'visit median':>12}  {'visit max':>9}")
    for settle in SETTLES:
        print(f"{settle:>9}  {statistics.median(overshoot[settle]):>13.1f} ms  {max(overshoot[settle]):>10.1f} ms  "
              f"{statistics.median(visits[settle]):>10.2f} s  {max(visits[settle]):>7.2f} s")
    every = sorted(x for v in overshoot.values() for x in v)
    print(f"overshoot over every visit: median {statistics.median(every):.1f} ms, 95th percentile "
          f"{every[int(0.95 * (len(every) - 1))]:.1f} ms")
    worst = max(every)
    print(f"worst overshoot {worst:.1f} ms: " + ("within settle_ms + 100 ms" if worst <= 100 else "OVER settle_ms + 100 ms"))


if __name__ == "__main__":
    main()

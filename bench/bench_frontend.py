"""Benchmark of the frontend section (the ``[[page]]`` checks) against baselines, in the same run.

Against the sample service on loopback, each measured ``--rounds`` times,
interleaved so that a slow moment of the machine hits every line alike:

- ``frontend``: ``pytest tests_frontend`` as a user runs it (the shipped
  checklist's pages, browser started once), wall time of the whole process;
- ``frontend -n 2``: the same under pytest-xdist (one browser per worker);
- ``bare playwright``: a script that starts Playwright, launches the same
  Chromium and loads the same pages (``goto`` until ``load``), no checks: the
  floor the frontend section cannot beat;
- ``smoke``: ``pytest tests_smoke`` (health, API, WebSocket, latency probe),
  the section every run already pays for.

Per-page times come from the JUnit report of the ``frontend`` runs (the first
page includes the browser start).

    .venv/bin/python bench/bench_frontend.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.standalone import start_sample_service  # noqa: E402

TOKEN = "bench-frontend-token"
PAGES = ("/", "/memory")
AIM_SECONDS = 3.0

BARE_SCRIPT = """
import re, sys, time
from playwright.sync_api import sync_playwright
from revgate.browser import choose_chromium
url, token = sys.argv[1], sys.argv[2]
with sync_playwright() as pw:
    choice = choose_chromium(playwright_executable=pw.chromium.executable_path)
    browser = pw.chromium.launch(**choice.apply({}))
    for path, auth in (("/", False), ("/memory", True)):
        context = browser.new_context()
        if auth:
            context.set_extra_http_headers({"Authorization": "Bearer " + token})
        page = context.new_page()
        page.goto(url + path, wait_until="load")
        context.close()
    browser.close()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    env["REVGATE_AUTH_TOKEN"] = TOKEN
    return env


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, proc


def pytest_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--revision-url", url, *args]


def page_times(junit: Path) -> dict[str, float]:
    """Test name -> seconds, and '(session)' -> the pytest session's time (no interpreter start, no imports)."""
    root = ET.parse(junit).getroot()
    times = {case.get("name", ""): float(case.get("time", 0)) for case in root.iter("testcase")}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    times["(session)"] = float(suite.get("time", 0)) if suite is not None else 0.0
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="Times each line is measured (interleaved).")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    url, service = start_sample_service(token=TOKEN)
    lines: dict[str, list[float]] = {"frontend": [], "frontend -n 2": [], "bare playwright": [], "smoke": []}
    per_page: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-frontend-") as tmp:
            out = Path(tmp)
            for round_ in range(args.rounds):
                junit = out / f"junit-{round_}.xml"
                runs = {
                    "frontend": pytest_cmd(url, "tests_frontend", f"--output={out / 'results'}", f"--junitxml={junit}"),
                    "frontend -n 2": pytest_cmd(url, "tests_frontend", "-n", "2", f"--output={out / 'results-n2'}"),
                    "bare playwright": [sys.executable, "-c", BARE_SCRIPT, url, TOKEN],
                    "smoke": pytest_cmd(url, "tests_smoke"),
                }
                for label, cmd in runs.items():
                    seconds, proc = timed(cmd)
                    if proc.returncode != 0:
                        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                        print(f"bench_frontend: {label} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
                        return 1
                    lines[label].append(seconds)
                for name, seconds in page_times(junit).items():
                    per_page.setdefault(name, []).append(seconds)
    finally:
        service.terminate()
        service.wait(timeout=10)

    print(f"frontend section, default pages {', '.join(PAGES)}, {args.rounds} rounds, loopback; wall time of each process (s)")
    print(f"{'':34} {'median':>8} {'min':>8} {'max':>8}")
    for label, values in lines.items():
        print(f"{label:34} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    floor = statistics.median(lines["bare playwright"])
    ours = statistics.median(lines["frontend"])
    print(f"{'frontend - bare playwright':34} {ours - floor:8.2f}")
    print("from the JUnit report of the 'frontend' runs (the first page includes the browser start):")
    for name, values in per_page.items():
        print(f"  {name:32} {statistics.median(values):8.2f}")
    session = statistics.median(per_page.get("(session)", [0.0]))
    verdict = "within" if session < AIM_SECONDS else "OVER"
    print(
        f"aim: both default pages in under {AIM_SECONDS:g} s (pytest session, browser start included): "
        f"{verdict} ({session:.2f} s median; {ours:.2f} s with interpreter start and imports)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

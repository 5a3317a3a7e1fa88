"""Benchmark: the logs section's wall time, against the smoke section, and its wait for late entries.

    python bench/bench_logs.py [--runs N]

Against the local Cloud Run (started here), a service with a tagged canary.
Each figure is the median of N fresh ``pytest`` processes, as CI runs them:

- ``tests_logs`` (the shipped checklist's two ``[[logs]]`` entries) with log
  entries visible at once: wall time and the wait it reported for the probe's
  request log;
- ``tests_smoke`` against the same canary URL, in the same run: the baseline;
- once per run, with a 5 s visibility delay in the local Cloud Logging: the
  wait reported, which should be the delay and a poll's margin (polls are at
  least a second apart: Cloud Logging's read quota is per minute).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.control import Sandbox  # noqa: E402

WAITED = re.compile(r"Cloud Logging shows the probe request's log of \S+ after ([0-9.]+) s")


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, proc.stdout, proc.returncode


def _logs_run(url: str, service: str, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, waited s, exit code)."""
    wall, out, code = _run(["tests_logs", f"--revision-url={url}", f"--service={service}", "--rollback=off"], env)
    found = WAITED.search(out)
    if found is None:
        raise SystemExit(f"bench: no logs wait line in the output:\n{out[-3000:]}")
    return wall, float(found.group(1)), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home, Sandbox.up(Path(home) / "cloud-run", seed=3, ready_timeout=20) as sb:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
        env.update(sb.env)
        service = "bench"
        sb.deploy(service)
        sb.deploy(service, tag="canary", no_traffic=True)
        url = sb.tag_url(service, "canary")

        logs_runs = [_logs_run(url, service, env) for _ in range(args.runs)]
        smoke_runs = [
            _run(["tests_smoke", f"--revision-url={url}", f"--service={service}", "--rollback=off"], env)[0]
            for _ in range(args.runs)
        ]
        sb.set_logs_delay(5)
        delayed = [_logs_run(url, service, env) for _ in range(args.runs)]
        sb.set_logs_delay(0)

    wall = statistics.median(r[0] for r in logs_runs)
    waited = statistics.median(r[1] for r in logs_runs)
    smoke = statistics.median(smoke_runs)
    d_wall = statistics.median(r[0] for r in delayed)
    d_waited = statistics.median(r[1] for r in delayed)
    codes = sorted({r[2] for r in logs_runs + delayed})
    print(f"runs: {args.runs} (medians); logs section exit codes {codes}")
    print(f"tests_logs (2 checks, entries visible at once): {wall:.2f} s wall, {waited:.2f} s waiting for the probe's log")
    print(f"tests_smoke (5 checks, same URL, baseline): {smoke:.2f} s wall")
    print(f"logs section / smoke section: {wall / smoke:.2f}")
    print(f"with a 5 s visibility delay: {d_wall:.2f} s wall, {d_waited:.2f} s waiting ({d_waited - 5:.2f} s past the delay)")


if __name__ == "__main__":
    main()

"""Benchmark: the smoke checklist's time to verdict, and the suite's start-up cost.

    python bench/bench_smoke.py [--runs N]

Against the sample service on loopback (started here), each figure is the
median wall time of N runs of a fresh ``pytest`` process, as CI runs it:

- time to verdict of the shipped checklist's smoke section, without xdist and with ``-n 2``;
- start-up: ``pytest --collect-only``, against ``python -c "import httpx"``
  measured in the same run (the floor of any Python HTTP check);
- the same smoke verdict from a directory outside the checkout, as a team runs
  it: ``revgate --sections smoke``, and ``pytest --revision-url`` there (the
  plugin re-executes it as ``revgate``: one more interpreter start).

Figures are ratios against that baseline so that they compare across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox.standalone import start_sample_service

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def _median_seconds(cmd: list[str], runs: int, *, expect: int = 0, cwd: Path = REPO) -> float:
    env = {**os.environ, "REVGATE_AUTH_TOKEN": TOKEN}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode != expect:
            raise SystemExit(f"bench: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    url, proc = start_sample_service(token=TOKEN)
    try:
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--revision-url", url, "tests_smoke"]
        baseline = _median_seconds([sys.executable, "-c", "import httpx"], args.runs)
        collect = _median_seconds([*pytest, "--collect-only"], args.runs)
        serial = _median_seconds(pytest, args.runs)
        parallel = _median_seconds([*pytest, "-n", "2"], args.runs)
        with tempfile.TemporaryDirectory() as elsewhere:
            outside = ["-q", "-p", "no:cacheprovider", "--revision-url", url, f"--checklist={REPO / 'checklist.toml'}",
                       "--sections", "smoke"]
            revgate = _median_seconds([sys.executable, "-m", "revgate", *outside], args.runs, cwd=Path(elsewhere))
            redirected = _median_seconds([sys.executable, "-m", "pytest", *outside], args.runs, cwd=Path(elsewhere))
    finally:
        proc.terminate()
        proc.wait()
    print(f"smoke checklist against the sample service on loopback, median of {args.runs} runs")
    print(f"{'measure':<44} {'seconds':>8} {'x baseline':>11}")
    for name, value in [
        ('baseline: python -c "import httpx"', baseline),
        ("start-up: pytest --collect-only", collect),
        ("time to verdict, -n 0", serial),
        ("time to verdict, -n 2", parallel),
        ("elsewhere: revgate --sections smoke", revgate),
        ("elsewhere: pytest --revision-url (re-exec)", redirected),
    ]:
        print(f"{name:<44} {value:>8.3f} {value / baseline:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

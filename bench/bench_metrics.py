"""Benchmark: the metric section's Cloud Monitoring calls and wall time, against the smoke section.

    python bench/bench_metrics.py [--runs N]

Against the local Cloud Run (started here): a service whose previous revision
serves and whose canary has a tag, both with recorded traffic. Each figure is
the median of N fresh ``pytest`` processes, as CI runs them:

- ``tests_metrics`` (shipped checklist: 6 limits + 2 baseline comparisons) with
  the data already visible: wall time, the wait it reported, wall time minus
  the wait, and the ListTimeSeries calls it made;
- ``tests_smoke`` against the same canary URL, in the same run: the baseline;
- the section's four queries alone, in process (no pytest start-up);
- once, with a 6 s visibility delay on fresh traffic: the number of polls and
  calls while waiting (one call per poll), and the wait (the rest of the 60 s
  sample period the traffic fell in, plus the 6 s).

The call counts come from the suite's own summary line (every
``list_time_series`` call and every further page is counted).
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

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.control import Sandbox  # noqa: E402

SUMMARY = re.compile(r"visible after waiting ([0-9.]+) s .*?; (\d+) ListTimeSeries calls")
POLL = re.compile(r"waiting for Cloud Monitoring: \d+ of \d+ requests")


def _send(url: str, count: int) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            client.get(url + "/health")


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, proc.stdout, proc.returncode


def _metrics_run(url: str, service: str, env: dict[str, str], *extra: str) -> tuple[float, float, int, int, int]:
    """(wall s, waited s, ListTimeSeries calls, progress polls, exit code)."""
    wall, out, code = _run(
        ["tests_metrics", f"--revision-url={url}", f"--service={service}", "--rollback=off", *extra], env
    )
    found = SUMMARY.search(out)
    if found is None:
        raise SystemExit(f"bench: no metric summary line in the output:\n{out[-3000:]}")
    return wall, float(found.group(1)), int(found.group(2)), len(POLL.findall(out)), code


def _queries_only(sb: Sandbox, service: str, *, runs: int) -> float:
    """Median milliseconds of the section's reads alone (request_count + 3 distributions), in process."""
    os.environ.update(sb.env)
    from revgate.google_clients import metric_client
    from revgate.metrics_query import (
        CPU_UTILIZATIONS,
        MEMORY_UTILIZATIONS,
        REQUEST_LATENCIES,
        Queries,
        Scope,
        Window,
    )

    status = sb.traffic(service)
    under_test = next(t["revision"] for t in status if t["tag"] == "canary")
    previous = next(t["revision"] for t in status if t["percent"] == 100)
    queries = Queries(metric_client(), Scope(project=sb.project, region=sb.region, service=service,
                                             revisions=(under_test,), baseline=previous))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        window = Window.ending_now(600)
        queries.request_counts(window)
        for metric in (REQUEST_LATENCIES, MEMORY_UTILIZATIONS, CPU_UTILIZATIONS):
            queries.distributions(metric, window)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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
        _send(sb.service_url(service), 60)
        _send(url, 60)
        time.sleep(11)  # two sampler ticks: CPU and memory utilization recorded for both revisions
        time.sleep(60 - time.time() % 60 + 1)  # ... in 60 s sample periods that have ended: visible

        queries_ms = _queries_only(sb, service, runs=max(args.runs, 5))
        metric_runs = [_metrics_run(url, service, env, "--metrics-timeout=10") for _ in range(args.runs)]
        smoke_runs = [
            _run(["tests_smoke", f"--revision-url={url}", f"--service={service}", "--rollback=off"], env)[0]
            for _ in range(args.runs)
        ]

        delayed_service = "bench-delayed"
        sb.deploy(delayed_service)
        delayed_url = sb.service_url(delayed_service)
        sb.set_metrics_delay(6)
        _send(delayed_url, 30)
        # the wait: up to one 60 s sample period, then the 6 s delay
        delayed = _metrics_run(delayed_url, delayed_service, env, "--metrics-timeout=80", "-k", "not baseline")
        sb.set_metrics_delay(0)

    wall = statistics.median(r[0] for r in metric_runs)
    waited = statistics.median(r[1] for r in metric_runs)
    calls = statistics.median(r[2] for r in metric_runs)
    smoke = statistics.median(smoke_runs)
    codes = sorted({r[4] for r in metric_runs})
    print(f"runs: {args.runs} (medians); metric section exit codes {codes}")
    print(f"tests_metrics (8 checks, data visible): {wall:.2f} s wall, {waited:.2f} s waiting, "
          f"{wall - waited:.2f} s without the wait, {calls:.0f} ListTimeSeries calls "
          f"(1 request_count poll + 3 distributions: latencies, memory, CPU)")
    print(f"the section's 4 queries alone (in process, gRPC on loopback): {queries_ms:.1f} ms")
    print(f"tests_smoke (5 checks, same URL, baseline): {smoke:.2f} s wall")
    print(f"metric section without the wait / smoke section: {(wall - waited) / smoke:.2f}")
    d_wall, d_waited, d_calls, d_polls, _ = delayed
    print(f"delayed data (6 s visibility delay, 6 checks): waited {d_waited:.1f} s, {d_polls} progress polls, "
          f"{d_calls} ListTimeSeries calls in all ({d_calls - 3} request_count polls + 3 distributions), "
          f"{d_wall:.2f} s wall")


if __name__ == "__main__":
    main()

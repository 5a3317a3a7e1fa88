"""Benchmark: a rollout's soak against an interval-based analysis loop, in the same run.

On the sandbox (Cloud Monitoring sampling every 60 s, as Cloud Run does, and no visibility delay,
which favours the loop: real data shows up to 180 s later), a canary at 10 % breaks mid-soak
(``error_rate:1@after=S``: every answer is a 500 from S seconds after it started) while users send
it requests through the service URL. Two watchers, each on a fresh service:

- revgate: ``revgate --rollout 10,100 --soak 10m`` (probe interval 10 s, the default): the request
  checks fail at the first probe after the break and the rollback starts at once;
- interval loop: the way Flagger (``analysis.interval: 1m``) and cloud-run-release-manager (every
  60 s) judge a canary: every 60 s from the promotion, read the canary's error rate over the last
  minute from Cloud Monitoring (the real monitoring client) and roll back (the traffic update a
  ``gcloud run services update-traffic`` makes) when it is over 5 % (a failure threshold of 1, the
  most favourable to the loop).

The break comes at a different phase of the 60 s interval in each run (``--after`` plus
60 s x run / runs). Each time runs from the users' first 500 from the canary to the first read (every 50 ms, through
the real run_v2 client) that shows the canary at 0 %.

A healthy canary's rollout (``--rollout 10,100 --soak 20s``, no metrics) gives the overhead of
watching: the command's wall time against the soaks it holds (40 s), in the same run.

    .venv/bin/python bench/bench_rollout.py [--runs 3] [--after 25]
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.control import Sandbox  # noqa: E402
from sandbox.users import Users  # noqa: E402

CHECKLIST = """
[health]
ready_budget = 5

[[api]]
id = "hints"
path = "/api/hints"
auth = false
"""
INTERVAL = 60.0


def _restored(sb: Sandbox, service: str, canary: str, deadline: float) -> float | None:
    while time.time() < deadline:
        if not any(e["revision"] == canary and e["percent"] for e in sb.traffic(service)):
            return time.time()
        time.sleep(0.05)
    return None


def _deploy(sb: Sandbox, name: str, faults: list[str]) -> tuple[str, str, str]:
    stable = sb.deploy(name)
    canary = sb.deploy(name, tag="canary", no_traffic=True, faults=faults)
    return stable, canary, sb.tag_url(name, "canary")


def _env(sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    env.update(sb.env)
    return env


def revgate_trial(sb: Sandbox, name: str, after: float, checklist: Path, workdir: Path) -> float:
    stable, canary, url = _deploy(sb, name, [f"error_rate:1@after={after:g}s"])
    users = Users(sb.service_url(name), rate=20, limit=20 * 900, seconds=900).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "revgate", f"--revision-url={url}", f"--service={name}", f"--checklist={checklist}",
         "--sections=smoke", "--rollout=10,100", "--soak=10m"],
        cwd=workdir, env=_env(sb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    restored = _restored(sb, name, canary, time.time() + after + 300) if _wait_for(sb, name, canary) else None
    proc.wait(timeout=120)
    users.stop()
    first_error = users.first_error_of(canary)
    if restored is None or first_error is None:
        raise SystemExit(f"revgate trial on {name}: the canary was not rolled back")
    return restored - first_error


def _wait_for(sb: Sandbox, name: str, canary: str, timeout: float = 120) -> bool:
    """Until the canary serves 10 % (the promotion happened)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(e["revision"] == canary and e["percent"] == 10 for e in sb.traffic(name)):
            return True
        time.sleep(0.1)
    return False


def interval_trial(sb: Sandbox, name: str, after: float) -> float:
    from google.cloud import monitoring_v3

    from revgate.google_clients import metric_client

    stable, canary, url = _deploy(sb, name, [f"error_rate:1@after={after:g}s"])
    sb.update_traffic(name, to_revisions={stable: 90, canary: 10})
    users = Users(sb.service_url(name), rate=20, limit=20 * 900, seconds=900).start()
    os.environ.update(sb.env)  # the monitoring client's endpoint: the sandbox's
    client = metric_client()
    promoted = time.time()
    tick = 0
    while True:
        tick += 1
        time.sleep(max(0.0, promoted + tick * INTERVAL - time.time()))
        now = int(time.time())
        series = client.list_time_series(request={
            "name": f"projects/{sb.project}",
            "filter": f'metric.type="run.googleapis.com/request_count" AND resource.labels.revision_name="{canary}"',
            "interval": monitoring_v3.TimeInterval(start_time={"seconds": now - int(INTERVAL)}, end_time={"seconds": now}),
            "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        })
        total = errors = 0
        for ts in series:
            n = sum(int(p.value.int64_value) for p in ts.points)
            total += n
            errors += n if ts.metric.labels.get("response_code_class") == "5xx" else 0
        if total and errors / total > 0.05:
            sb.update_traffic(name, to_revisions={stable: 100})
            break
        if tick > 10:
            raise SystemExit(f"interval trial on {name}: no failure seen in {tick} intervals")
    restored = _restored(sb, name, canary, time.time() + 60)
    users.stop()
    first_error = users.first_error_of(canary)
    if restored is None or first_error is None:
        raise SystemExit(f"interval trial on {name}: the canary was not rolled back")
    return restored - first_error


def healthy_trial(sb: Sandbox, name: str, checklist: Path, workdir: Path, soak: float) -> float:
    stable, canary, url = _deploy(sb, name, [])
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "revgate", f"--revision-url={url}", f"--service={name}", f"--checklist={checklist}",
         "--sections=smoke", "--rollout=10,100", f"--soak={soak:g}s", "--probe-interval=10s"],
        cwd=workdir, env=_env(sb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
    )
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"healthy rollout on {name} exited {proc.returncode}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--after", type=float, default=25.0, help="seconds after its start at which the canary breaks")
    parser.add_argument("--soak", type=float, default=20.0, help="seconds per step of the healthy rollout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, workdir = Path(tmp) / "sandbox", Path(tmp) / "repo"
        workdir.mkdir()
        checklist = workdir / "checklist.toml"
        checklist.write_text(CHECKLIST)
        with Sandbox.up(home, seed=7, ready_timeout=15) as sb:
            ours, theirs, healthy = [], [], []
            for i in range(args.runs):
                # the break's phase against the 60 s interval (and the 10 s probes) differs from run to run
                after = args.after + i * INTERVAL / args.runs
                ours.append(revgate_trial(sb, f"bench-ro-rg-{i}", after, checklist, workdir))
                theirs.append(interval_trial(sb, f"bench-ro-iv-{i}", after))
                healthy.append(healthy_trial(sb, f"bench-ro-ok-{i}", checklist, workdir, args.soak))
                print(f"run {i + 1}: revgate {ours[-1]:.2f} s, interval loop {theirs[-1]:.2f} s, "
                      f"healthy rollout {healthy[-1]:.1f} s for {2 * args.soak:g} s of soak", flush=True)
    a, b, h = statistics.median(ours), statistics.median(theirs), statistics.median(healthy)
    print()
    print("| from the canary's first 500 to its traffic restored (median) | seconds | ratio |")
    print("|---|---|---|")
    print(f"| interval loop, 60 s (Flagger's, release-manager's default) | {b:.2f} | 1.00 |")
    print(f"| revgate --rollout, probe every 10 s | {a:.2f} | {a / b:.3f} |")
    print()
    print(f"healthy rollout 10,100 with {args.soak:g} s soaks: {h:.1f} s in all for {2 * args.soak:g} s of soak "
          f"(x{h / (2 * args.soak):.2f}; {h - 2 * args.soak:.1f} s of checklist, promotions and waits)")


if __name__ == "__main__":
    main()

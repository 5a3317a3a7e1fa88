"""Benchmark: fail-fast rollback against rolling back at session end.

On the sandbox, a canary at 10 % whose stats API answers 500 (the first check
fails at once) and whose every answer is slowed by ``latency_ms`` (the latency
probe that follows takes about ``--slow-seconds``). The gate runs twice, each
time on a fresh service:

- fail-fast: the gate as shipped (``--rollback on-failure``): the rollback
  starts when the controller receives the first failed report;
- session end: the gate with ``--rollback off``, then the same rollback code
  (:func:`rollback.apply.apply_rollback`, planned from a snapshot taken before
  the run) once the run is over, as a plugin rolling back in
  ``pytest_sessionfinish`` would.

Each time is measured from the first failure (``first_failure_at`` in the JSON
rollback record) to the moment a poller in this process, reading the service
through the real run_v2 client every 50 ms, first sees the canary at 0 %.

    .venv/bin/python bench/bench_rollback.py [--slow-seconds 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.control import Sandbox  # noqa: E402

CHECKLIST = """
[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = {{ stats = "object" }}

[[latency]]
id = "slow-probe"
paths = ["/health"]
auth = false
requests = {requests}
p99_ms = 5000
"""

LATENCY_MS = 100


class Poller(threading.Thread):
    """Reads the service's traffic every 50 ms; records when ``revision`` first serves 0 %."""

    def __init__(self, sb: Sandbox, service: str, revision: str) -> None:
        super().__init__(daemon=True)
        self.sb, self.service, self.revision = sb, service, revision
        self.restored_at: dt.datetime | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            traffic = self.sb.traffic(self.service)
            if not any(t["revision"] == self.revision and t["percent"] for t in traffic):
                self.restored_at = dt.datetime.now(dt.timezone.utc)
                return
            time.sleep(0.05)


def deploy_canary(sb: Sandbox, service: str) -> tuple[str, str, str]:
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_500", f"latency_ms:{LATENCY_MS}"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    return stable, candidate, sb.tag_url(service, "canary")


def run_gate(sb: Sandbox, service: str, url: str, work: Path, mode: str) -> tuple[dict, float]:
    record = work / f"{service}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    env.update(sb.env)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests_smoke", f"--revision-url={url}",
         f"--service={service}", f"--checklist={work / 'checklist.toml'}", f"--rollback={mode}",
         f"--rollback-report={record}"],
        cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
    )
    if proc.returncode != 1 or not record.exists():
        raise SystemExit(f"unexpected gate result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(record.read_text()), time.monotonic() - started


def snapshot(sb: Sandbox, service: str, candidate: str):
    """The Deployment and service resource the plugin would have taken before the run."""
    os.environ.update(sb.env)
    from revgate.rollback import cloudrun
    from revgate.rollback.deployment import Deployment
    from revgate.google_clients import revisions_client, services_client

    services, revisions = services_client(), revisions_client()
    name = sb.service_name(service)
    svc = cloudrun.get_service(services, name)
    deployment = Deployment(
        project=sb.project, region=sb.region, service=service, service_name=name,
        revisions_under_test=(candidate,), previous_revision=None, traffic_before=cloudrun.traffic_of(svc),
        etag=svc.etag, revisions=tuple(cloudrun.list_revisions(revisions, name)),
    )
    return deployment, svc, services, revisions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow-seconds", type=float, default=30.0, help="How long the checks after the failure take.")
    args = parser.parse_args()
    requests = max(1, int(args.slow_seconds * 1000 / LATENCY_MS))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "checklist.toml").write_text(CHECKLIST.format(requests=requests))
        sb = Sandbox.up(work / "sandbox", seed=3, ready_timeout=15)
        try:
            # fail-fast: the gate as shipped
            _, candidate, url = deploy_canary(sb, "bench-fast")
            poller = Poller(sb, "bench-fast", candidate)
            poller.start()
            record, fast_run = run_gate(sb, "bench-fast", url, work, "on-failure")
            poller.join(5)
            first = dt.datetime.fromisoformat(record["timings"]["first_failure_at"])
            assert record["status"] == "done", record
            fast = (poller.restored_at - first).total_seconds()

            # session end: same rollback code, after the run
            from revgate.rollback.apply import apply_rollback

            _, candidate, url = deploy_canary(sb, "bench-end")
            deployment, svc, services, revisions = snapshot(sb, "bench-end", candidate)
            poller = Poller(sb, "bench-end", candidate)
            poller.start()
            record, end_run = run_gate(sb, "bench-end", url, work, "off")
            outcome = apply_rollback(deployment, svc, services=services, revisions_api=revisions, dry_run=False)
            poller.join(5)
            assert outcome.status == "done", outcome
            first = dt.datetime.fromisoformat(record["timings"]["first_failure_at"])
            end = (poller.restored_at - first).total_seconds()
        finally:
            sb.down()
    print(f"checks after the first failure: latency probe, {requests} requests at +{LATENCY_MS} ms")
    print(f"fail-fast   : first failure -> traffic restored {fast:8.3f} s  (run took {fast_run:.1f} s)")
    print(f"session end : first failure -> traffic restored {end:8.3f} s  (run took {end_run:.1f} s)")
    print(f"ratio session end / fail-fast: {end / fast:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

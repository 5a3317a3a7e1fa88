"""The demo: revgate catches a bad canary on the local Cloud Run and restores the traffic.

    python -m sandbox.demo [--home DIR] [--keep]

1. starts the sandbox and deploys Emergence's sample service: a healthy
   revision (tag ``stable``) serving 100 %, and gates it (it passes);
2. deploys a faulty revision (its stats API lost a required key) with the tag
   ``canary`` and gives it 10 % of the traffic, as a canary step would;
3. gates the canary through its tag URL: it fails, and the rollback gives the
   traffic back to the healthy revision;
4. shows the traffic before and after, read through the Cloud Run Admin API.

It is the same ``pytest`` command a user runs after ``gcloud run deploy``,
pointed at the sandbox through ``CLOUD_RUN_API_ENDPOINT`` and friends.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sandbox import lifecycle
from sandbox.control import Sandbox

SERVICE = "emergence"
REPO = Path(__file__).resolve().parent.parent


def _traffic_table(sandbox: Sandbox) -> str:
    rows = sandbox.traffic(SERVICE)
    lines = [f"    {'REVISION':<18} {'TRAFFIC':>7}  TAG"]
    for row in rows:
        lines.append(f"    {row['revision']:<18} {row['percent']:>6}%  {row['tag'] or '-'}")
    return "\n".join(lines)


def _gate(sandbox: Sandbox, url: str, title: str) -> int:
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        "--revision-url", url,
        "--service", SERVICE, "--region", sandbox.region, "--project", sandbox.project,
    ]  # fmt: skip
    shown = " ".join(["pytest", *cmd[5:]])
    print(f"\n=== {title}\n$ {shown}", flush=True)
    env = {**os.environ, **sandbox.env}
    started = time.monotonic()
    code = subprocess.call(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    verdicts = {0: "PASS: the revision may take traffic", 1: "FAIL: the gate stops the rollout"}
    verdict = verdicts.get(code, f"ERROR (exit {code}): the gate could not judge")
    print(f"--> {verdict} ({time.monotonic() - started:.1f} s)", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".sandbox" / "demo", help="sandbox state folder")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running at the end")
    args = parser.parse_args(argv)

    if args.home.exists():  # a previous demo's state (and daemon, if it was kept running)
        lifecycle.stop(args.home)
        shutil.rmtree(args.home)
    started = time.monotonic()
    sandbox = Sandbox.up(args.home)
    try:
        stable = sandbox.deploy(SERVICE, tag="stable")
        print(f"Local Cloud Run up: service {SERVICE} at {sandbox.service_url(SERVICE)}")
        print(f"  {stable}: healthy, serving 100 %, tag URL {sandbox.tag_url(SERVICE, 'stable')}")
        good = _gate(sandbox, sandbox.tag_url(SERVICE, "stable"), f"Gate the healthy revision {stable}")

        canary = sandbox.deploy(SERVICE, tag="canary", no_traffic=True, faults=["stats_schema"])
        sandbox.update_traffic(SERVICE, to_revisions={stable: 90, canary: 10})
        print(f"\nDeployed {canary}: faulty (its stats API lost the 'concepts' key), tag URL {sandbox.tag_url(SERVICE, 'canary')}")
        print(f"Traffic before (canary step at 10 %):\n{_traffic_table(sandbox)}")
        bad = _gate(sandbox, sandbox.tag_url(SERVICE, "canary"), f"Gate the canary {canary}")

        print(f"\nTraffic after:\n{_traffic_table(sandbox)}")
        print(f"\nDemo done in {time.monotonic() - started:.1f} s.")
        if args.keep:
            print(f"The sandbox keeps running: python -m sandbox --home {args.home} status | down")
        return 0 if (good == 0 and bad != 0) else 1
    finally:
        if not args.keep:
            sandbox.down()


if __name__ == "__main__":
    sys.exit(main())

"""The demo: revgate catches bad canaries on the local Cloud Run, restores the traffic and tells the team.

    python -m sandbox.demo [--home DIR] [--keep]

1. starts the sandbox and deploys Emergence's sample service: a healthy
   revision (tag ``stable``) serving 100 %, and gates it (it passes);
2. deploys a faulty revision (its stats API lost a required key) with the tag
   ``canary`` and gives it 10 % of the traffic, as a canary step would;
3. gates the canary through its tag URL: it fails, and the rollback gives the
   traffic back to the healthy revision;
4. does the same with a revision whose answers are all correct but which logs
   an ERROR for every request: the shipped checklist's ``[[logs]]`` check
   fails it in Cloud Logging, and it is rolled back too;
5. rolls out a good revision with ``--rollout 10,100 --soak 10s`` while users
   send requests: each step is watched (probes every 2 s, Cloud Monitoring's
   error rate and latency at each sample) and it reaches 100 %;
6. rolls out a canary that answers 500 from 12 s after its start: it passes
   the checklist, breaks mid-soak at 10 %, and is rolled back within a probe
   interval of its first failing answer;
7. shows the traffic before and after, read through the Cloud Run Admin API,
   and the notifications a webhook received (``REVGATE_NOTIFY``: a JSON
   receiver on loopback here, Slack or Google Chat in a team's CI).

The rollouts run on a second sandbox whose Cloud Monitoring samples every 2 s
(``up --sample-period 2``) instead of Cloud Run's 60 s, so that a soak waiting
for "the sample covering its end" takes seconds, not minutes.

It is the same ``pytest`` command a user runs after ``gcloud run deploy``,
pointed at the sandbox through ``CLOUD_RUN_API_ENDPOINT`` and friends.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox import lifecycle
from sandbox.control import Sandbox
from sandbox.users import Users

SERVICE = "emergence"
REPO = Path(__file__).resolve().parent.parent


def _traffic_table(sandbox: Sandbox) -> str:
    rows = sandbox.traffic(SERVICE)
    lines = [f"    {'REVISION':<18} {'TRAFFIC':>7}  TAG"]
    for row in rows:
        lines.append(f"    {row['revision']:<18} {row['percent']:>6}%  {row['tag'] or '-'}")
    return "\n".join(lines)


class Receiver:
    """A webhook on loopback that keeps the JSON notifications it is sent."""

    def __init__(self) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    received.append(json.loads(body))
                except ValueError:
                    received.append({"event": "?", "text": body.decode(errors="replace")})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/revgate-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def show(self) -> None:
        """Print what arrived since the last call, one block per message."""
        for message in self.received:
            lines = str(message.get("text", "")).splitlines() or ["(empty)"]
            print(f"  notification received ({message.get('event')}): {lines[0]}")
            for line in lines[1:]:
                print(f"      {line}")
        self.received.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _gate(sandbox: Sandbox, url: str, title: str, receiver: Receiver) -> int:
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        "--revision-url", url,
        "--service", SERVICE, "--region", sandbox.region, "--project", sandbox.project,
    ]  # fmt: skip
    shown = " ".join(["pytest", *cmd[5:]])
    print(f"\n=== {title}\n$ REVGATE_NOTIFY=$WEBHOOK {shown}", flush=True)
    env = {**os.environ, **sandbox.env, "REVGATE_NOTIFY": receiver.url}
    started = time.monotonic()
    code = subprocess.call(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    verdicts = {
        0: "PASS: the revision may take traffic",
        1: "FAIL: the gate stops the rollout",
        6: "NOT VERIFIED: the gate could not check; traffic unchanged",
    }
    verdict = verdicts.get(code, f"ERROR (exit {code}): the gate could not judge")
    print(f"--> {verdict} ({time.monotonic() - started:.1f} s)", flush=True)
    receiver.show()
    return code


ROLLOUT_CHECKLIST = """
[health]
ready_budget = 10

[[api]]
id = "hints"
path = "/api/hints"
auth = false

[[websocket]]
id = "session"
path = "/ws/{session}"
send = { type = "ping", id = 1 }
expect = { type = "pong", id = 1 }

[metrics]
window = 240
min_requests = 20
max_error_rate = 0.05
p99_latency_ms = 2000
"""


def _rollout(sandbox: Sandbox, url: str, title: str, receiver: Receiver, checklist: Path) -> int:
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests_smoke", "tests_metrics",
        "--revision-url", url, "--service", SERVICE, "--region", sandbox.region, "--project", sandbox.project,
        f"--checklist={checklist}", "--rollout", "10,100", "--soak", "10s", "--probe-interval", "2s",
    ]  # fmt: skip
    shown = " ".join(["pytest", *cmd[5:]])
    print(f"\n=== {title}\n$ REVGATE_NOTIFY=$WEBHOOK {shown}", flush=True)
    env = {**os.environ, **sandbox.env, "REVGATE_NOTIFY": receiver.url}
    users = Users(sandbox.service_url(SERVICE), rate=25, limit=25 * 300).start()
    started = time.monotonic()
    try:
        code = subprocess.call(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    finally:
        users.stop()
    verdicts = {0: "PASS: carried to 100 %, watched all the way", 1: "FAIL: rolled back mid-rollout"}
    print(f"--> {verdicts.get(code, f'exit {code}')} ({time.monotonic() - started:.1f} s)", flush=True)
    receiver.show()
    return code


def _rollouts(home: Path, receiver: Receiver) -> tuple[int, int]:
    """A good revision carried to 100 %, then a canary breaking mid-soak, on a sandbox sampling every 2 s."""
    home = home.with_name(home.name + "-rollouts")
    if home.exists():
        lifecycle.stop(home)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    checklist = home / "rollout-checklist.toml"
    checklist.write_text(ROLLOUT_CHECKLIST)
    sandbox = Sandbox.up(home / "sandbox", sample_period=2)
    try:
        stable = sandbox.deploy(SERVICE)
        good = sandbox.deploy(SERVICE, tag="next", no_traffic=True)
        print(f"\nA second local Cloud Run, sampling Cloud Monitoring every 2 s: {stable} serves 100 %, {good} is tagged next")
        ok = _rollout(sandbox, sandbox.tag_url(SERVICE, "next"), f"Roll out {good} with users on the service", receiver, checklist)
        print(f"\nTraffic after:\n{_traffic_table(sandbox)}")
        breaking = sandbox.deploy(SERVICE, tag="breaking", no_traffic=True, faults=["error_rate:1@after=12s"])
        print(f"\nDeployed {breaking}: healthy for 12 s, then every answer is a 500 (it breaks under traffic)")
        bad = _rollout(sandbox, sandbox.tag_url(SERVICE, "breaking"), f"Roll out {breaking}", receiver, checklist)
        print(f"\nTraffic after:\n{_traffic_table(sandbox)}")
        return ok, bad
    finally:
        sandbox.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".sandbox" / "demo", help="sandbox state folder")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running at the end")
    args = parser.parse_args(argv)

    if args.home.exists():  # a previous demo's state (and daemon, if it was kept running)
        lifecycle.stop(args.home)
        shutil.rmtree(args.home)
    started = time.monotonic()
    receiver = Receiver()
    sandbox = Sandbox.up(args.home)
    try:
        stable = sandbox.deploy(SERVICE, tag="stable")
        print(f"Local Cloud Run up: service {SERVICE} at {sandbox.service_url(SERVICE)}")
        print(f"  {stable}: healthy, serving 100 %, tag URL {sandbox.tag_url(SERVICE, 'stable')}")
        print(f"  WEBHOOK: a JSON receiver at {receiver.url} (a Slack or Google Chat webhook in CI)")
        good = _gate(sandbox, sandbox.tag_url(SERVICE, "stable"), f"Gate the healthy revision {stable}", receiver)

        canary = sandbox.deploy(SERVICE, tag="canary", no_traffic=True, faults=["stats_schema"])
        sandbox.update_traffic(SERVICE, to_revisions={stable: 90, canary: 10})
        print(f"\nDeployed {canary}: faulty (its stats API lost the 'concepts' key), tag URL {sandbox.tag_url(SERVICE, 'canary')}")
        print(f"Traffic before (canary step at 10 %):\n{_traffic_table(sandbox)}")
        bad = _gate(sandbox, sandbox.tag_url(SERVICE, "canary"), f"Gate the canary {canary}", receiver)
        print(f"\nTraffic after:\n{_traffic_table(sandbox)}")

        noisy = sandbox.deploy(SERVICE, tag="noisy", no_traffic=True, faults=["log_errors"])
        sandbox.update_traffic(SERVICE, to_revisions={stable: 90, noisy: 10})
        print(f"\nDeployed {noisy}: every answer right, but an ERROR in its logs for every request, tag URL {sandbox.tag_url(SERVICE, 'noisy')}")
        print(f"Traffic before (canary step at 10 %):\n{_traffic_table(sandbox)}")
        logged = _gate(sandbox, sandbox.tag_url(SERVICE, "noisy"), f"Gate the canary {noisy}", receiver)
        print(f"\nTraffic after:\n{_traffic_table(sandbox)}")

        rolled, broke = _rollouts(args.home, receiver)

        print(f"\nDemo done in {time.monotonic() - started:.1f} s.")
        if args.keep:
            print(f"The sandbox keeps running: python -m sandbox --home {args.home} status | down")
        return 0 if (good == 0 and bad == 1 and logged == 1 and rolled == 0 and broke == 1) else 1
    finally:
        receiver.close()
        if not args.keep:
            sandbox.down()


if __name__ == "__main__":
    sys.exit(main())

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
5. shows the traffic before and after, read through the Cloud Run Admin API,
   and the notifications a webhook received (``REVGATE_NOTIFY``: a JSON
   receiver on loopback here, Slack or Google Chat in a team's CI).

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

        print(f"\nDemo done in {time.monotonic() - started:.1f} s.")
        if args.keep:
            print(f"The sandbox keeps running: python -m sandbox --home {args.home} status | down")
        return 0 if (good == 0 and bad == 1 and logged == 1) else 1
    finally:
        receiver.close()
        if not args.keep:
            sandbox.down()


if __name__ == "__main__":
    sys.exit(main())

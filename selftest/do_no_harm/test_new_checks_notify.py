"""Notifications must not make the gate outlive its grace period after a signal: a CI runner sends
SIGKILL some seconds after SIGTERM, and the JSON report (the record of what the gate did to the
traffic) is written after the end message."""

from __future__ import annotations

import json
import signal
import time

from do_no_harm.test_signals import SLOW_CHECKLIST, Running
from notify.conftest import receiver  # noqa: F401 - fixture
from rollback_plugin.conftest import gate_args, popen_gate

GRACE = 3.0


def test_new_checks_notify_a_hanging_webhook_after_sigterm_keeps_the_grace_and_the_report(sb, service, traffic, tmp_path, receiver):  # noqa: F811
    hook = receiver("hang")
    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST + "\n[notify]\ntimeout = 10\nretries = 2\n")
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_slow:15"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    before = traffic(service)
    report = tmp_path / "report.json"
    args = gate_args(sb, service, sb.tag_url(service, "canary"), tmp_path, "-v", f"--report-json={report}")
    proc = popen_gate(sb, args, {"REVGATE_NOTIFY": hook.url, "REVGATE_INTERRUPT_GRACE": f"{GRACE:g}"})
    gate = Running(proc)
    gate.wait_for("collected")
    time.sleep(1.5)  # inside the slow API check
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code, output = gate.finish(timeout=60)
    took = time.monotonic() - sent

    assert code == 2, output
    assert took < GRACE + 4, (took, output)  # not the message's 30 s budget
    assert traffic(service) == before
    assert hook.requests, output  # the end message was tried
    data = json.loads(report.read_text())
    assert data["notifications"] and data["notifications"][0]["status"] == "failed", data["notifications"]
    assert hook.url not in output and "Traceback" not in output, output

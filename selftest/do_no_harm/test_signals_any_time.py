"""A signal at any moment after start is honoured, and the reports tell the truth about it.

- after the last check, while the session waits for the rollback: it is the first signal (not
  "again"), the grace period counts from it, the gate exits 2 and names the command that finishes it;
- while the session starts (the Admin API slow to answer): exit 2, traffic unchanged, and the
  JSON report's exit_status is the process's exit code.
"""

from __future__ import annotations

import json
import signal
import time

from do_no_harm.conftest import last_line
from do_no_harm.test_signals import SLOW_CHECKLIST, Running
from rollback_plugin.conftest import gate_args, popen_gate

LAST_CHECK_FAILS = """
[health]
ready_budget = 5
contains = "no such text"

[[api]]
id = "stats"
path = "/api/memory/user/stats"
"""
"""The last check to run (tests_smoke/test_health.py) fails: its rollback starts as the checks end."""


def test_a_signal_after_the_last_check_gets_the_grace_period_and_exit_2(sb, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(LAST_CHECK_FAILS)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True)
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    sb.inject("UpdateService", "UNAVAILABLE", -1)  # the rollback retries, still, when the checks are done
    report = tmp_path / "report.json"
    args = gate_args(sb, service, sb.tag_url(service, "canary"), tmp_path, "-v", f"--report-json={report}")
    gate = Running(popen_gate(sb, args, {"REVGATE_INTERRUPT_GRACE": "2"}))
    deadline = time.monotonic() + 60  # the last check failed and its rollback is sending (and retrying)
    while sb.calls("UpdateService") == 0 and time.monotonic() < deadline and gate.proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # the session is waiting for the rollback (pytest ends the last line only at the end)
    signalled = time.monotonic()
    gate.proc.send_signal(signal.SIGTERM)
    code, output = gate.finish(timeout=60)
    after_signal = time.monotonic() - signalled

    assert code == 2, output
    assert after_signal < 2 + 6, output  # the grace period (2 s) and the reports, not the rollback's own deadline
    assert "SIGTERM after the checks: finishing the rollback and the reports first" in output, output
    assert "SIGTERM again" not in output
    line = last_line(output, "ROLLBACK")
    assert line.startswith("ROLLBACK FAILED: interrupted (SIGTERM): the rollback did not finish within"), line
    assert f"finish it by hand: gcloud run services update-traffic {service}" in line, line
    data = json.loads(report.read_text())
    assert (data["verdict"], data["exit_status"]) == ("FAIL", 2), data
    assert data["rollback"]["manual_command"].startswith(f"gcloud run services update-traffic {service}")
    assert traffic(service).split == {stable: 90, candidate: 10}  # nothing was applied, and the record says so


def test_a_signal_while_the_gate_starts_stops_it_with_exit_2_and_changes_nothing(sb, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True)
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    before = traffic(service)
    sb.reset_calls()
    sb.inject("GetService", "UNAVAILABLE", 50)  # the start's read retries for a while
    report = tmp_path / "report.json"
    args = gate_args(sb, service, sb.tag_url(service, "canary"), tmp_path, "-v", f"--report-json={report}")
    gate = Running(popen_gate(sb, args))
    deadline = time.monotonic() + 30
    while sb.calls("GetService") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # inside the start's retries
    gate.proc.send_signal(signal.SIGTERM)
    code, output = gate.finish(timeout=60)
    sb.inject("GetService", "UNAVAILABLE", 0)  # answered again, for this test's own reads

    assert code == 2, output
    assert "Traceback" not in output
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    data = json.loads(report.read_text())
    assert data["exit_status"] == 2, data

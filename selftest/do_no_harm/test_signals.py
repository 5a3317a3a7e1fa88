"""Signals, sent to the gate's own process as CI does when a job is cancelled or times out.

- before any failure: "interrupted (SIGTERM): nothing verified, traffic unchanged", a record, no promotion;
- after a gating failure, while the rollback retries: the rollback is finished, the record and the
  summary are written, a second signal included (no traceback);
- when the operation outlives the grace period: the record and the terminal say which operation
  was sent and the gcloud command that checks it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from do_no_harm.conftest import last_line
from rollback_plugin.conftest import popen_gate

SLOW_CHECKLIST = """
[defaults]
timeout = 30

[health]
ready_budget = 5

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = { preferences = "object", concepts = "object", stats = "object" }

[[websocket]]
id = "session"
path = "/ws/{session}"
send = { type = "ping", id = 1 }
expect = { type = "pong", id = 1 }
timeout = 20
"""


class Running:
    """A gate process whose output is read as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, fragment: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(fragment in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"{fragment!r} never came:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 90) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(10)
        return code, "\n".join(self.lines)


def _record(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "rollback.json").read_text())


def test_sigterm_before_any_failure_changes_nothing_and_never_promotes(sb, start_gate, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_slow:15"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    before = traffic(service)
    sb.reset_calls()

    gate = Running(start_gate(service, sb.tag_url(service, "canary"), "-v", "--promote=100"))
    gate.wait_for("collected")
    time.sleep(1.5)  # inside the slow API check
    gate.proc.send_signal(signal.SIGTERM)
    code, output = gate.finish()

    assert code == 2, output
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert last_line(output, "interrupted (SIGTERM)").startswith("interrupted (SIGTERM): nothing verified, traffic unchanged")
    assert "Traceback" not in output
    record = _record(tmp_path)
    assert record["status"] == "interrupted"
    assert record["interrupted"] == "SIGTERM"


def test_sigterm_then_a_second_one_while_the_rollback_retries_still_rolls_back(sb, start_gate, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_500", "ws_silent"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    sb.inject("UpdateService", "UNAVAILABLE", 5)  # the rollback retries for about 2 s

    gate = Running(start_gate(service, sb.tag_url(service, "canary"), "-v"))
    gate.wait_for("test_api[stats] FAILED")
    gate.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    gate.proc.send_signal(signal.SIGTERM)
    code, output = gate.finish()

    assert code == 2, output
    assert traffic(service).split == {stable: 100}
    assert "ROLLBACK DONE" in last_line(output, "ROLLBACK"), output
    assert "Traceback" not in output
    assert "SIGTERM again: finishing the rollback and the reports first" in output
    record = _record(tmp_path)
    assert record["status"] == "done"
    assert record["interrupted"] == "SIGTERM"
    assert record["traffic"]["after"] is not None


def test_double_sigint_prints_no_traceback_and_rolls_back(sb, start_gate, service, traffic, tmp_path):
    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_500", "ws_silent"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})

    sb.set_operation_delay(3)  # the session waits for the rollback's operation when the second signal comes

    gate = Running(start_gate(service, sb.tag_url(service, "canary"), "-v"))
    gate.wait_for("test_api[stats] FAILED")
    gate.proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    gate.proc.send_signal(signal.SIGINT)
    code, output = gate.finish()

    assert code == 2, output
    assert traffic(service).split == {stable: 100}
    assert "Traceback" not in output
    assert "SIGINT again: finishing the rollback and the reports first" in output
    assert "ROLLBACK DONE" in last_line(output, "ROLLBACK"), output
    assert _record(tmp_path)["status"] == "done"


def test_an_operation_that_outlives_the_grace_is_named_with_the_command_that_checks_it(sb, service, traffic, tmp_path):
    from rollback_plugin.conftest import gate_args

    (tmp_path / "checklist.toml").write_text(SLOW_CHECKLIST)
    stable = sb.deploy(service)
    candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=["stats_500", "ws_silent"])
    sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    sb.set_operation_delay(8)
    args = gate_args(sb, service, sb.tag_url(service, "canary"), tmp_path, "-v")
    proc = popen_gate(sb, args, {"REVGATE_INTERRUPT_GRACE": "1"})
    gate = Running(proc)
    gate.wait_for("test_api[stats] FAILED")
    time.sleep(0.5)  # the update is sent at once; its operation takes 8 s
    gate.proc.send_signal(signal.SIGTERM)
    code, output = gate.finish()

    assert code == 2, output
    line = last_line(output, "ROLLBACK")
    assert line.startswith("ROLLBACK FAILED: interrupted (SIGTERM): the rollback did not finish within 1 s: operation projects/"), line
    assert f"check it with: gcloud run services describe {service} --region" in line
    record = _record(tmp_path)
    assert record["operation"].startswith("projects/")
    assert record["manual_command"].startswith(f"gcloud run services update-traffic {service}")
    # the operation completes on its own: Cloud Run does not depend on the gate's process
    deadline = time.monotonic() + 20
    while traffic(service).split != {stable: 100} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert traffic(service).split == {stable: 100}

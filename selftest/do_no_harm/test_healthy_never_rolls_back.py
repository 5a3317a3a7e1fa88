"""Repeated healthy gates, with bounded background traffic on the service, never roll back and never
mark the healthy canary: every run passes, the split stays as it was, no UpdateService is sent."""

from __future__ import annotations

import threading
import time
import urllib.request

from do_no_harm.conftest import FAILED_KEY, last_line


def test_repeated_healthy_gates_under_background_traffic_never_roll_back(sb, gate, service, traffic, annotations, canary):
    stable, candidate, url = canary(faults=())
    before = traffic(service)
    sb.reset_calls()
    stop = threading.Event()
    sent = {"ok": 0, "other": 0}

    def users() -> None:  # about 20 requests a second on the service URL, for as long as the gates run
        while not stop.is_set():
            try:
                with urllib.request.urlopen(sb.service_url(service) + "/health", timeout=5) as answer:
                    sent["ok" if answer.status == 200 else "other"] += 1
            except OSError:
                sent["other"] += 1
            time.sleep(0.05)

    thread = threading.Thread(target=users, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            result = gate(service, url)
            assert result.run.returncode == 0, result.run
            assert last_line(result.output, "revgate verdict:").startswith(f"revgate verdict: PASS {candidate}")
            assert result.record["status"] == "not-needed"
            assert traffic(service) == before
    finally:
        stop.set()
        thread.join(10)
    assert sb.calls("UpdateService") == 0
    assert FAILED_KEY not in annotations(service)
    assert sent["ok"] > 20 and sent["other"] == 0, sent

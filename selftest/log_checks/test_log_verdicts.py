"""The ``[[logs]]`` checks against the local Cloud Run: what the gate decides, says and does to the traffic."""

from __future__ import annotations

import re

from revgate.errors import NOT_VERIFIED_EXIT

from .conftest import read_entries, send, serving, write_entry

TRACEBACKS = """
[[logs]]
id = "tracebacks"
deny = ["Traceback"]
kinds = ["stderr"]
min_severity = "EMERGENCY"
"""


def test_healthy_revision_passes(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name)
    send(sandbox.service_url(service_name), 5)
    run = gate(service_name, sandbox.service_url(service_name), logs=TRACEBACKS + "\n[[logs]]\nid = \"errors\"\n")
    assert run.returncode == 0, run
    assert run.passed() == {"test_logs[tracebacks]", "test_logs[errors]"}, run
    assert "Cloud Logging shows the probe request's log of " + rev in run.stdout, run


def test_log_errors_fails_with_the_entry_and_a_link_and_rolls_the_canary_back(sandbox, gate, service_name):
    stable = sandbox.deploy(service_name)
    canary = sandbox.deploy(service_name, tag="canary", no_traffic=True, faults=["log_errors"])
    sandbox.update_traffic(service_name, to_revisions={stable: 90, canary: 10})
    run = gate(service_name, sandbox.tag_url(service_name, "canary"), "--rollback=on-failure")
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[errors]"}, run
    line = re.search(r"^\s+(\S+Z) ERROR stdout " + canary + r": simulated error while handling GET /health.*$", run.stdout, re.M)
    assert line, run  # timestamp, severity, log, revision, the message
    assert "at ERROR or above of " + canary in run.stdout, run
    assert "Logs Explorer: https://console.cloud.google.com/logs/query;query=" in run.stdout, run
    assert f"?project={sandbox.project}" in run.stdout, run
    assert serving(sandbox, service_name) == {stable: 100}, run  # the canary's 10 % went back


def test_traceback_fails_through_deny_at_default_severity(sandbox, gate, service_name):
    sandbox.deploy(service_name)
    broken = sandbox.deploy(service_name, faults=["log_traceback"])
    send(sandbox.service_url(service_name), 3)
    run = gate(service_name, sandbox.service_url(service_name), logs=TRACEBACKS)
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[tracebacks]"}, run
    assert re.search(r"\S+Z DEFAULT stderr " + broken + r": Traceback \(most recent call last\):", run.stdout), run
    assert "or matching deny ['Traceback']" in run.stdout, run


def test_allow_lets_a_known_error_line_through(sandbox, gate, service_name):
    sandbox.deploy(service_name, faults=["log_errors"])
    allowed = '[[logs]]\nid = "errors"\nallow = ["^simulated error while handling"]\n'
    run = gate(service_name, sandbox.service_url(service_name), logs=allowed)
    assert run.returncode == 0, run
    assert run.passed() == {"test_logs[errors]"}, run


def test_late_entries_are_waited_for_and_still_fail(sandbox, gate, service_name):
    sandbox.deploy(service_name, faults=["log_errors"])
    sandbox.set_logs_delay(4)
    run = gate(service_name, sandbox.service_url(service_name), "--logs-timeout=30")
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[errors]"}, run
    assert "waiting for Cloud Logging to show the probe request's log" in run.stdout, run


def test_too_short_a_wait_for_delayed_logs_is_not_verified(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name, faults=["log_errors"])
    sandbox.set_logs_delay(30)
    run = gate(service_name, sandbox.service_url(service_name), "--logs-timeout=2", "--rollback=on-failure")
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert not run.passed() and not run.failed(), run
    assert "Cloud Logging showed no request log of the gate's probe request" in run.stdout, run
    assert "within --logs-timeout 2 s" in run.stdout, run
    assert serving(sandbox, service_name) == {rev: 100}, run


def test_the_gates_own_refused_requests_are_not_problems_at_warning(sandbox, gate, service_name):
    sandbox.deploy(service_name)
    checks = (
        '[[api]]\nid = "stats"\npath = "/api/memory/user/stats"\n\n'
        '[[logs]]\nid = "warnings"\nmin_severity = "WARNING"\nkinds = ["requests"]\n'
    )
    run = gate(service_name, sandbox.service_url(service_name), logs=checks, folders=("tests_smoke/test_api.py", "tests_logs"))
    assert run.returncode == 0, run  # its 401s without a token are WARNING request logs of the gate's own making
    assert {"test_logs[warnings]", "test_api[stats]"} <= run.passed(), run
    refused = [e for e in read_entries(sandbox, f'resource.labels.service_name="{service_name}" AND httpRequest.status=401')]
    assert refused and all(e.http_request.user_agent == "revgate" for e in refused), refused  # they were there


def test_a_users_4xx_is_a_problem_at_warning(sandbox, gate, service_name):
    sandbox.deploy(service_name)
    send(sandbox.service_url(service_name), 1, path="/no-such-page")
    checks = '[[logs]]\nid = "warnings"\nmin_severity = "WARNING"\nkinds = ["requests"]\n'
    run = gate(service_name, sandbox.service_url(service_name), logs=checks)
    assert run.returncode == 1, run
    assert re.search(r"WARNING requests \S+: GET http://\S+/no-such-page 404", run.stdout), run


def test_since_run_leaves_out_what_the_revision_logged_before_the_run(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name)
    write_entry(sandbox, service_name, rev, "a crash before this run", severity="ERROR")
    before_run = gate(service_name, sandbox.service_url(service_name))  # since = "revision" (default)
    assert before_run.returncode == 1 and "a crash before this run" in before_run.stdout, before_run
    since_run = '[[logs]]\nid = "errors"\nsince = "run"\n'
    run = gate(service_name, sandbox.service_url(service_name), logs=since_run)
    assert run.returncode == 0, run
    assert run.passed() == {"test_logs[errors]"}, run

"""When are the logs complete? Log names arrive out of order (Cloud Logging promises no order across
them), so the probe's request log alone proves nothing of the container's stdout and stderr: the gate
waits for an entry of the container's own logs for or after the probe, then a settle margin.

The sandbox delays each log name on its own (``set_logs_delay(S, log=...)``), so an ERROR printed
before the probe can show after the probe's request log, as on Cloud Run.
"""

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


def test_an_error_printed_before_the_probe_and_shown_after_its_request_log_fails(sandbox, gate, service_name):
    stable = sandbox.deploy(service_name)
    canary = sandbox.deploy(service_name, tag="canary", no_traffic=True, faults=["log_errors"])
    sandbox.update_traffic(service_name, to_revisions={stable: 90, canary: 10})
    send(sandbox.tag_url(service_name, "canary"), 2)  # its ERROR lines, printed before the gate's probe
    sandbox.set_logs_delay(4, log="stdout")  # stdout shows 4 s late; the request logs at once
    run = gate(service_name, sandbox.tag_url(service_name, "canary"), "--rollback=on-failure", "--logs-timeout=30")
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[errors]"}, run
    order = re.search(
        "Cloud Logging shows the probe request's log of " + canary + r".*\n(.*\n)*"
        r".*Cloud Logging shows an entry of the container's stdout log (for|after) the probe",
        run.stdout,
    )
    assert order, run  # the request log came first; the verdict waited for stdout
    assert re.search(r"\S+Z ERROR stdout " + canary + r": simulated error while handling GET /health", run.stdout), run
    assert serving(sandbox, service_name) == {stable: 100}, run


def test_a_late_log_name_within_the_settle_margin_still_fails(sandbox, gate, service_name):
    sandbox.deploy(service_name, faults=["log_traceback"])
    send(sandbox.service_url(service_name), 2)
    sandbox.set_logs_delay(1.5, log="stderr")  # stdout (the access line, the proof) at once; stderr later
    run = gate(service_name, sandbox.service_url(service_name), "--logs-settle=3", logs=TRACEBACKS)
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[tracebacks]"}, run
    assert "3 s more for entries of other log names that arrive late" in run.stdout, run


def test_a_quiet_container_is_not_verified_naming_the_missing_proof(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name, env={"SAMPLE_ACCESS_LOG": "0"})  # logs nothing, not even requests
    run = gate(service_name, sandbox.service_url(service_name), "--logs-timeout=3", "--rollback=on-failure")
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert not run.passed() and not run.failed(), run
    assert "Cloud Logging shows the probe request's log of " + rev in run.stdout, run
    assert "but no entry of the container's own logs for or after the probe within --logs-timeout 3 s" in run.stdout, run
    assert "an application that logs each request (most web servers do) proves it" in run.stdout, run
    assert serving(sandbox, service_name) == {rev: 100}, run


def test_an_error_in_a_client_library_log_name_fails(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name)
    # Python's CloudLoggingHandler writes the log "python" of the same cloud_run_revision resource
    write_entry(sandbox, service_name, rev, "payment failed: card declined", severity="ERROR", log="python")
    only_stdout = gate(service_name, sandbox.service_url(service_name), logs='[[logs]]\nid = "errors"\nkinds = ["stdout"]\n')
    assert only_stdout.returncode == 0, only_stdout  # kinds still narrows
    run = gate(service_name, sandbox.service_url(service_name))
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[errors]"}, run
    assert re.search(r"\S+Z ERROR python " + rev + r": payment failed: card declined", run.stdout), run
    assert "[[logs]] errors: 1 log entry at ERROR or above of " + rev + " in all its logs" in run.stdout, run


def test_audit_logs_of_the_revision_are_not_read(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name)
    write_entry(sandbox, service_name, rev, "SetIamPolicy denied", severity="ERROR", log="cloudaudit.googleapis.com%2Factivity")
    assert read_entries(sandbox, 'logName:"cloudaudit.googleapis.com"'), "the audit entry was written"
    run = gate(service_name, sandbox.service_url(service_name))
    assert run.returncode == 0, run
    assert run.passed() == {"test_logs[errors]"}, run


def test_a_probe_that_no_instance_served_proves_nothing_of_the_container(sandbox, gate, service_name):
    sandbox.deploy(service_name)
    dead = sandbox.deploy(service_name, tag="dead", no_traffic=True, not_ready=True)  # no container started
    run = gate(service_name, sandbox.tag_url(service_name, "dead"), "--logs-timeout=3")
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert "Cloud Logging shows the probe request's log of " + dead in run.stdout, run
    assert "no instance served the probe (status 503)" in run.stdout, run
    # Cloud Run's words for it (known issues: 429 or 503), and no instance label
    refused = read_entries(sandbox, f'resource.labels.revision_name="{dead}" AND httpRequest.status=503')
    assert refused, run
    assert refused[0].text_payload == "The request was aborted because there was no available instance."
    assert "instanceId" not in refused[0].labels

"""The logs checks when the gate cannot check, and what it must never show or ask wrongly."""

from __future__ import annotations

import socket

from revgate.errors import NOT_VERIFIED_EXIT

from .conftest import send, serving


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed


def test_unreachable_logging_api_is_one_line_not_verified_and_changes_no_traffic(sandbox, gate, service_name):
    stable = sandbox.deploy(service_name)
    canary = sandbox.deploy(service_name, tag="canary", no_traffic=True, faults=["log_errors"])
    sandbox.update_traffic(service_name, to_revisions={stable: 50, canary: 50})
    env = {"CLOUD_LOGGING_API_ENDPOINT": _closed_port()}
    run = gate(service_name, sandbox.tag_url(service_name, "canary"), "--logs-timeout=3", "--rollback=on-failure", env=env)
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert not run.passed() and not run.failed(), run
    lines = [l for l in run.stdout.splitlines() if "Cloud Logging did not answer the probe request log query" in l]
    assert lines and all("the logs cannot be verified" in l for l in lines), run
    assert "Traceback" not in run.output, run
    assert serving(sandbox, service_name) == {stable: 50, canary: 50}, run  # not judged: nothing rolled back


def test_without_the_service_the_logs_checks_are_not_verified(sandbox, run_suite, tmp_path, service_name):
    sandbox.deploy(service_name)
    checklist = tmp_path / "checklist.toml"
    checklist.write_text('[[logs]]\nid = "errors"\n')
    env = {k: v for k, v in sandbox.env.items() if k not in ("GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_REGION")}
    run = run_suite("tests_logs", f"--checklist={checklist}", f"--revision-url={sandbox.service_url(service_name)}", env=env)
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert "the logs checks need the Cloud Run service (--service" in run.stdout, run


def test_a_bad_logs_timeout_is_a_usage_error(sandbox, gate, service_name):
    sandbox.deploy(service_name)
    run = gate(service_name, sandbox.service_url(service_name), "--logs-timeout=soon")
    run.assert_usage_error("--logs-timeout 'soon' is not a number of seconds")


def test_a_token_the_app_logs_is_shown_as_stars(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name, faults=["log_errors"])
    token = sandbox.env["REVGATE_AUTH_TOKEN"]
    send(sandbox.service_url(service_name), 2, path="/api/memory/user/stats", token=token)
    run = gate(service_name, sandbox.service_url(service_name))
    assert run.returncode == 1, run
    assert f"ERROR stdout {rev}: simulated error while handling GET /api/memory/user/stats (credentials: Bearer ***)" in run.stdout, run
    assert token not in run.output, run
    assert token not in run.junit_text(), run


def test_query_names_the_revision(sandbox, gate, service_name):
    broken = sandbox.deploy(service_name, faults=["log_errors"])
    send(sandbox.service_url(service_name), 2)
    healthy = sandbox.deploy(service_name, tag="candidate", no_traffic=True)
    before = len(sandbox.log_filters())
    run = gate(service_name, sandbox.tag_url(service_name, "candidate"))
    assert run.returncode == 0, run  # the broken revision's errors are not the candidate's
    asked = sandbox.log_filters()[before:]
    assert asked, run
    for query in asked:
        assert f'resource.labels.revision_name="{healthy}"' in query, query
        assert broken not in query, query
        assert f'resource.labels.service_name="{service_name}"' in query, query
        assert 'resource.type="cloud_run_revision"' in query, query
        assert f'resource.labels.location="{sandbox.region}"' in query, query
    judged = [q for q in asked if "severity>=ERROR" in q]
    assert judged and 'timestamp>="' in judged[0] and 'timestamp<="' in judged[0], asked


def test_a_pattern_cloud_logging_cannot_take_is_a_usage_error(run_suite, tmp_path):
    """deny and allow are sent to Cloud Logging's =~, which is RE2: Python-only syntax (lookbehind) is
    refused before any check, in one line, rather than found out as NOT VERIFIED at the query."""
    checklist = tmp_path / "checklist.toml"
    checklist.write_text('[health]\n\n[[logs]]\nid = "lookbehind"\ndeny = ["(?<=GET )/boom"]\n')

    run = run_suite("--revision-url=http://127.0.0.1:9", f"--checklist={checklist}")

    run.assert_usage_error("[[logs]] 'lookbehind' key 'deny'", "is not a regular expression Cloud Logging accepts (RE2 syntax")
    assert "re2.cc" not in run.output  # RE2's own log line stays out of the one-line message


def test_a_backtracking_pattern_cannot_hang_the_gate(sandbox, gate, service_name):
    """(a+)+$ backtracks exponentially in Python's re on a long run of 'a' that ends otherwise
    (minutes at 40 characters); matched as RE2, as Cloud Logging does, it takes linear time."""
    sandbox.deploy(service_name, faults=["log_errors"])
    url = sandbox.service_url(service_name)
    send(url, 1, path="/" + "a" * 40 + "!")  # logged: "simulated error while handling GET /aaaa...a!"

    run = gate(service_name, url, logs='[[logs]]\nid = "redos"\nkinds = ["stdout"]\nmin_severity = "EMERGENCY"\ndeny = ["(a+)+$"]\n')

    assert run.returncode == 0, run  # nothing ends with an 'a': no problem, and the gate ends
    assert run.outcomes["test_logs[redos]"] == "passed"

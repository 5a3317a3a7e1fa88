"""The smoke checklist's verdict on the sample service: healthy passes, each fault fails the right check."""

from __future__ import annotations

import pytest

ALL = {
    "test_health[health]",
    "test_api[memory-user-stats]",
    "test_api_requires_auth[memory-user-stats]",
    "test_websocket[session]",
    "test_latency[health-and-stats]",
}


def test_healthy_revision_passes_every_check(sample_service, run_suite, auth_env):
    url = sample_service()
    run = run_suite("tests_smoke", "--revision-url", url, env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == ALL, run
    assert f"revgate target: {url}" in run.stdout


def test_healthy_revision_passes_under_xdist(sample_service, run_suite, auth_env):
    url = sample_service()
    run = run_suite("tests_smoke", "--revision-url", url, "-n", "2", env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == ALL, run


@pytest.mark.parametrize(
    ("fault", "failing", "message"),
    [
        ("health_500", {"test_health[health]", "test_latency[health-and-stats]"}, "expected 200, answered 500"),
        ("health_slow:5", {"test_health[health]", "test_latency[health-and-stats]"}, "no complete answer within 2 s"),
        ("stats_500", {"test_api[memory-user-stats]", "test_latency[health-and-stats]"}, "expected 200, answered 500"),
        ("stats_schema", {"test_api[memory-user-stats]"}, "unexpected JSON shape: 'concepts' missing"),
        ("stats_open", {"test_api_requires_auth[memory-user-stats]"}, "expected 401 or 403 without a token (the endpoint must not be open)"),
        ("stats_slow:5", {"test_api[memory-user-stats]", "test_latency[health-and-stats]"}, "no complete answer within 2 s"),
        ("ws_reject", {"test_websocket[session]"}, "handshake refused with HTTP 403"),
        ("ws_silent", {"test_websocket[session]"}, "no frame matching {'type': 'pong', 'id': 1} within 5 s"),
        ("error_rate:1", ALL - {"test_websocket[session]"}, "answered 500"),
    ],
)
def test_each_fault_fails_its_check(sample_service, run_suite, auth_env, fault, failing, message):
    url = sample_service(fault)
    run = run_suite("tests_smoke", "--revision-url", url, "--request-timeout", "2", env=auth_env)
    assert run.returncode == 1, run
    assert run.failed() == failing, run
    assert run.passed() == ALL - failing, run
    assert message in run.stdout, run


def test_latency_limits_are_judged(sample_service, run_suite, auth_env, checklist_variant):
    url = sample_service("latency_ms:60")
    checklist = checklist_variant({"p50_ms = 500": "p50_ms = 20"})
    run = run_suite("tests_smoke", "--revision-url", url, f"--checklist={checklist}", env=auth_env)
    assert run.failed() == {"test_latency[health-and-stats]"}, run
    assert "p50" in run.stdout and "> 20 ms" in run.stdout, run


def test_missing_token_stops_the_gate_at_start_and_says_how_to_give_one(sample_service, run_suite):
    url = sample_service()
    run = run_suite("tests_smoke", "--revision-url", url)
    run.assert_usage_error(  # the gate's own input: exit 4 before any check, never a FAIL (or a rollback)
        "test_api[memory-user-stats] (and 1 more) needs the API token (auth = true), and none was given",
        "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE",
    )


def test_advisory_failure_does_not_fail_the_gate(sample_service, run_suite, auth_env, checklist_variant):
    url = sample_service("ws_reject")
    checklist = checklist_variant({"timeout = 5.0\n": "timeout = 5.0\nadvisory = true\n"})
    run = run_suite("tests_smoke", "--revision-url", url, f"--checklist={checklist}", env=auth_env)
    assert run.returncode == 0, run
    assert run.failed() == {"test_websocket[session]"}, run
    assert "advisory failures (not gating)" in run.stdout, run


def test_a_checklist_without_checks_is_a_usage_error(sample_service, run_suite, auth_env, tmp_path):
    # a checklist that would verify nothing is refused before any check (a run whose checks were
    # all skipped is NOT VERIFIED: selftest/do_no_harm)
    empty = tmp_path / "empty.toml"
    empty.write_text("# no checks at all\n")
    run = run_suite("--revision-url", sample_service(), f"--checklist={empty}", env=auth_env)
    run.assert_usage_error(str(empty), "the checklist has no checks")

"""A cold revision is waited for within the readiness budget; a token never shows in output or reports."""

from __future__ import annotations

from pathlib import Path


def test_revision_ready_after_3s_passes_within_the_budget(sample_service, run_suite, auth_env):
    url = sample_service("startup_delay:3", wait_ready=False)
    run = run_suite("tests_smoke", "--revision-url", url, "-k", "test_health", env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == {"test_health[health]"}, run


def test_revision_never_ready_fails_when_the_budget_is_spent(sample_service, run_suite, auth_env, checklist_variant):
    url = sample_service("startup_delay:9999", wait_ready=False)
    checklist = checklist_variant({"ready_budget = 60": "ready_budget = 3"})
    run = run_suite("tests_smoke", "--revision-url", url, f"--checklist={checklist}", "-k", "test_health", env=auth_env)
    assert run.returncode == 1, run
    assert run.failed() == {"test_health[health]"}, run
    assert "attempts within the 3 s readiness budget), answered 503" in run.stdout, run


def test_token_never_appears_in_a_failing_run(sample_service, run_suite, auth_env, tmp_path: Path):
    token = auth_env["REVGATE_AUTH_TOKEN"]
    url = sample_service("stats_500,ws_reject")
    run = run_suite("tests_smoke", "--revision-url", url, "-v", "-l", env=auth_env)
    assert run.returncode == 1, run
    assert token not in run.output
    assert token not in run.junit_text()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    run = run_suite("tests_smoke", "--revision-url", url, f"--auth-token-file={token_file}", "-v", "-l")
    assert run.returncode == 1, run
    assert f"API token *** (from file {token_file})" in run.stdout, run
    assert token not in run.output
    assert token not in run.junit_text()

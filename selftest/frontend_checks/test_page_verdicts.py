"""The frontend checks' verdict on the sample service: healthy pages pass, each page fault fails the page with its message."""

from __future__ import annotations

from pathlib import Path

import pytest

PAGES = {"test_page[home-chromium]", "test_page[memory-chromium]"}
HOME = "test_page[home-chromium]"
HOME_FOLDER = "tests-frontend-test-pages-py-test-page-home-chromium"


def test_healthy_pages_pass_and_leave_no_artifacts(sample_service, run_suite, auth_env, output_dir: Path, artifacts):
    url = sample_service()
    run = run_suite("--revision-url", url, "tests_frontend", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == PAGES, run
    assert artifacts(output_dir) == {}, run


def test_healthy_pages_pass_under_xdist(sample_service, run_suite, auth_env, output_dir: Path):
    url = sample_service()
    run = run_suite("--revision-url", url, "tests_frontend", "-n", "2", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == PAGES, run


@pytest.mark.parametrize(
    ("fault", "messages"),
    [
        ("js_error", ["1 problem", "uncaught exception: Error: ProactiveHints: hint state is corrupt"]),
        (
            "missing_asset",
            ["1 problem", "/static/missing.css (stylesheet): HTTP 404"],
        ),
        (
            "console_error",
            ["1 problem", "console error: ProactiveHints: failed to sync dismissed hints (at ", "/static/hints.js:"],
        ),
        (
            "hints_missing",
            ["2 problems", "selector \"#proactive-hints[data-ready='true']\": nothing visible matches it within 3 s"],
        ),
    ],
)
def test_each_page_fault_fails_the_page(
    sample_service, run_suite, auth_env, output_dir: Path, artifacts, pages_without_time_budgets, fault, messages
):
    url = sample_service(fault)
    run = run_suite(
        "--revision-url", url, "tests_frontend", f"--checklist={pages_without_time_budgets}",
        "--request-timeout=3", f"--output={output_dir}", env=auth_env,
    )
    assert run.returncode == 1, run
    assert run.failed() == {HOME}, run
    assert run.passed() == PAGES - {HOME}, run
    for message in messages:
        assert message in run.stdout, run
    assert f"GET {url}/ (with token)" not in run.stdout  # the home page does not need the token
    assert f"GET {url}/ (no token): " in run.stdout, run
    # evidence for the failing page only
    assert artifacts(output_dir) == {HOME_FOLDER: {"screenshot.png", "console.log"}}, run
    assert str(output_dir / HOME_FOLDER) in run.stdout, run
    assert (output_dir / HOME_FOLDER / "screenshot.png").read_bytes().startswith(b"\x89PNG"), run


def test_slow_asset_breaks_the_shipped_time_budgets(sample_service, run_suite, auth_env, output_dir: Path, artifacts):
    url = sample_service("slow_asset:2")
    run = run_suite("--revision-url", url, "tests_frontend", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 1, run
    assert run.failed() == {HOME}, run
    assert "  - load event: 2," in run.stdout and "ms, over the budget of 2,000 ms (key load_ms)" in run.stdout, run
    assert "  - DOMContentLoaded: 2," in run.stdout and "over the budget of 2,000 ms (key dom_content_loaded_ms)" in run.stdout, run
    assert set(artifacts(output_dir)) == {HOME_FOLDER}, run


def test_bytes_budget_is_judged(sample_service, run_suite, auth_env, pages_without_time_budgets, output_dir: Path):
    url = sample_service()
    text = pages_without_time_budgets.read_text()
    assert text.count("max_bytes = 500_000") == 2
    pages_without_time_budgets.write_text(text.replace("max_bytes = 500_000", "max_bytes = 1000", 1))  # home only
    run = run_suite(
        "--revision-url", url, "tests_frontend", f"--checklist={pages_without_time_budgets}",
        f"--output={output_dir}", env=auth_env,
    )
    assert run.failed() == {HOME}, run
    assert "  - bytes transferred: " in run.stdout, run
    assert "bytes, over the budget of 1,000 bytes (key max_bytes)" in run.stdout, run


def test_every_problem_is_listed_not_only_the_first(
    sample_service, run_suite, auth_env, output_dir: Path, pages_without_time_budgets
):
    url = sample_service("js_error,missing_asset,console_error")
    run = run_suite(
        "--revision-url", url, "tests_frontend", f"--checklist={pages_without_time_budgets}",
        f"--output={output_dir}", env=auth_env,
    )
    assert run.failed() == {HOME}, run
    assert f"GET {url}/ (no token): 3 problems" in run.stdout, run
    for fragment in (
        "  - uncaught exception: Error: ProactiveHints: hint state is corrupt",
        "  - console error: ProactiveHints: failed to sync dismissed hints",
        f"  - request GET {url}/static/missing.css (stylesheet): HTTP 404",
    ):
        assert fragment in run.stdout, run
    # the browser's own "Failed to load resource" line repeats the 404: it is not listed twice
    assert "Failed to load resource" not in run.stdout, run
    log = (output_dir / HOME_FOLDER / "console.log").read_text()
    assert "console.error: ProactiveHints: failed to sync dismissed hints" in log
    assert "uncaught Error: ProactiveHints: hint state is corrupt" in log
    assert f"response 404 GET {url}/static/missing.css" in log


def test_auth_page_without_a_token_stops_the_gate_at_start_saying_so(sample_service, run_suite, output_dir: Path):
    url = sample_service()
    run = run_suite("--revision-url", url, "tests_frontend", f"--output={output_dir}")
    run.assert_usage_error("test_page[memory-chromium] needs the API token (auth = true), and none was given")


def test_ignore_console_patterns_accept_a_known_console_error(sample_service, run_suite, auth_env, shipped_pages, output_dir):
    url = sample_service("console_error")
    checklist = shipped_pages(
        {'auth = false\nignore_console = []': 'auth = false\nignore_console = ["^ProactiveHints: failed to sync"]'}
    )
    run = run_suite("--revision-url", url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == PAGES, run

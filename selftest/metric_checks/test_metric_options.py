"""Bad metric options and checklist values are one-line usage errors; without a service the checks are not verified."""

from __future__ import annotations

import pytest

from revgate.errors import NOT_VERIFIED_EXIT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics-window=0"], "--metrics-window 0 must be at least 1"),
        (["--metrics-timeout=soon"], "--metrics-timeout: invalid float value: 'soon'"),
        (["--metrics-no-data=maybe"], "--metrics-no-data: invalid choice: 'maybe'"),
        (["--warmup-requests=-1"], "--warmup-requests -1 must be at least 0"),
    ],
)
def test_bad_option_is_a_one_line_usage_error(run_suite, args, message):
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", *args)
    assert run.returncode == 4, run
    assert message in run.stderr, run
    assert "Traceback" not in run.output, run


WINDOW_TOO_SHORT = (
    "{where} {window} s is shorter than Cloud Monitoring data can cover: at least 240 s "
    "(Cloud Run samples every 60 s, and a sample is visible up to 180 s later)"
)


@pytest.mark.parametrize("window", [60, 239])
def test_a_window_shorter_than_a_sample_plus_its_visibility_is_a_usage_error(run_suite, window):
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", f"--metrics-window={window}")
    run.assert_usage_error(WINDOW_TOO_SHORT.format(where="--metrics-window", window=window))


def test_a_checklist_window_shorter_than_240_s_is_a_usage_error(run_suite, checklist_variant):
    checklist = checklist_variant({"window = 600": "window = 120"})
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", f"--checklist={checklist}")
    run.assert_usage_error(WINDOW_TOO_SHORT.format(where="the checklist's [metrics] window", window=120))


def test_a_240_s_window_is_accepted(run_suite):
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", "--metrics-window=240", "--collect-only")
    assert run.returncode == 4, run  # accepted; --collect-only then gives no verdict, never 0
    assert "revgate metrics: window 240 s," in run.stdout, run


def test_bad_env_value_is_a_usage_error(run_suite):
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", env={"REVGATE_METRICS_NO_DATA": "ignore"})
    assert run.returncode == 4, run
    assert "--metrics-no-data 'ignore': choose fail or skip" in run.stderr, run


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_error_rate = 0.05", "max_error_rate = 5", "[metrics] key 'max_error_rate': Input should be less than or equal to 1"),
        ("window = 600", "window = 10", "[metrics] key 'window': Input should be greater than or equal to 60"),
        ("p99_latency_ms = 2000", "p99_latency_ms = \"2s\"", "[metrics] key 'p99_latency_ms'"),
        ("max_p95_ratio = 1.25", "max_p95_ratio = 1.25\nmax_p59_ratio = 2", "key 'baseline.max_p59_ratio': unknown key"),
        (
            "# advisory_checks = [\"cpu-utilization\"]",
            "advisory_checks = [\"cpu\"]",
            "advisory_checks: 'cpu' is not a check id",
        ),
    ],
)
def test_bad_metrics_section_names_the_key(run_suite, checklist_variant, old, new, message):
    checklist = checklist_variant({old: new})
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", f"--checklist={checklist}")
    assert run.returncode == 4, run
    assert message in run.stderr, run
    assert len(run.stderr.strip().splitlines()) == 1, run


def test_without_a_service_the_metric_checks_are_not_verified(run_suite):
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", "-p", "no:randomly")
    assert run.returncode == NOT_VERIFIED_EXIT, run  # every check skipped: nothing verified
    assert "revgate verdict: NOT VERIFIED" in run.stdout, run
    assert not run.passed() and not run.failed(), run
    assert "revgate: metrics NOT VERIFIED" in run.stdout, run
    assert "the metric checks need the Cloud Run service" in run.stdout, run


def test_header_shows_the_metric_options(run_suite):
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", "--metrics-window=900", "--collect-only")
    assert "revgate metrics: window 900 s, wait up to 270 s for 20 requests, no data -> fail" in run.stdout, run

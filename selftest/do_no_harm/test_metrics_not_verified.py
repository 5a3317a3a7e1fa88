"""No metric data is the gate's problem, never the revision's: with ``--metrics-no-data fail`` a canary
nobody calls is NOT VERIFIED (exit 6), its traffic untouched, no promotion; the checks are listed with
their reason. The fake Cloud Monitoring serves the (empty) data through the real client."""

from __future__ import annotations

from do_no_harm.conftest import FAILED_KEY, last_line

CHECKLIST = """
[metrics]
window = 600
min_requests = 20
max_error_rate = 0.05

[metrics.baseline]
max_error_rate_increase = 0.01
"""


def test_no_metric_data_is_not_verified_and_never_rolls_back(sb, run_suite, service, traffic, annotations, canary, tmp_path):
    stable, candidate, url = canary(faults=())
    checklist = tmp_path / "metrics.toml"
    checklist.write_text(CHECKLIST)
    before = traffic(service)
    sb.reset_calls()

    run = run_suite(
        "tests_metrics", f"--revision-url={url}", f"--service={service}", f"--checklist={checklist}",
        "--metrics-timeout=2", "--metrics-no-data=fail", "--promote=50", f"--rollback-report={tmp_path / 'rb.json'}",
        env=sb.env, timeout=120,
    )

    assert run.returncode == 6, run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert FAILED_KEY not in annotations(service)
    assert last_line(run.stdout, "revgate verdict:").startswith(f"revgate verdict: NOT VERIFIED {candidate}"), run
    assert "NOT VERIFIED test_metric[error-rate]: NOT VERIFIED (--metrics-no-data fail): only 0 of the 20 requests needed" in run.stdout, run
    assert "ROLLBACK" not in run.stdout
    assert "not promoted to 50 %: the verdict is NOT VERIFIED" in run.stdout, run


def test_an_unavailable_monitoring_api_is_not_verified_and_never_rolls_back(sb, run_suite, service, traffic, canary, tmp_path):
    stable, candidate, url = canary(faults=())
    checklist = tmp_path / "metrics.toml"
    checklist.write_text(CHECKLIST)
    before = traffic(service)
    sb.reset_calls()
    import socket

    with socket.socket() as probe:  # a port nothing listens on: Cloud Monitoring unreachable
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    run = run_suite(
        "tests_metrics", f"--revision-url={url}", f"--service={service}", f"--checklist={checklist}",
        "--metrics-timeout=2", env={**sb.env, "CLOUD_MONITORING_API_ENDPOINT": f"127.0.0.1:{closed}"}, timeout=120,
    )

    assert run.returncode == 6, run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert last_line(run.stdout, "revgate verdict:").startswith(f"revgate verdict: NOT VERIFIED {candidate}"), run
    assert "Cloud Monitoring did not answer the" in run.stdout and "the metrics cannot be verified" in run.stdout, run
    assert "ROLLBACK" not in run.stdout

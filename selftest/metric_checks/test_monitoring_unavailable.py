"""When Cloud Monitoring cannot answer, the metric checks say so in one line and are NOT VERIFIED:
the gate could not check, the revision was not judged, nothing is rolled back (advisory or not)."""

from __future__ import annotations

import socket

from revgate.errors import NOT_VERIFIED_EXIT


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed


def _serving_pair(sandbox, service):
    """Two revisions; the second serves 100 % (a full deploy), the first is the previous revision."""
    previous = sandbox.deploy(service)
    current = sandbox.deploy(service)
    return previous, current


def test_monitoring_unavailable_is_not_verified_with_one_line_and_never_rolls_back(sandbox, gate, service_name):
    _previous, current = _serving_pair(sandbox, service_name)
    env = {"CLOUD_MONITORING_API_ENDPOINT": _closed_port()}
    run = gate(service_name, sandbox.service_url(service_name), "--metrics-timeout=3", "--rollback=on-failure", env=env)
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert not run.passed() and not run.failed(), run  # NOT VERIFIED: skipped with the reason, never a failure
    assert "revgate verdict: NOT VERIFIED" in run.stdout, run
    assert "Cloud Monitoring did not answer the request_count query of service" in run.stdout, run
    assert "the metrics cannot be verified" in run.stdout, run
    assert "Traceback" not in run.output and "grpc" not in run.stdout.split("short test summary")[0].lower(), run
    traffic = {t["revision"]: t["percent"] for t in sandbox.traffic(service_name) if t["percent"]}
    assert traffic == {current: 100}, run  # the revision was not judged: its traffic stays


def test_monitoring_unavailable_on_advisory_metrics_never_rolls_back(sandbox, gate, service_name, checklist_variant):
    _previous, current = _serving_pair(sandbox, service_name)
    checklist = checklist_variant({"[metrics]\n": "[metrics]\nadvisory = true\n"})  # the baseline too
    env = {"CLOUD_MONITORING_API_ENDPOINT": _closed_port()}
    run = gate(
        service_name,
        sandbox.service_url(service_name),
        f"--checklist={checklist}",
        "--metrics-timeout=3",
        "--rollback=on-failure",
        env=env,
    )
    assert run.returncode == NOT_VERIFIED_EXIT, run  # only metric checks ran, none verified
    assert not run.passed() and not run.failed(), run
    assert "the metrics cannot be verified" in run.stdout, run
    traffic = {t["revision"]: t["percent"] for t in sandbox.traffic(service_name) if t["percent"]}
    assert traffic == {current: 100}, run

"""The metric checks' verdicts on revisions of the local Cloud Run, as a user running the gate sees them."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from revgate.errors import NOT_VERIFIED_EXIT
from metric_checks.conftest import METRICS_DELAY, SAMPLED_TIMEOUT, kill_revision, seconds_to_sample_end, send, wait_for_gauges

ABSOLUTE = {
    "test_metric[error-rate]",
    "test_metric[p50-latency]",
    "test_metric[p95-latency]",
    "test_metric[p99-latency]",
    "test_metric[memory-utilization]",
    "test_metric[cpu-utilization]",
}
BASELINE = {"test_baseline[error-rate]", "test_baseline[p95-latency]"}
ALL = ABSOLUTE | BASELINE


def _canary(sandbox, service, *, faults=(), baseline_faults=(), requests=40):
    """A serving revision and a tag-only canary, each with ``requests`` requests recorded."""
    previous = sandbox.deploy(service, faults=list(baseline_faults))
    canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=list(faults))
    return previous, canary, sandbox.tag_url(service, "canary")


@dataclass(frozen=True)
class Staged:
    service: str
    previous: str
    canary: str
    url: str


# name: (canary faults, previous revision's faults, requests to the service URL, requests to the canary's tag URL)
SCENARIOS = {
    "healthy": ((), (), 40, 40),
    "error-rate": (("error_rate:0.2",), (), 60, 60),
    "slow": (("latency_ms:150",), (), 0, 25),
    "twice-as-slow": (("latency_ms:200",), ("latency_ms:100",), 30, 30),
    "canary-only": ((), (), 0, 30),
}


@pytest.fixture(scope="module")
def staged(sandbox):
    """Every scenario deployed and its traffic sent at once, then one wait until all of it is visible.

    Cloud Run's data shows only after its 60 s sample period ends (plus the visibility delay): staged
    together, the scenarios share that wait, and each gate then reads data that is already visible.
    """
    out = {}
    for name, (faults, baseline_faults, _to_service, _to_tag) in SCENARIOS.items():
        service = f"staged-{name}"
        previous, canary, url = _canary(sandbox, service, faults=faults, baseline_faults=baseline_faults)
        out[name] = Staged(service, previous, canary, url)
    for name, (_, _, to_service, to_tag) in SCENARIOS.items():
        send(sandbox.service_url(out[name].service), to_service)
        send(out[name].url, to_tag)
    sent = time.time()
    out["sent"] = sent  # every staged request was sent before this moment
    time.sleep(seconds_to_sample_end() + METRICS_DELAY + 0.5)
    healthy = out["healthy"]
    wait_for_gauges(sandbox, healthy.service, (healthy.previous, healthy.canary))
    return out


def test_healthy_revision_under_traffic_passes_every_metric(gate, staged):
    s = staged["healthy"]
    run = gate(s.service, s.url, "--metrics-timeout=10")
    assert run.returncode == 0, run
    assert run.passed() == ALL, run
    # the 40 sent; the gate's own readiness request is left out (revgate.own_requests), visible yet or not
    assert re.search(rf"\b(39|40) requests of {s.canary} visible", run.stdout), run
    # one request_count poll (both revisions, both status classes) + latencies, memory, CPU
    assert "; 4 ListTimeSeries calls" in run.stdout, run
    assert "NOT VERIFIED" not in run.stdout, run


def test_healthy_revision_passes_under_xdist(gate, staged):
    s = staged["healthy"]
    run = gate(s.service, s.url, "--metrics-timeout=10", "-n", "2", "--dist", "loadgroup")
    assert run.returncode == 0, run
    assert run.passed() == ALL, run


def test_error_rate_fails_the_error_rate_check(gate, staged):
    s = staged["error-rate"]
    run = gate(s.service, s.url, "--metrics-timeout=10", "-k", "error-rate")
    assert run.returncode == 1, run
    assert "test_metric[error-rate]" in run.failed(), run
    assert "error rate" in run.stdout and "exceeds the limit 5.00 %" in run.stdout, run
    assert f"revision {s.canary}" in run.stdout and "600 s window" in run.stdout, run


def test_slow_revision_fails_p99_latency(gate, staged, checklist_variant):
    s = staged["slow"]
    checklist = checklist_variant({"p99_latency_ms = 2000": "p99_latency_ms = 100"})
    run = gate(s.service, s.url, f"--checklist={checklist}", "--metrics-timeout=10", "-k", "not baseline and latency")
    assert run.returncode == 1, run
    assert run.failed() == {"test_metric[p99-latency]"}, run
    assert run.passed() == {"test_metric[p50-latency]", "test_metric[p95-latency]"}, run
    assert "p99 request latency" in run.stdout and "exceeds the limit 100 ms" in run.stdout, run
    assert f"revision {s.canary}" in run.stdout, run


def test_revision_twice_as_slow_as_its_baseline_fails_the_comparison(gate, staged):
    s = staged["twice-as-slow"]
    run = gate(s.service, s.url, "--metrics-timeout=10", "-k", "latency")
    assert run.returncode == 1, run
    assert run.failed() == {"test_baseline[p95-latency]"}, run  # the absolute limits (p99 2000 ms) pass
    assert {"test_metric[p50-latency]", "test_metric[p95-latency]", "test_metric[p99-latency]"} <= run.passed(), run
    assert f"the previous revision's ({s.previous}:" in run.stdout and "above the limit 1.25 x" in run.stdout, run


def test_data_visible_only_after_a_delay_is_waited_for_then_judged(sandbox, gate, traffic, service_name):
    _previous, canary, url = _canary(sandbox, service_name, faults=["error_rate:0.5"])
    sandbox.set_metrics_delay(12)
    traffic(url, 30)
    run = gate(service_name, url, "--metrics-timeout=85", "-k", "not baseline and error-rate")  # 60 s sample + 12 s
    assert run.failed() == {"test_metric[error-rate]"}, run  # judged on the data, once it was visible
    seen = [int(n) for n in re.findall(rf"waiting for Cloud Monitoring: (\d+) of 20 requests of {canary} visible", run.stdout)]
    assert seen and seen[0] < 20, run
    # the 30 sent, and the gate's own readiness request at its start (it reached the instance: counted too)
    visible = re.search(rf"\b(\d+) requests of {canary} visible after waiting", run.stdout)
    assert visible and 30 <= int(visible.group(1)) <= 32, run
    # one request_count call per poll, then nothing else: the error rate needs no distribution
    assert f"; {len(seen) + 1} ListTimeSeries calls" in run.stdout, run


def test_no_traffic_is_no_data_and_not_verified_by_default(sandbox, gate, service_name):
    _previous, canary, url = _canary(sandbox, service_name)
    run = gate(service_name, url, "--metrics-timeout=2")
    assert run.returncode == NOT_VERIFIED_EXIT, run  # the gate could not check: never a FAIL, never a rollback
    assert not run.failed() and not run.passed(), run
    assert "NOT VERIFIED (--metrics-no-data fail): only 0 of the 20 requests needed" in run.stdout, run
    assert "revgate: metrics NOT VERIFIED" in run.stdout, run
    assert "NOT VERIFIED tests_metrics/test_metrics.py::test_metric[error-rate]" in run.stdout, run


def test_no_traffic_with_no_data_skip_is_skipped_as_not_verified(sandbox, gate, service_name):
    _previous, _canary_rev, url = _canary(sandbox, service_name)
    run = gate(service_name, url, "--metrics-timeout=2", "--metrics-no-data=skip")
    assert run.returncode == NOT_VERIFIED_EXIT, run  # only metric checks ran, all skipped: nothing verified
    assert "revgate verdict: NOT VERIFIED" in run.stdout, run
    assert not run.passed() and not run.failed(), run  # skipped, never passed
    assert "revgate: metrics NOT VERIFIED" in run.stdout, run
    assert run.stdout.count("NOT VERIFIED tests_metrics/test_metrics.py::") == len(ALL), run
    assert "not verified: only 0 of the 20 requests needed" in run.stdout, run


def test_warmup_requests_give_a_tag_only_revision_data(sandbox, gate, service_name):
    _previous, canary, url = _canary(sandbox, service_name)
    run = gate(service_name, url, SAMPLED_TIMEOUT, "--warmup-requests=25", "-k", "not baseline and error-rate")
    assert run.returncode == 0, run
    assert run.passed() == {"test_metric[error-rate]"}, run
    assert f"sent 25 warm-up requests to {url}/health (25 answered)" in run.stdout, run


def test_freshly_deployed_revision_has_its_utilizations_waited_for_not_failed(sandbox, gate, traffic, service_name):
    # deployed less than 5 s before a 60 s sample period ends and gated at once: its requests are in that
    # period, its first CPU sample (the second resource sample, 5 s after the first) in the next one
    for _attempt in range(3):
        time.sleep(max(0.0, seconds_to_sample_end() - 4.5))
        period_end = time.time() // 60 * 60 + 60
        revision = sandbox.deploy(service_name)
        traffic(sandbox.service_url(service_name), 25)
        if time.time() < period_end - 0.2:
            break
    else:
        raise AssertionError("could not deploy and send 25 requests within 4.5 s, three times")
    run = gate(service_name, sandbox.service_url(service_name), "--metrics-timeout=140", "-k", "utilization")
    assert run.returncode == 0, run
    assert run.passed() == {"test_metric[memory-utilization]", "test_metric[cpu-utilization]"}, run
    assert "NOT VERIFIED" not in run.stdout, run
    waits = re.findall(rf"waiting for Cloud Monitoring: no (.+) data of {revision} yet", run.stdout)
    assert waits and "container/cpu/utilizations" in waits[0], run
    # the 25 sent and the gate's own readiness request (it reached the instance: counted too)
    assert re.search(rf"\b2[5-7] requests of {revision} visible after waiting .*then waited for .*all visible after", run.stdout), run
    # a request_count call per request poll, one read of each utilization, then one call per missing metric per poll
    polls = len(re.findall(r"waiting for Cloud Monitoring: \d+ of 20 requests", run.stdout))
    expected = polls + 1 + 2 + sum(len(w.split(", ")) for w in waits)
    assert f"; {expected} ListTimeSeries calls" in run.stdout, run


def test_first_deploy_baseline_is_skipped_as_not_verified_even_with_no_data_fail(sandbox, gate, traffic, service_name):
    revision = sandbox.deploy(service_name)  # the service's first revision: nothing to compare with
    traffic(sandbox.service_url(service_name), 25)
    run = gate(service_name, sandbox.service_url(service_name), "--metrics-timeout=10", "--metrics-no-data=fail", "-k", "baseline")
    # skipped whatever --metrics-no-data says; with only these checks selected nothing was verified
    assert run.returncode == NOT_VERIFIED_EXIT and "revgate verdict: NOT VERIFIED" in run.stdout, run
    assert not run.passed() and not run.failed(), run  # skipped, never passed
    assert "revgate: metrics NOT VERIFIED" in run.stdout, run
    for check in BASELINE:
        assert f"NOT VERIFIED tests_metrics/test_metrics.py::{check}: not verified: no previous revision to compare with" in run.stdout, run
    assert f"(revision {revision})" in run.stdout and "inconclusive" not in run.stdout, run


def test_baseline_without_previous_traffic_is_inconclusive_not_a_pass(gate, staged):
    s = staged["canary-only"]  # the previous revision gets nothing in the window
    run = gate(s.service, s.url, "--metrics-timeout=10", "--metrics-no-data=skip", "-k", "baseline")
    assert run.returncode == NOT_VERIFIED_EXIT and not run.passed(), run  # only skipped checks: nothing verified
    assert "revgate verdict: NOT VERIFIED" in run.stdout, run
    assert "inconclusive: the previous revision" in run.stdout and "had 0 requests" in run.stdout, run
    assert "NOT VERIFIED tests_metrics/test_metrics.py::test_baseline[p95-latency]" in run.stdout, run


def test_requests_turned_away_before_an_instance_are_not_counted_and_warm_up_fails(
    sandbox, gate, queries_for, service_name
):
    from revgate.metrics_query import Window

    _previous, canary, url = _canary(sandbox, service_name)
    kill_revision(sandbox, canary)  # the tag URL still routes to it; the router answers 503 itself
    run = gate(service_name, url, SAMPLED_TIMEOUT, "--warmup-requests=25", "-k", "not baseline and error-rate")
    assert run.returncode == 1, run
    assert run.failed() == {"test_metric[error-rate]"}, run  # a failure, not "no data"
    assert "NOT VERIFIED" not in run.stdout.split("short test summary")[-1], run
    assert f"sent 25 warm-up requests to {url}/health (25 answered)" in run.stdout, run  # answered: by the router
    assert "none of the 25 warm-up requests sent to the revision is in run.googleapis.com/request_count" in run.stdout, run
    assert "Cloud Run counts only requests that reach an instance, so they were turned away before one" in run.stdout, run
    assert "or the wait was shorter than a 60 s sample" in run.stdout, run  # a 72 s wait, not Cloud Run's 240 s
    counts = queries_for(service_name, (canary,)).request_counts(Window.ending_now(600))
    assert counts.get(canary, {}) == {}, counts


def test_request_count_points_are_60_s_samples(sandbox, staged):
    from google.cloud import monitoring_v3

    from metric_checks.conftest import monitoring_client

    s = staged["healthy"]  # 40 requests to the service URL (the previous revision), 40 to the canary's tag URL
    now = time.time()
    series = list(
        monitoring_client(sandbox.env).list_time_series(
            request={
                "name": f"projects/{sandbox.project}",
                "filter": f'metric.type = "run.googleapis.com/request_count" AND resource.labels.service_name = "{s.service}"',
                "interval": {"start_time": {"seconds": int(now - 600)}, "end_time": {"seconds": int(now)}},
                "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
            },
            timeout=10,
        )
    )
    staged_until = (staged["sent"] // 60 + 1) * 60  # the end of the sample period of the last staged request
    by_revision = {}
    for ts in series:
        for p in ts.points:
            start, end = p.interval.start_time.timestamp(), p.interval.end_time.timestamp()
            assert end - start == 60 and end % 60 == 0, (start, end)  # one DELTA point per 60 s sample period
            assert end <= now - METRICS_DELAY  # written when its period ended, visible the delay later
            if end <= staged_until:  # later points hold the gates' own readiness requests
                revision = ts.resource.labels["revision_name"]
                by_revision[revision] = by_revision.get(revision, 0) + p.value.int64_value
    assert by_revision == {s.previous: 40, s.canary: 40}

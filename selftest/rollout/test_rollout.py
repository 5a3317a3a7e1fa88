"""The rollout, watched: a tagged revision carried through its steps, and rolled back seconds after it breaks.

Each test deploys a stable revision serving 100 % and a canary behind the tag ``canary`` at 0 %,
runs ``revgate --rollout ...`` against the tag URL as a team would, and asserts the exit code, the
one-line outcome, the rollout record and the traffic afterwards (read with the real run_v2 client).
"""

from __future__ import annotations

import json
import signal
import time

from rollout.conftest import SAMPLE_PERIOD, split, wait_for_split

from sandbox.control import Sandbox

PROBE = 1.0
"""Seconds between probes in these tests (--probe-interval 1s)."""
ONSET = 15.0
"""Seconds after its start at which a breaking canary breaks: after the checklist's first run, mid-soak."""


def _deploy(sandbox: Sandbox, service: str, faults: tuple[str, ...] = ()) -> tuple[str, str, str]:
    stable = sandbox.deploy(service)
    canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=list(faults))
    return stable, canary, sandbox.tag_url(service, "canary")


def _state(sandbox: Sandbox, service: str) -> dict | None:
    raw = dict(sandbox.get_service(service).annotations).get("revgate.dev/rollout")
    return json.loads(raw) if raw else None


def _failed_marks(sandbox: Sandbox, service: str) -> str:
    return dict(sandbox.get_service(service).annotations).get("revgate.dev/failed-revisions", "")


def test_healthy_rollout_reaches_100(sandbox, service, users, gate, tmp_path, webhook):
    hook, received = webhook
    stable, canary, url = _deploy(sandbox, service)
    users(service)
    run = gate(service, url, "--rollout=10,50,100", "--soak=3s", f"--probe-interval={PROBE:g}s", "--max-soak=40s",
               env={"REVGATE_NOTIFY": hook, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
    assert run.returncode == 0, run
    assert "revgate verdict: PASS" in run.output, run
    assert split(sandbox, service) == {canary: 100}
    tags = {e["tag"]: e["revision"] for e in sandbox.traffic(service) if e["tag"]}
    assert tags == {"canary": canary}, "the tag is kept"
    record = run.rollout
    assert record["status"] == "completed", record
    assert [s["percent"] for s in record["step_records"]] == [10, 50, 100]
    for step in record["step_records"]:
        assert step["verdict"] == "PASS", step
        assert step["probes"] >= 3 and step["probes_failed"] == 0, step
        assert step["requests_seen"] >= 20, "a step passes only once Monitoring shows min_requests of users' requests"
        assert step["samples_judged"] >= 1
        assert step["ended"] - step["started"] >= 3, "no soak ends before its time"
    assert _state(sandbox, service) is None, "a completed rollout leaves no state on the service"
    junit = (tmp_path / "junit.xml").read_text()
    assert all(f'name="step[{i}-{p}%]"' in junit for i, p in ((1, 10), (2, 50), (3, 100))), junit
    assert "traffic changed during the run, not by this gate" not in run.output
    summary = (tmp_path / "summary.md").read_text()
    assert "`step[3-100%]` | passed" in summary and "rollout (completed)" in summary, summary
    titles = [json.dumps(body) for body in received]
    for i, percent in ((1, 10), (2, 50), (3, 100)):
        assert any(f"step {i} of 3: {canary} at {percent} %" in t for t in titles), titles
    assert any("rollout of" in t and "completed" in t for t in titles), "a message at the end of the rollout"
    assert hook.rsplit("/", 1)[-1] not in run.output, "the webhook's secret part is never shown"


def test_pages_run_once_and_logs_are_read_during_each_soak(sandbox, service, users, gate):
    from rollout.conftest import PAGE_AND_LOGS

    stable, canary, url = _deploy(sandbox, service)
    users(service)
    run = gate(service, url, "--rollout=50,100", "--soak=3s", f"--probe-interval={PROBE:g}s", "--max-soak=40s",
               more=PAGE_AND_LOGS)
    assert run.returncode == 0, run
    assert split(sandbox, service) == {canary: 100}
    for step in run.rollout["step_records"]:
        assert step["verdict"] == "PASS" and step["pages_run"] == 1, step
        assert step["logs_readings"] >= 1, "a logs reading after the soak's end is part of the evidence"


def test_canary_breaking_mid_soak_is_rolled_back_within_a_probe_interval(sandbox, service, users, gate):
    before = time.time()
    stable, canary, url = _deploy(sandbox, service, faults=(f"error_rate:1@after={ONSET:g}s",))
    deployed = time.time()
    seen = users(service)
    run = gate(service, url, "--rollout=10,100", "--soak=60s", f"--probe-interval={PROBE:g}s")
    assert run.returncode == 1, run
    assert split(sandbox, service) == {stable: 100}, "back to the split from before the rollout"
    assert {e["tag"]: e["revision"] for e in sandbox.traffic(service) if e["tag"]} == {"canary": canary}
    step = run.rollout["step_records"][0]
    assert (step["percent"], step["verdict"], step["probes_failed"]) == (10, "FAIL", 1), step
    assert "answered 500" in step["message"], step
    assert run.rollback["status"] == "done" and run.rollback["trigger"]["test"] == "rollout::step[1-10%]", run.rollback
    # from the canary's first failing answer to the traffic restored: within one probe interval. The canary
    # broke ONSET s after its process started, which was while it was being deployed (its earliest
    # possible onset is ONSET s after the deploy began); a user may have met a 500 first, or not at all
    failed_at = _epoch(run.rollback["timings"]["first_failure_at"])
    restored_at = failed_at + run.rollback["timings"]["operation_done_s"]
    assert restored_at - (before + ONSET) <= PROBE + (deployed - before) + 0.5, (before, deployed, restored_at)
    first_error = seen.first_error_of(canary)
    if first_error is not None:
        assert restored_at - first_error <= PROBE + 0.5, (first_error, failed_at, restored_at)
    assert canary in _failed_marks(sandbox, service)


def test_latency_regression_is_caught_at_the_first_sample_that_shows_it(sandbox, service, users, gate):
    stable, canary, url = _deploy(sandbox, service, faults=(f"latency:1500ms@after={ONSET:g}s",))
    onset = time.time() + ONSET  # the canary started before its deploy returned: its onset is no later
    users(service)
    run = gate(service, url, "--rollout=10,100", "--soak=60s", f"--probe-interval={PROBE:g}s", p99=1000)
    assert run.returncode == 1, run
    step = run.rollout["step_records"][0]
    assert step["verdict"] == "FAIL" and "test_metric[p99-latency]" in step["message"], step
    assert step["probes_failed"] == 0, "the probes passed: only the latency metric saw the regression"
    assert split(sandbox, service) == {stable: 100}
    # the first sample holding slow requests is visible at the end of its 2 s period; the judgement
    # comes at the next probe tick after that (a slow probe may delay it by its 1.5 s)
    assert step["ended"] - onset < 2 * SAMPLE_PERIOD + 2 * PROBE + 1.5 + 1, (step, onset)


def test_no_traffic_to_the_canary_is_not_verified_and_holds_the_traffic(sandbox, service, gate):
    stable, canary, url = _deploy(sandbox, service)
    run = gate(service, url, "--rollout=10,100", "--soak=2s", f"--probe-interval={PROBE:g}s", "--max-soak=6s")
    assert run.returncode == 6, run
    assert "revgate verdict: NOT VERIFIED" in run.output, run
    assert split(sandbox, service) == {stable: 90, canary: 10}, "neither promoted nor rolled back"
    record = run.rollout
    assert record["status"] == "held", record
    assert "requests" in record["message"], "it names what was missing"
    assert "gcloud run services update-traffic" in record["message"] and f"{canary}=100" in record["message"], record
    assert f"{stable}=100" in record["message"], "and the command to go back"
    assert record["step_records"][0]["requests_seen"] < 20, "the gate's own probes are not users' requests"
    assert run.rollback["status"] == "not-needed"
    assert _state(sandbox, service)["step"] == 0, "the state stays: a rerun resumes"


def test_a_concurrent_deploy_stops_the_rollout_and_touches_nothing(sandbox, service, users, start_gate, tmp_path):
    from rollout.conftest import finish

    stable, canary, url = _deploy(sandbox, service)
    users(service)
    proc = start_gate(service, url, "--rollout=10,100", "--soak=60s", f"--probe-interval={PROBE:g}s")
    wait_for_split(sandbox, service, {stable: 90, canary: 10})
    other = sandbox.deploy(service, tag="hotfix", no_traffic=True)
    run = finish(proc, tmp_path)
    assert run.returncode == 6, run
    assert f"a new revision, {other}, was deployed during the rollout" in run.rollout["message"], run.rollout
    assert "revgate touched nothing" in run.rollout["message"]
    assert split(sandbox, service) == {stable: 90, canary: 10}
    assert run.rollback["status"] == "not-needed"
    assert canary not in _failed_marks(sandbox, service)


def test_sigterm_holds_the_traffic_and_resume_finishes_the_rollout(sandbox, service, users, start_gate, tmp_path):
    from rollout.conftest import finish

    stable, canary, url = _deploy(sandbox, service)
    users(service)
    proc = start_gate(service, url, "--rollout=10,100", "--soak=60s", f"--probe-interval={PROBE:g}s")
    wait_for_split(sandbox, service, {stable: 90, canary: 10})
    time.sleep(1.5)  # into the soak
    proc.send_signal(signal.SIGTERM)
    run = finish(proc, tmp_path)
    assert run.returncode == 2, run
    assert split(sandbox, service) == {stable: 90, canary: 10}, "held at the step"
    assert run.rollout["status"] == "interrupted" and "--resume" in run.rollout["message"], run.rollout
    assert _state(sandbox, service) == {**_state(sandbox, service), "revision": canary, "steps": [10, 100], "step": 0}

    resumed = finish(start_gate(service, url, "--rollout=10,100", "--soak=2s", f"--probe-interval={PROBE:g}s",
                                "--max-soak=40s", "--resume"), tmp_path)
    assert resumed.returncode == 0, resumed
    assert resumed.rollout["resumed_at_step"] == 1 and resumed.rollout["status"] == "completed", resumed.rollout
    assert split(sandbox, service) == {canary: 100}
    assert _state(sandbox, service) is None


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()

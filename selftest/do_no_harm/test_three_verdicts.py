"""Three verdicts: only a check that the revision failed rolls back. When the gate itself could not
check (its own crash here; no metric data in test_metrics_not_verified.py), the verdict is NOT
VERIFIED: exit 6, the reason listed, no rollback, no promotion, traffic untouched."""

from __future__ import annotations

from pathlib import Path

from do_no_harm.conftest import FAILED_KEY, last_line

NOT_VERIFIED_EXIT = 6

# A bug in revgate's own code, injected as a plugin: the JSON shape judge raises TypeError.
CRASH_PLUGIN = '''
import revgate.judge

def _broken(*args, **kwargs):
    raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

revgate.judge.shape_problems = _broken
import tests_smoke.test_api as api
api.shape_problems = _broken
'''


def _crash_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "revgate_crash_plugin.py").write_text(CRASH_PLUGIN)
    return {"PYTHONPATH": str(tmp_path)}


def test_revgates_own_crash_is_not_verified_and_never_rolls_back(sb, gate, service, traffic, annotations, canary, tmp_path):
    stable, candidate, url = canary(faults=())  # a healthy canary at 10 %
    before = traffic(service)
    sb.reset_calls()

    result = gate(service, url, "-p", "revgate_crash_plugin", "--promote=50", env=_crash_env(tmp_path))

    assert result.run.returncode == NOT_VERIFIED_EXIT, result.run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    verdict = last_line(result.output, "revgate verdict:")
    assert verdict.startswith(f"revgate verdict: NOT VERIFIED {candidate} ("), verdict
    assert "NOT VERIFIED test_api[stats]: revgate crashed: TypeError: unsupported operand" in result.output
    assert "ROLLBACK" not in result.output
    assert "not promoted to 50 %: the verdict is NOT VERIFIED" in result.output
    assert FAILED_KEY not in annotations(service)
    assert result.record["status"] == "not-needed"
    assert "Traceback" not in result.output


def test_a_failure_next_to_a_crash_is_still_a_fail(sb, gate, service, traffic, canary, tmp_path):
    stable, candidate, url = canary(faults=("ws_reject",))
    result = gate(service, url, "-p", "revgate_crash_plugin", env=_crash_env(tmp_path))

    assert result.run.returncode == 1, result.run
    assert last_line(result.output, "revgate verdict:").startswith("revgate verdict: FAIL"), result.output
    assert traffic(service).split == {stable: 100}


def test_not_verified_under_xdist_too(sb, gate, service, traffic, canary, tmp_path):
    stable, candidate, url = canary(faults=())
    before = traffic(service)
    sb.reset_calls()

    result = gate(service, url, "-p", "revgate_crash_plugin", "-n", "2", env=_crash_env(tmp_path))

    assert result.run.returncode == NOT_VERIFIED_EXIT, result.run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert last_line(result.output, "revgate verdict:").startswith(f"revgate verdict: NOT VERIFIED {candidate}")

"""The revision answers its health endpoint, once ready (a cold start is waited for, within a budget)."""

from __future__ import annotations

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

from revgate.checklist import Health
from revgate.judge import fail, missing_subset
from revgate.target import Probe, Target


def _when_ready(target: Target, check: Health) -> tuple[Probe, int]:
    """Retry while the revision answers a not-ready status, until the budget is spent; (last probe, attempts)."""
    retrying = Retrying(
        stop=stop_after_delay(check.ready_budget),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        retry=retry_if_result(lambda p: p.status in check.retry_statuses),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    probe = retrying(target.request, "GET", check.path, auth=False)
    attempts = retrying.statistics.get("attempt_number", 1)
    return probe, attempts


def test_health(target: Target, health_check: Health) -> None:
    probe, attempts = _when_ready(target, health_check)
    waited = f" ({attempts} attempts within the {health_check.ready_budget:g} s readiness budget)" if attempts > 1 else ""
    if probe.status != health_check.status:
        fail(probe.describe(f"{health_check.status}{waited}"))
    value, why = probe.json()
    if why:
        fail(f"{why}; {probe.describe()}")
    problems = missing_subset(value, health_check.json_subset)
    if problems:
        fail(f"unexpected health answer: {'; '.join(problems)}; {probe.describe()}")

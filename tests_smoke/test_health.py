"""The revision answers its health endpoint, once ready (a cold start is waited for, within a budget).

Only what ``[health]`` says is checked: the status, and ``json`` or ``contains`` when given.
"""

from __future__ import annotations

import pytest
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

from revgate.checklist import Health, statuses
from revgate.errors import not_verified
from revgate.judge import fail, missing_subset
from revgate.plugin import readiness_of
from revgate.settings import settings_key
from revgate.target import Probe, Target
from revgate.token_check import REFUSED, serving_revision_refuses


def _when_ready(target: Target, check: Health, budget: float) -> tuple[Probe, int]:
    """Retry while the revision answers a not-ready status, until the budget is spent; (last probe, attempts)."""
    retrying = Retrying(
        stop=stop_after_delay(budget),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        retry=retry_if_result(lambda p: p.status in check.retry_statuses),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    probe = retrying(target.request, "GET", check.path, auth=check.auth, check=check)
    attempts = retrying.statistics.get("attempt_number", 1)
    return probe, attempts


def test_health(target: Target, health_check: Health, request: pytest.FixtureRequest) -> None:
    check = health_check
    if check.auth and not target.has_token:
        fail(f"GET {target.url(check.path)} needs the API token (auth = true), and none was given: "
             "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE")
    # the readiness budget is spent once, at session start (revgate.plugin.revgate_readiness): never twice
    ready = readiness_of(request.config)
    spent = ready is not None and not ready["ready"]
    probe, attempts = _when_ready(target, check, 0.0 if spent else check.ready_budget)
    if spent:
        attempts = ready["attempts"]
    waited = f" ({attempts} attempts within the {check.ready_budget:g} s readiness budget)" if attempts > 1 else ""
    codes = statuses(check.status)
    if probe.status not in codes or not probe.answered:
        if probe.status in REFUSED:
            # wrong credentials, or a revision that broke its auth? the serving revision tells them apart
            reason = serving_revision_refuses(request.config, request.config.stash[settings_key], check, probe,
                                              auth=bool(check.auth and target.has_token))
            if reason is not None:
                not_verified(reason)
        fail(probe.describe(f"{' or '.join(map(str, codes))}{waited}"))
    if check.contains is not None and check.contains not in probe.body.decode("utf-8", errors="replace"):
        fail(f"unexpected health answer: the body does not contain {check.contains!r}; {probe.describe()}")
    if check.json_subset is not None:
        value, why = probe.json()
        if why:
            fail(f"{why}; {probe.describe()}")
        problems = missing_subset(value, check.json_subset)
        if problems:
            fail(f"unexpected health answer: {'; '.join(problems)}; {probe.describe()}")

"""Cloud Logging checks of the revision under test: one test per ``[[logs]]`` entry (``test_logs[errors]``).

Outcomes: pass (the logs were proven complete and hold no problem entry), fail (more problem entries
than ``max_entries``: the count, the first entries, a Logs Explorer link), or NOT VERIFIED (the logs
could not be proven complete, Cloud Logging did not answer, or the service is not known) -- never a
silent pass.
"""

from __future__ import annotations

import time

import pytest

from revgate.checklist import Checklist, Logs, statuses
from revgate.errors import NotVerified
from revgate.judge import fail
from revgate.logs import OWN_REFUSALS, LogsWindow, judge_logs
from revgate.logs_query import LoggingUnavailable, LogQueries
from revgate.settings import Settings

# With ``-n N --dist loadgroup`` the logs checks share one worker, hence one probe and one wait.
pytestmark = pytest.mark.xdist_group("revgate-logs")


def test_logs(
    logs_check: Logs,
    logs_window: LogsWindow,
    log_queries: LogQueries,
    revision_created: float | None,
    run_started: float,
    checklist: Checklist,
    settings: Settings,
) -> None:
    if logs_check.since == "revision" and revision_created is not None:
        start, label = revision_created, "the revision's creation"
    else:
        start, label = run_started + logs_window.offset, "the start of this run"  # on Cloud Logging's clock
    label += f" ({time.strftime('%H:%M:%S', time.gmtime(start))} UTC)"
    try:
        own = OWN_REFUSALS | frozenset(checklist.health.retry_statuses if checklist.health else ())
        # an [[api]] check's expected 4xx (status = [404]) is the gate's own request, judged there
        own |= frozenset(code for api in checklist.api for code in statuses(api.status) if 400 <= code < 500)
        secrets = settings.secrets()  # longest first

        def scrub(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, "***")
            return text

        verdict = judge_logs(
            logs_check, log_queries, start=start, window=logs_window, start_label=label, own_statuses=own, scrub=scrub
        )
    except LoggingUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    if verdict.outcome == "fail":
        fail(verdict.message)
    if verdict.outcome == "not verified":
        raise NotVerified(verdict.message)

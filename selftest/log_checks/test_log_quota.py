"""Cloud Logging's read quota (60 ListLogEntries a minute per project): the gate counts its pages
against a budget, and a RESOURCE_EXHAUSTED is retried no sooner than 30 s, within the deadline, else
the logs checks are NOT VERIFIED naming the quota; never a loop that hammers the API."""

from __future__ import annotations

import time

from revgate.errors import NOT_VERIFIED_EXIT
from revgate.logs_query import QUOTA_BACKOFF, LoggingUnavailable, LogQueries, LogScope

from .conftest import _client, serving


def test_an_exhausted_quota_without_time_to_wait_is_not_verified_naming_it(sandbox, gate, service_name):
    rev = sandbox.deploy(service_name, faults=["log_errors"])
    sandbox.inject("ListLogEntries", "RESOURCE_EXHAUSTED", -1)
    try:
        before = sandbox.calls("ListLogEntries")
        run = gate(service_name, sandbox.service_url(service_name), "--logs-timeout=5", "--rollback=on-failure")
        asked = sandbox.calls("ListLogEntries") - before
    finally:
        sandbox.inject("ListLogEntries", "RESOURCE_EXHAUSTED", 0)
    assert run.returncode == NOT_VERIFIED_EXIT, run
    assert ("Cloud Logging's read quota (60 ListLogEntries requests a minute per project) is exhausted, and no 30 s "
            "were left to wait before retrying: the logs cannot be verified") in run.stdout, run
    assert asked <= 2, asked  # one refused call per query, no retry loop
    assert serving(sandbox, service_name) == {rev: 100}, run


def _queries(sandbox, service: str, revision: str, **kwargs) -> LogQueries:
    scope = LogScope(project=sandbox.project, region=sandbox.region, service=service, revisions=(revision,))
    return LogQueries(_client(sandbox), scope, timeout=5, retry_deadline=5, **kwargs)


def test_resource_exhausted_is_retried_after_30_s_within_the_deadline(sandbox, service_name):
    rev = sandbox.deploy(service_name)
    slept: list[float] = []
    told: list[str] = []
    queries = _queries(sandbox, service_name, rev, deadline=time.monotonic() + 120, sleep=slept.append, on_wait=told.append)
    sandbox.inject("ListLogEntries", "RESOURCE_EXHAUSTED", 1)
    before = sandbox.calls("ListLogEntries")
    entries, complete = queries.list(f'resource.labels.revision_name="{rev}"', what="test")
    assert complete and entries, entries  # the retry read the revision's entries
    assert slept == [QUOTA_BACKOFF] and QUOTA_BACKOFF >= 30, slept
    assert sandbox.calls("ListLogEntries") - before == 2
    assert told and "is retried in 30 s" in told[0], told


def test_the_budget_waits_for_the_oldest_call_to_age_out(sandbox, service_name):
    rev = sandbox.deploy(service_name)
    slept: list[float] = []
    queries = _queries(sandbox, service_name, rev, budget=3, sleep=slept.append)
    for _ in range(3):
        queries.list(f'resource.labels.revision_name="{rev}"', what="test")
    assert not slept
    queries.list(f'resource.labels.revision_name="{rev}"', what="test")
    assert len(slept) == 1 and 55 < slept[0] <= 60, slept  # the fourth call in a minute waited
    assert queries.calls == 4
    late = _queries(sandbox, service_name, rev, budget=1, sleep=slept.append, deadline=time.monotonic() + 5)
    late.list(f'resource.labels.revision_name="{rev}"', what="test")
    try:
        late.list(f'resource.labels.revision_name="{rev}"', what="test")
    except LoggingUnavailable as exc:
        assert "ListLogEntries calls a minute" in str(exc)
    else:
        raise AssertionError("the budget let a call through past the deadline")

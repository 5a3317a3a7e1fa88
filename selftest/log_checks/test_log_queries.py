"""The queries the gate sends Cloud Logging, and how it reads what ListLogEntries answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from revgate.logs_query import LogQueries, LogScope, kinds_filter

SCOPE = LogScope(project="123456789012", region="europe-west1", service="web", revisions=("web-00002",))


def test_kinds_are_matched_by_log_id_whatever_the_project_is_written_as():
    only = kinds_filter(["stdout", "stderr"])
    assert only == '(log_id("run.googleapis.com/stdout") OR log_id("run.googleapis.com/stderr"))'
    assert "projects/" not in only  # a project number in --project cannot make it miss the logs
    every = kinds_filter(["stdout", "stderr", "requests", "system", "other"])
    assert every == 'NOT logName:"cloudaudit.googleapis.com"'  # every log name of the resource but audit logs
    but_requests = kinds_filter(["stdout", "stderr", "system", "other"])
    assert but_requests == 'NOT (log_id("run.googleapis.com/requests")) AND NOT logName:"cloudaudit.googleapis.com"'


@dataclass
class _Page:  # the shape of ListLogEntriesResponse that the client's pager yields
    entries: list = field(default_factory=list)
    next_page_token: str = ""


@dataclass
class _Pager:
    pages_given: list

    @property
    def pages(self):
        yield from self.pages_given


@dataclass
class _Client:
    """ListLogEntries answering empty pages that still have a next page token: the search "did not have
    time to search all the possible log entries" (google/logging/v2/logging.proto)."""

    requests: list = field(default_factory=list)

    def list_log_entries(self, *, request, timeout, retry):
        self.requests.append(request)
        return _Pager([_Page([], "more") for _ in range(30)])


def test_empty_pages_with_a_token_are_an_unfinished_search_not_a_pass():
    client = _Client()
    queries = LogQueries(client, SCOPE, max_pages=4)
    entries, complete = queries.list("severity>=ERROR", what="test")
    assert entries == [] and not complete
    assert queries.unfinished
    assert queries.calls == 4  # every page is a call against the quota
    assert client.requests[0]["resource_names"] == ["projects/123456789012"]


def test_an_unfinished_search_is_not_verified_and_says_so():
    from revgate.checklist import Logs
    from revgate.logs import LogsWindow, judge_logs

    queries = LogQueries(_Client(), SCOPE, max_pages=4)
    window = LogsWindow(end=2.0, complete=True, waited=0.0, probe_url="https://web/health")
    verdict = judge_logs(Logs(id="errors"), queries, start=1.0, window=window, start_label="the revision's creation")
    assert verdict.outcome == "not verified", verdict
    assert "Cloud Logging's search of web-00002 did not finish within 4 pages" in verdict.message, verdict
    assert "more than" not in verdict.message  # not the message of too many entries

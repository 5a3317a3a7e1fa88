"""The sandbox's Cloud Logging, in process: Cloud Run's stdout/stderr parsing, the filter subset, and
the ListLogEntries API answering the real ``LoggingServiceV2Client`` as Cloud Logging does."""

from __future__ import annotations

import json

import os
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.api_core import exceptions

from revgate.google_clients import LOGGING_ENDPOINT_ENV, bounded_retry, logging_client
from sandbox.log_capture import container_entry, log_name, request_entry, request_severity, resource_labels
from sandbox.log_filter import InvalidFilter, compile_filter
from sandbox.log_store import LogStore
from sandbox.logging_api import logging_service_handler

PROJECT = "demo-project"
LABELS = resource_labels(project=PROJECT, region="europe-west1", service="emergence", revision="emergence-00002")
T0 = 1_700_000_000.0


def _line(text: str, stream: str = "stdout", when: float = T0) -> dict:
    entry = container_entry(text, stream=stream, project=PROJECT, labels=LABELS, when=when)
    assert entry is not None
    return entry


# -- what Cloud Run makes of a line ---------------------------------------------------------------


def test_a_plain_line_is_text_at_default_severity():
    entry = _line("Listening on port 8080\n", stream="stderr")
    assert entry["textPayload"] == "Listening on port 8080"
    assert entry["severity"] == "DEFAULT"
    assert entry["logName"] == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstderr"
    assert entry["resource"] == {"type": "cloud_run_revision", "labels": LABELS}
    assert "jsonPayload" not in entry


def test_a_json_line_is_structured_with_its_severity_and_special_fields():
    entry = _line(
        '{"severity": "warning", "message": "slow", "user": 7, "logging.googleapis.com/labels": {"team": "a"},'
        ' "logging.googleapis.com/trace": "projects/p/traces/abc", "time": "2026-01-02T03:04:05Z"}'
    )
    assert entry["severity"] == "WARNING"
    assert entry["jsonPayload"] == {"message": "slow", "user": 7}  # the special fields left the payload
    assert entry["labels"]["team"] == "a"
    assert entry["trace"] == "projects/p/traces/abc"
    assert entry["timestamp"] == "2026-01-02T03:04:05Z"
    assert "textPayload" not in entry


def test_json_that_is_not_an_object_and_unknown_severities_stay_plain():
    assert _line("[1, 2]")["textPayload"] == "[1, 2]"
    assert _line('{"severity": "LOUD", "message": "x"}')["severity"] == "DEFAULT"
    assert _line('{"message": "no severity"}')["severity"] == "DEFAULT"
    assert container_entry("   \n", stream="stdout", project=PROJECT, labels=LABELS, when=T0) is None


def test_only_logseverity_names_and_warn_set_a_severity():
    """Cloud Run takes the LogSeverity names (and WARN): FATAL or ERR are no severity there (DEFAULT)."""
    seen = {word: _line(json.dumps({"severity": word, "message": "m"}))["severity"] for word in ("warn", "FATAL", "ERR", "critical")}
    assert seen == {"warn": "WARNING", "FATAL": "DEFAULT", "ERR": "DEFAULT", "critical": "CRITICAL"}


def test_log_id_matches_the_log_whatever_the_project_is_written_as():
    entry = _line("hello")
    assert compile_filter('log_id("run.googleapis.com/stdout")')(entry)
    assert not compile_filter('log_id("run.googleapis.com/stderr")')(entry)
    numbered = {**entry, "logName": "projects/123456789012/logs/run.googleapis.com%2Fstdout"}
    assert compile_filter('log_id("run.googleapis.com/stdout")')(numbered)


def test_request_log_severity_follows_the_status():
    assert [request_severity(s) for s in (200, 302, 404, 429, 500, 503)] == ["INFO", "INFO", "WARNING", "WARNING", "ERROR", "ERROR"]
    entry = request_entry(project=PROJECT, labels=LABELS, when=T0, method="GET", url="https://x/health", status=503,
                          latency_s=0.25, protocol="HTTP/1.1")
    assert entry["logName"] == log_name(PROJECT, "requests")
    assert entry["httpRequest"]["status"] == 503 and entry["httpRequest"]["latency"].startswith("0.25")


# -- the filter subset ----------------------------------------------------------------------------


def test_filter_comparisons_and_precedence():
    error = _line('{"severity": "ERROR", "message": "boom Traceback"}')
    info = _line("hello world")
    match = lambda text, entry: compile_filter(text)(entry)  # noqa: E731
    assert match("severity>=ERROR", error) and not match("severity>=ERROR", info)
    assert match("severity>=400", error)
    assert match('jsonPayload.message=~"Trace\\\\w+"', error)
    assert match('textPayload:"WORLD"', info)  # has: a case-insensitive substring
    assert not match('textPayload="hello"', info)
    assert match('resource.labels.revision_name="emergence-00002"', info)
    # OR binds tighter than AND: this is (A OR B) AND C
    assert not match('severity>=ERROR OR textPayload:"hello" AND resource.labels.location="us-central1"', info)
    assert match('NOT severity>=ERROR', info)
    assert match(f'timestamp>="2023-11-14T22:13:19Z" timestamp<="2023-11-14T22:13:21.5Z"', info)  # juxtaposition: AND
    assert not match('timestamp>"2023-11-14T22:13:20.000001Z"', info)
    assert not match('jsonPayload.missing="x"', info) and not match('jsonPayload.missing!="x"', info)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Traceback", "no global search terms"),
        ('sample(insertId, 0.5)', "functions are not supported"),
        ('log_id(stdout)', "log_id takes one quoted log id"),
        ('protoPayload.methodName="x"', "field 'protoPayload.methodName' is not supported"),
        ('timestamp>="yesterday"', "is not an RFC 3339 timestamp"),
        ('severity>=LOUD', "is not a LogSeverity"),
        ('(severity>=ERROR', "the filter ends too early"),
        ('textPayload=~"("', "is not a valid RE2 regular expression"),
        ('textPayload=~"(?<=x)y"', "is not a valid RE2 regular expression"),
    ],
)
def test_filter_refuses_what_it_does_not_support(text, fragment):
    with pytest.raises(InvalidFilter, match=None) as info:
        compile_filter(text)
    assert fragment in str(info.value)


# -- the API, through the real client ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 100

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LogStore, Clock, object]]:
    clock = Clock()
    store = LogStore(project=PROJECT, clock=clock)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([logging_service_handler(store)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    saved = os.environ.get(LOGGING_ENDPOINT_ENV)
    os.environ[LOGGING_ENDPOINT_ENV] = f"127.0.0.1:{port}"
    try:
        client = logging_client()
    finally:
        if saved is None:
            os.environ.pop(LOGGING_ENDPOINT_ENV)
        else:
            os.environ[LOGGING_ENDPOINT_ENV] = saved
    for i in range(7):
        store.write(_line(f'{{"severity": "ERROR", "message": "error {i}"}}', when=T0 + i))
    store.write(_line("plain", when=T0 + 10))
    yield store, clock, client
    server.stop(0)


def _list(client, **request):
    request.setdefault("resource_names", [f"projects/{PROJECT}"])
    return client.list_log_entries(request=request, timeout=5, retry=bounded_retry(deadline=2))


def test_list_orders_pages_and_filters_like_cloud_logging(served):
    store, clock, client = served
    pager = _list(client, filter="severity>=ERROR", order_by="timestamp desc", page_size=3)
    pages = list(pager.pages)
    assert [len(p.entries) for p in pages] == [3, 3, 1]
    messages = [e.json_payload["message"] for p in pages for e in p.entries]
    assert messages == [f"error {i}" for i in reversed(range(7))]
    assert [e.text_payload for e in _list(client, filter='textPayload="plain"')] == ["plain"]


def test_entries_show_only_after_the_visibility_delay(served):
    store, clock, client = served
    store.visibility_delay = 150
    try:
        assert list(_list(client, filter="severity>=ERROR")) == []  # written at T0 + 100, visible from T0 + 250
        clock.now += 160
        assert len(list(_list(client, filter="severity>=ERROR"))) == 7
    finally:
        store.visibility_delay = 0


@pytest.mark.parametrize(
    ("request_fields", "error", "fragment"),
    [
        ({"filter": "Traceback"}, exceptions.InvalidArgument, "no global search terms"),
        ({"resource_names": ["organizations/1"]}, exceptions.InvalidArgument, "projects/PROJECT_ID only"),
        ({"resource_names": ["projects/other"]}, exceptions.PermissionDenied, "project 'other'"),
        ({"order_by": "severity desc"}, exceptions.InvalidArgument, "only \"timestamp asc\" and \"timestamp desc\""),
        ({"page_size": 1001}, exceptions.InvalidArgument, "page_size 1001"),
        ({"page_token": "bogus"}, exceptions.InvalidArgument, "page_token"),
    ],
)
def test_the_fake_refuses_bad_requests(served, request_fields, error, fragment):
    _, _, client = served
    with pytest.raises(error) as info:
        list(_list(client, **request_fields))
    assert fragment in info.value.message


def test_write_log_entries_adds_entries_the_list_returns(served):
    from google.cloud.logging_v2.types import LogEntry

    store, _, client = served
    client.write_log_entries(
        request={
            "log_name": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
            "resource": {"type": "cloud_run_revision", "labels": LABELS},
            "entries": [LogEntry(text_payload="written through the API", severity="ERROR")],
        },
        timeout=5,
    )
    found = list(_list(client, filter='textPayload:"through the API"'))
    assert len(found) == 1 and found[0].resource.labels["revision_name"] == "emergence-00002"

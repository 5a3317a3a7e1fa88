"""Cloud Logging queries of a Cloud Run revision's logs (``ListLogEntries``), and the Logs Explorer link.

Filters use only the documented Logging query language
(https://cloud.google.com/logging/docs/view/logging-query-language): comparisons of
``resource.type``, ``resource.labels.service_name`` / ``location`` / ``revision_name``, ``logName``,
``severity``, ``timestamp``, ``textPayload``, ``jsonPayload.message`` and ``httpRequest.requestUrl``,
joined with ``AND`` and parenthesized ``OR`` groups (``OR`` binds tighter than ``AND`` in that
language, so every group is parenthesized anyway). Cloud Run's log names
(https://cloud.google.com/run/docs/logging) are ``projects/P/logs/run.googleapis.com%2Fstdout``,
``%2Fstderr`` (container logs), ``%2Frequests`` (request logs) and ``%2Fvarlog%2Fsystem`` (system
logs). An application that logs through a Cloud Logging client library writes other log names of the
same ``cloud_run_revision`` resource (Python's ``CloudLoggingHandler`` writes ``python``, Java's
logback appender ``java.log``): the kind ``other`` reads them, and the default (every kind) reads
every log name of the revision's resource. The audit logs (``cloudaudit.googleapis.com``) record
control-plane calls, not what a revision does, and are never read.

Log names are matched with ``log_id("run.googleapis.com/stdout")`` (the query language's
``log_id`` function), not ``logName="projects/P/logs/..."``: ``logName`` carries the project ID
("projects/[PROJECT_ID]/logs/[LOG_ID]", google/logging/v2/log_entry.proto), so a ``--project`` given
as a project number would match nothing there.

Every call passes an explicit ``timeout`` and a bounded ``retry``, and counts against a budget of
ListLogEntries calls per minute (one per page; Cloud Logging allows 60 a minute per project,
https://cloud.google.com/logging/quotas): the gate takes at most :data:`CALLS_PER_MINUTE` of them,
waiting for the oldest to age out rather than asking faster. RESOURCE_EXHAUSTED (the quota spent by
someone else too) is retried at least 30 s later, as Google asks for 429 errors
(https://cloud.google.com/service-usage/docs/troubleshooting), while the caller's deadline allows;
otherwise, like a refusal or an unreachable API, it raises :class:`LoggingUnavailable` with one
line saying what failed (naming the quota).
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote

__all__ = [
    "CALLS_PER_MINUTE",
    "LOG_IDS",
    "QUOTA_BACKOFF",
    "Entry",
    "LogQueries",
    "LogScope",
    "LoggingUnavailable",
    "explorer_link",
    "log_name",
    "rfc3339",
]

LOG_IDS = {
    "stdout": "run.googleapis.com/stdout",
    "stderr": "run.googleapis.com/stderr",
    "requests": "run.googleapis.com/requests",
    "system": "run.googleapis.com/varlog/system",
}
"""Kind of log -> the log id Cloud Run writes it under (``other``: any other log id of the resource)."""
KINDS = (*LOG_IDS, "other")
AUDIT = "cloudaudit.googleapis.com"
CALLS_PER_MINUTE = 30
"""ListLogEntries calls (pages) the gate makes in any 60 s: half of the project's quota of 60 a minute
(https://cloud.google.com/logging/quotas), the other half left to the team's own readers."""
QUOTA_BACKOFF = 30.0
"""Seconds before a call refused RESOURCE_EXHAUSTED is retried: "For 429 errors, the minimum retry
interval is 30 seconds" (https://cloud.google.com/service-usage/docs/troubleshooting)."""
QUOTA = "Cloud Logging's read quota (60 ListLogEntries requests a minute per project)"
"""https://cloud.google.com/logging/quotas"""
RESOURCE_TYPE = "cloud_run_revision"
PAGE_SIZE = 1000
"""The largest page ListLogEntries allows (google/logging/v2/logging.proto)."""
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]+$")


class LoggingUnavailable(Exception):
    """Cloud Logging could not answer a query: the message is one line, for the user."""


def log_name(project: str, kind: str) -> str:
    """``projects/P/logs/run.googleapis.com%2Fstdout``: the log id URL-encoded, as LogEntry.log_name has it."""
    return f"projects/{project}/logs/{quote(LOG_IDS[kind], safe='')}"


def log_id_filter(kind: str) -> str:
    """``log_id("run.googleapis.com/stdout")``: the log of ``kind``, whatever the project is written as."""
    return f"log_id({_quoted(LOG_IDS[kind])})"


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, kw_only=True)
class LogScope:
    """What is read: the service, its region and project, the revision(s) under test."""

    project: str
    region: str
    service: str
    revisions: tuple[str, ...]

    def __post_init__(self) -> None:
        for value in (self.region, self.service, *self.revisions):
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"{value!r} is not a Cloud Run name (letters, digits, '-', '_', '.')")
        if not self.revisions:
            raise ValueError("no revision under test")

    def describe(self) -> str:
        return ", ".join(self.revisions)

    def resource_filter(self) -> list[str]:
        revisions = " OR ".join(f"resource.labels.revision_name={_quoted(r)}" for r in self.revisions)
        return [
            f"resource.type={_quoted(RESOURCE_TYPE)}",
            f"resource.labels.service_name={_quoted(self.service)}",
            f"resource.labels.location={_quoted(self.region)}",
            f"({revisions})",
        ]


def time_filter(start: float, end: float) -> list[str]:
    return [f"timestamp>={_quoted(rfc3339(start))}", f"timestamp<={_quoted(rfc3339(end))}"]


def kinds_filter(kinds: Sequence[str]) -> str:
    """The log names of ``kinds``: Cloud Run's own by ``log_id``; with ``other``, every log name of the
    resource but the unselected kinds' (and never the audit logs)."""
    if "other" not in kinds:
        return "(" + " OR ".join(log_id_filter(k) for k in kinds) + ")"
    left_out = [log_id_filter(k) for k in LOG_IDS if k not in kinds]
    terms = [f"NOT logName:{_quoted(AUDIT)}"]
    if left_out:
        terms.insert(0, "NOT (" + " OR ".join(left_out) + ")")
    return " AND ".join(terms)


def container_filter() -> str:
    """Every log name the instance itself writes: not the serving layer's request logs, not Cloud Run's
    system logs, not the audit logs."""
    return f"NOT ({log_id_filter('requests')} OR {log_id_filter('system')}) AND NOT logName:{_quoted(AUDIT)}"


def problems_filter(min_severity: str, deny: Sequence[str]) -> str:
    """``severity>=ERROR``, or with ``deny`` patterns also any entry whose text matches one (RE2 ``=~``)."""
    terms = [f"severity>={min_severity}"]
    for pattern in deny:
        terms += [f"textPayload=~{_quoted(pattern)}", f"jsonPayload.message=~{_quoted(pattern)}"]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def explorer_link(project: str, query: str, start: float, end: float) -> str:
    """A Logs Explorer URL showing ``query`` over ``[start, end]``
    (``https://console.cloud.google.com/logs/query;query=...;timeRange=START%2FEND?project=P``)."""
    return (
        "https://console.cloud.google.com/logs/query;query="
        + quote(query, safe="")
        + ";timeRange="
        + quote(f"{rfc3339(start)}/{rfc3339(end)}", safe="")
        + "?project="
        + quote(project, safe="")
    )


@dataclass(frozen=True)
class Entry:
    """One log entry, reduced to what a check judges and shows."""

    timestamp: float
    severity: str
    kind: str
    text: str
    revision: str
    status: int = 0
    """``httpRequest.status`` of a request log entry (0 otherwise)."""
    user_agent: str = ""
    instance: str = ""
    """``labels.instanceId``: the instance that wrote the entry or served the request ('' when none)."""

    def line(self, width: int = 160, scrub: Callable[[str], str] = str) -> str:
        stamp = datetime.fromtimestamp(self.timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{stamp} {self.severity} {self.kind} {self.revision}: {shown_text(self.text, width, scrub)}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown_text(text: str, width: int, scrub: Callable[[str], str] = str) -> str:
    """An entry's message as a report shows it: scrubbed of secrets *before* it is cut to ``width``
    (a cut through a secret would leave a piece that no scrub recognizes), on one line, and with
    control characters written as ``\\x1b`` (a log line's terminal escapes must not rewrite the
    gate's own output)."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(scrub(text).split()))
    return text if len(text) <= width else text[: width - 3] + "..."


def _kind_of(name: str) -> str:
    """``stdout``, ``requests``...: Cloud Run's kinds by name; any other log, its decoded log id (``python``)."""
    log_id = unquote(name.partition("/logs/")[2])
    for kind, known in LOG_IDS.items():
        if log_id == known:
            return kind
    return log_id or name


def entry_of(pb: Any) -> Entry:
    """An :class:`Entry` from a ``LogEntry`` (proto-plus): its message is ``textPayload``, else
    ``jsonPayload.message``, else the JSON payload itself, else the request line of ``httpRequest``."""
    from google.cloud.logging_v2.types import LogEntry

    raw = LogEntry.pb(pb) if not hasattr(pb, "DESCRIPTOR") else pb
    severity_name = raw.DESCRIPTOR.fields_by_name["severity"].enum_type.values_by_number.get(raw.severity)
    severity = severity_name.name if severity_name is not None else str(raw.severity)
    text = raw.text_payload
    if not text and raw.HasField("json_payload"):
        from google.protobuf import json_format

        payload = json_format.MessageToDict(raw.json_payload)
        text = str(payload["message"]) if "message" in payload else json.dumps(payload, sort_keys=True)
    status, agent = 0, ""
    if raw.HasField("http_request"):
        http = raw.http_request
        status, agent = int(http.status), http.user_agent
        line = f"{http.request_method} {http.request_url} {http.status}"
        text = f"{line} {text}".strip() if text else line
    stamp = raw.timestamp.seconds + raw.timestamp.nanos / 1e9
    return Entry(
        stamp, severity, _kind_of(raw.log_name), text, raw.resource.labels.get("revision_name", ""), status, agent,
        raw.labels.get("instanceId", ""),
    )


@dataclass
class LogQueries:
    """The ListLogEntries calls of one run; ``calls`` counts every call (one per page).

    ``deadline`` (``time.monotonic()``), when set, bounds the waits: the budget's and the backoff
    after RESOURCE_EXHAUSTED. Without it a quota refusal is reported at once."""

    client: Any
    scope: LogScope
    timeout: float = 20.0
    retry_deadline: float = 30.0
    max_pages: int = 20
    calls: int = 0
    filters: list[str] = field(default_factory=list)
    budget: int = CALLS_PER_MINUTE
    deadline: float | None = None
    sleep: Callable[[float], None] = time.sleep
    on_wait: Callable[[str], None] | None = None
    """Told, in one line, of each wait for the quota (the gate's progress line)."""
    waited: float = 0.0
    """Seconds spent waiting for the budget or the quota."""
    unfinished: bool = False
    """The last read stopped at an empty page that still had a ``next_page_token``: Cloud Logging's
    search "did not have time to search all the possible log entries" (google/logging/v2/logging.proto)."""
    _sent: deque[float] = field(default_factory=deque, repr=False)

    def _spend(self) -> None:
        """Count one call, first waiting (not past ``deadline``) until fewer than ``budget`` were made in 60 s."""
        now = time.monotonic()
        while self._sent and self._sent[0] <= now - 60.0:
            self._sent.popleft()
        if len(self._sent) >= self.budget:
            pause = self._sent[0] + 60.0 - now
            if self.deadline is not None and now + pause > self.deadline:
                raise LoggingUnavailable(
                    f"Cloud Logging was not asked more: the gate's {self.budget} ListLogEntries calls a minute "
                    f"(half of {QUOTA}) were spent before the deadline: the logs cannot be verified"
                )
            self.sleep(pause)
            self.waited += pause
            self._sent.popleft()
        self._sent.append(time.monotonic())
        self.calls += 1

    def list(self, filter_text: str, *, what: str, limit: int | None = None) -> tuple[list[Entry], bool]:
        """Entries matching ``filter_text``, oldest first, and whether every match was read (False when
        ``limit`` or ``max_pages`` pages stopped the read)."""
        from google.api_core.exceptions import ResourceExhausted

        while True:
            try:
                return self._list(filter_text, what=what, limit=limit)
            except ResourceExhausted as exc:
                now = time.monotonic()
                if self.deadline is None or now + QUOTA_BACKOFF > self.deadline:
                    said = str(getattr(exc, "message", "") or exc).splitlines()[0][:120]
                    raise LoggingUnavailable(
                        f"Cloud Logging refused the {what} query of service {self.scope.service}: {QUOTA} is exhausted, "
                        f"and no {QUOTA_BACKOFF:g} s were left to wait before retrying: the logs cannot be verified "
                        f"(RESOURCE_EXHAUSTED: {said})"
                    ) from None
                if self.on_wait is not None:
                    self.on_wait(
                        f"revgate logs: {QUOTA} is exhausted (RESOURCE_EXHAUSTED): the {what} query is retried "
                        f"in {QUOTA_BACKOFF:g} s"
                    )
                self.sleep(QUOTA_BACKOFF)
                self.waited += QUOTA_BACKOFF

    def _list(self, filter_text: str, *, what: str, limit: int | None) -> tuple[list[Entry], bool]:
        from google.api_core.exceptions import GoogleAPICallError, ResourceExhausted, RetryError

        from .google_clients import bounded_retry, could_not_answer

        request = {
            "resource_names": [f"projects/{self.scope.project}"],
            "filter": filter_text,
            "order_by": "timestamp asc",
            "page_size": min(PAGE_SIZE, limit) if limit else PAGE_SIZE,
        }
        self.filters.append(filter_text)
        found: list[Entry] = []
        complete = True
        self.unfinished = False
        try:
            self._spend()
            pager = self.client.list_log_entries(
                request=request, timeout=self.timeout, retry=bounded_retry(deadline=self.retry_deadline)
            )
            pages = iter(pager.pages)
            page = next(pages, None)  # the first page is the answer to the call just made
            read = 0
            while page is not None:
                read += 1
                found.extend(entry_of(e) for e in page.entries)
                self.unfinished = not page.entries and bool(page.next_page_token)
                if not page.next_page_token:
                    break
                if (limit is not None and len(found) >= limit) or read >= self.max_pages:
                    complete = False
                    break
                self._spend()
                page = next(pages, None)
        except ResourceExhausted:
            raise
        except (RetryError, GoogleAPICallError) as exc:
            raise LoggingUnavailable(
                could_not_answer("Cloud Logging", what, self.scope, exc, retry_deadline=self.retry_deadline, judged="the logs")
            ) from None
        return found, complete

"""Cloud Logging queries of a Cloud Run revision's logs (``ListLogEntries``), and the Logs Explorer link.

Filters use only the documented Logging query language
(https://cloud.google.com/logging/docs/view/logging-query-language): comparisons of
``resource.type``, ``resource.labels.service_name`` / ``location`` / ``revision_name``, ``logName``,
``severity``, ``timestamp``, ``textPayload``, ``jsonPayload.message`` and ``httpRequest.requestUrl``,
joined with ``AND`` and parenthesized ``OR`` groups (``OR`` binds tighter than ``AND`` in that
language, so every group is parenthesized anyway). Cloud Run's log names
(https://cloud.google.com/run/docs/logging) are ``projects/P/logs/run.googleapis.com%2Fstdout``,
``%2Fstderr`` (container logs), ``%2Frequests`` (request logs) and ``%2Fvarlog%2Fsystem`` (system
logs); the audit logs (``cloudaudit.googleapis.com``) record control-plane calls, not what a revision
does, and are not read.

Every call passes an explicit ``timeout`` and a bounded ``retry``. A refusal or an unreachable API
raises :class:`LoggingUnavailable` with one line saying what failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

__all__ = [
    "LOG_IDS",
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
"""Kind of log -> the log id Cloud Run writes it under."""
RESOURCE_TYPE = "cloud_run_revision"
PAGE_SIZE = 1000
"""The largest page ListLogEntries allows (google/logging/v2/logging.proto)."""
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]+$")


class LoggingUnavailable(Exception):
    """Cloud Logging could not answer a query: the message is one line, for the user."""


def log_name(project: str, kind: str) -> str:
    """``projects/P/logs/run.googleapis.com%2Fstdout``: the log id URL-encoded, as LogEntry.log_name has it."""
    return f"projects/{project}/logs/{quote(LOG_IDS[kind], safe='')}"


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


def kinds_filter(project: str, kinds: Sequence[str]) -> str:
    return "(" + " OR ".join(f"logName={_quoted(log_name(project, k))}" for k in kinds) + ")"


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
    for kind, log_id in LOG_IDS.items():
        if name.endswith("/logs/" + quote(log_id, safe="")):
            return kind
    return name.rsplit("/", 1)[-1]


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
    return Entry(stamp, severity, _kind_of(raw.log_name), text, raw.resource.labels.get("revision_name", ""), status, agent)


@dataclass
class LogQueries:
    """The ListLogEntries calls of one run; ``calls`` counts every call (one per page)."""

    client: Any
    scope: LogScope
    timeout: float = 20.0
    retry_deadline: float = 30.0
    max_pages: int = 20
    calls: int = 0
    filters: list[str] = field(default_factory=list)

    def list(self, filter_text: str, *, what: str, limit: int | None = None) -> tuple[list[Entry], bool]:
        """Entries matching ``filter_text``, oldest first, and whether every match was read (False when
        ``limit`` or ``max_pages`` pages stopped the read)."""
        from google.api_core.exceptions import GoogleAPICallError, RetryError

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
        try:
            self.calls += 1
            pager = self.client.list_log_entries(
                request=request, timeout=self.timeout, retry=bounded_retry(deadline=self.retry_deadline)
            )
            for i, page in enumerate(pager.pages):
                if i:
                    self.calls += 1
                found.extend(entry_of(e) for e in page.entries)
                if (limit is not None and len(found) >= limit) or i + 1 >= self.max_pages:
                    complete = not page.next_page_token
                    break
        except (RetryError, GoogleAPICallError) as exc:
            raise LoggingUnavailable(
                could_not_answer("Cloud Logging", what, self.scope, exc, retry_deadline=self.retry_deadline, judged="the logs")
            ) from None
        return found, complete

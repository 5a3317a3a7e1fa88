"""The Cloud Logging checks (``[[logs]]``): options, the wait for the logs, the verdict of one entry.

When is the data there? Cloud Logging shows an entry some time after it was written ("There is
typically a slight delay between when log entries are created and when they show up in Cloud
Logging", https://cloud.google.com/functions/1stgendocs/monitoring/logging), and an entry that has
not arrived yet must never make a silent pass. So before judging, the gate sends one probe request
of its own to the revision URL (``GET HEALTH_PATH?revgate-logs-probe=ID``) and waits, bounded by
``--logs-timeout``, until Cloud Run's request log of that request (``run.googleapis.com/requests``,
``httpRequest.requestUrl`` holding the id) is visible: the revision's logs have then been ingested
up to at least that request, which was sent after everything the window covers. The window is
``[start, end]``: ``start`` is the creation of the revision under test (``since = "revision"``) or
the start of this run (``since = "run"``); ``end`` is the moment the probe was answered.

Cloud Logging does not promise that different logs (stdout, stderr, requests) are ingested in the
same order, so the probe is evidence, not proof, for the container logs; it is the best evidence a
reader of Cloud Logging has, and it is much better than a fixed sleep. When the probe's request log
does not show within the timeout, nothing proves the logs are complete: the checks are NOT VERIFIED
(unless the entries already visible fail a check: a problem seen is a problem).

Verdict of one ``[[logs]]`` entry, over the entries of the window in the selected ``kinds``:
a problem is an entry at ``min_severity`` or above, or whose message matches a ``deny`` pattern
(at any severity), unless its message matches an ``allow`` pattern (``deny`` wins over ``allow``).
The request logs of the gate's own requests answered 401/403 (its deliberate requests without a
token) or a readiness retry status (``[health] retry_statuses``) are not problems: other checks
judge those answers (:func:`is_own_request`).
More than ``max_entries`` problems: FAIL (the count, the first entries, a Logs Explorer link).
Otherwise PASS when the logs were proven complete and read in full, else NOT VERIFIED.

Options (group "revgate logs"; command line > environment > ``pytest.ini``): ``--logs-timeout``.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from .checklist import LOG_SEVERITIES, Logs, log_pattern
from .errors import ConfigError
from .logs_query import Entry, LogQueries, explorer_link, kinds_filter, log_name, problems_filter, shown_text, time_filter

__all__ = [
    "DEFAULT_TIMEOUT",
    "LogsOptions",
    "LogsVerdict",
    "LogsWindow",
    "OWN_REFUSALS",
    "PROBE_PARAM",
    "add_logs_options",
    "is_own_request",
    "judge_logs",
    "resolve_logs_options",
    "wait_for_probe",
]

DEFAULT_TIMEOUT = 120.0
"""Seconds to wait for the probe's request log: Cloud Logging usually shows entries within seconds,
but its ingestion delay is not bounded by any published figure; two minutes covers a slow minute."""
MAX_TIMEOUT = 3600.0
PROBE_PARAM = "revgate-logs-probe"
SHOWN = 5
"""Problem entries shown in a failure message (the Logs Explorer link shows them all)."""

Progress = Callable[[str, bool], None]


@dataclass(frozen=True, kw_only=True)
class LogsOptions:
    timeout: float

    def describe(self) -> str:
        return f"wait up to {self.timeout:g} s for Cloud Logging to show the probe request's log"


def add_logs_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate logs", "revgate logs: Cloud Logging checks of the revision")
    group.addoption(
        "--logs-timeout",
        default=None,
        metavar="SECONDS",
        help="Seconds to wait until Cloud Logging shows the request log of the gate's probe request "
        "(the evidence that the revision's logs have arrived); without it the logs checks are NOT VERIFIED. "
        f"Env: REVGATE_LOGS_TIMEOUT; ini: revgate_logs_timeout; default: {DEFAULT_TIMEOUT:g}.",
    )
    parser.addini("revgate_logs_timeout", "Seconds to wait for Cloud Logging to show the probe request's log.", default=None)


def resolve_logs_options(config: pytest.Config) -> LogsOptions:
    """The logs options of this run; raises ConfigError naming the flag, the value and what is expected."""
    raw: Any = None
    for value, flag in (
        (config.getoption("logs_timeout", None), "--logs-timeout"),
        (os.environ.get("REVGATE_LOGS_TIMEOUT"), "REVGATE_LOGS_TIMEOUT"),
        (config.getini("revgate_logs_timeout"), "revgate_logs_timeout (pytest.ini)"),
    ):
        if value not in (None, ""):
            raw = value
            break
    if raw is None:
        return LogsOptions(timeout=DEFAULT_TIMEOUT)
    try:
        timeout = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {raw!r} is not a number of seconds (0 to {MAX_TIMEOUT:g})") from None
    if not math.isfinite(timeout) or not 0 <= timeout <= MAX_TIMEOUT:
        raise ConfigError(f"{flag} {raw!r}: give the seconds to wait for Cloud Logging, 0 to {MAX_TIMEOUT:g}")
    return LogsOptions(timeout=timeout)


@dataclass(frozen=True)
class LogsWindow:
    """How the wait ended: the window's end, whether the probe's request log was seen, and why not."""

    end: float
    complete: bool
    waited: float
    probe_url: str
    why: str = ""
    offset: float = 0.0
    """Seconds to add to a time of the gate's clock to read it on Cloud Logging's (at most this much
    ahead): the probe request log's timestamp minus the moment the gate had its answer (0 when unseen)."""


def probe_path(path: str) -> tuple[str, str]:
    """``(path with the probe id, the id)``."""
    probe_id = uuid.uuid4().hex
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}{PROBE_PARAM}={probe_id}", probe_id


def poll_interval(timeout: float) -> float:
    """Seconds between polls: at most 12 ListLogEntries calls a minute, well inside Cloud Logging's
    read quota (60 ListLogEntries requests per minute per project, https://cloud.google.com/logging/quotas)."""
    return min(5.0, max(1.0, timeout / 10))


def wait_for_probe(
    queries: LogQueries,
    *,
    probe_id: str,
    sent: float,
    end: float,
    probe_url: str,
    answered: bool,
    timeout: float,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
) -> LogsWindow:
    """Poll the request log of the probe request until it is visible or ``timeout`` runs out."""
    scope = queries.scope
    query = " AND ".join(
        [
            *scope.resource_filter(),
            f'logName="{log_name(scope.project, "requests")}"',
            f'httpRequest.requestUrl:"{PROBE_PARAM}={probe_id}"',
            *time_filter(sent - 60, end + 60),
        ]
    )
    started = time.monotonic()
    deadline = started + timeout
    interval = poll_interval(timeout)
    while True:
        found, _ = queries.list(query, what="probe request log", limit=1)
        waited = time.monotonic() - started
        if found:
            progress(
                f"revgate logs: Cloud Logging shows the probe request's log of {scope.describe()} after {waited:.1f} s",
                True,
            )
            # The window's times are compared with the entries' timestamps, which are Cloud Logging's
            # ("timestamp: The time the event described by the log entry occurred",
            # google/logging/v2/log_entry.proto), not the gate's: a runner's clock off by some seconds
            # would hide the last entries (behind) or the first ones (ahead). The probe was received
            # between `sent` and `end` of the gate's clock, so its entry's timestamp bounds the offset:
            # the window ends at that timestamp plus the probe's round trip (never before what the probe
            # proves), and a start read on the gate's clock moves by the offset's lower bound.
            stamp = found[0].timestamp
            return LogsWindow(
                end=max(end, stamp + (end - sent)), complete=True, waited=waited, probe_url=probe_url, offset=stamp - end
            )
        left = deadline - time.monotonic()
        if left <= 0:
            break
        progress(
            f"revgate logs: waiting for Cloud Logging to show the probe request's log of {scope.describe()}, "
            f"{left:.0f} s left",
            False,
        )
        sleep(min(interval, left))
    why = (
        f"Cloud Logging showed no request log of the gate's probe request ({probe_url}) "
        f"within --logs-timeout {timeout:g} s, so the revision's logs may not have arrived yet"
    )
    if not answered:
        why += " (the probe request got no answer: no instance may have served it)"
    progress(f"revgate logs: {why}", True)
    return LogsWindow(end=end, complete=False, waited=time.monotonic() - started, probe_url=probe_url, why=why)


Outcome = Literal["pass", "fail", "not verified"]


@dataclass(frozen=True)
class LogsVerdict:
    outcome: Outcome
    message: str
    problems: tuple[Entry, ...] = ()


def _severity_rank(name: str) -> int:
    return LOG_SEVERITIES.index(name) if name in LOG_SEVERITIES else 0


OWN_REFUSALS = frozenset({401, 403})
"""Statuses of the gate's own deliberate requests (the [[api]] checks' requests without a token)."""


def is_own_request(entry: Entry, own_statuses: frozenset[int]) -> bool:
    """A request log entry of one of the gate's own requests (User-Agent ``revgate``) answered with a
    status the gate asked for (a refusal without a token, an ``[[api]]`` check's expected ``status``)
    or already judged (a readiness retry, ``[health] retry_statuses``): the other checks judge those
    answers, the logs check does not. So is the probe request (of this run or an earlier one) answered
    4xx: an application may refuse the unknown query parameter (Datasette reads a table's parameters
    as column filters: 400 "no such column"); a 5xx answer to it stays a problem."""
    if entry.kind != "requests" or not entry.user_agent.startswith("revgate"):
        return False
    return entry.status in own_statuses or (f"{PROBE_PARAM}=" in entry.text and 400 <= entry.status < 500)


def judge_logs(
    check: Logs,
    queries: LogQueries,
    *,
    start: float,
    window: LogsWindow,
    start_label: str,
    own_statuses: frozenset[int] = OWN_REFUSALS,
    scrub: Callable[[str], str] = str,
) -> LogsVerdict:
    """Read the entries of ``check`` over ``[start, window.end]`` and judge them (one query, paged)."""
    scope = queries.scope
    query = " AND ".join(
        [
            *scope.resource_filter(),
            kinds_filter(scope.project, check.kinds),
            *time_filter(start, window.end),
            problems_filter(check.min_severity, check.deny),
        ]
    )
    entries, read_all = queries.list(query, what=f"[[logs]] {check.id}")
    deny = [log_pattern(p) for p in check.deny]
    allow = [log_pattern(p) for p in check.allow]
    wanted = _severity_rank(check.min_severity)
    problems: list[Entry] = []
    allowed = 0
    for entry in entries:
        if is_own_request(entry, own_statuses):
            continue
        denied = any(p.search(entry.text) for p in deny)
        if not denied and _severity_rank(entry.severity) < wanted:
            continue  # returned for a deny pattern matched in another field than the message
        if not denied and any(p.search(entry.text) for p in allow):
            allowed += 1
            continue
        problems.append(entry)
    what = f"at {check.min_severity} or above" + (f" or matching deny {check.deny!r}" if check.deny else "")
    where = (
        f"of {scope.describe()} in the {', '.join(check.kinds)} logs, from {start_label} to the probe request"
    )
    counted = f"{len(problems)}{'' if read_all else '+'}"
    if len(problems) > check.max_entries:
        shown = "\n".join("  " + e.line(scrub=scrub) for e in problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        tolerated = f" (at most {check.max_entries} tolerated)" if check.max_entries else ""
        link = explorer_link(scope.project, query, start, window.end)
        note = "" if window.complete else f"\n(the logs were not proven complete: {window.why}; more may follow)"
        first = shown_text(problems[0].text, 100, scrub)  # scrubbed before it is cut
        return LogsVerdict(
            "fail",
            f"[[logs]] {check.id}: {counted} log {'entry' if counted == 1 else 'entries'} {what} {where}{tolerated}"
            f"{f', {allowed} allowed' if allowed else ''}; first: {problems[0].severity} {problems[0].kind}: {first}"
            f"\n{shown}{more}{note}\nLogs Explorer: {link}",
            tuple(problems),
        )
    if not window.complete:
        return LogsVerdict("not verified", f"[[logs]] {check.id}: {window.why}; {len(problems)} entries {what} seen so far")
    if not read_all:
        return LogsVerdict(
            "not verified",
            f"[[logs]] {check.id}: more than {len(entries)} entries matched {what} {where} and not all were read "
            f"({len(problems)} problems, {allowed} allowed among those read): narrow min_severity, kinds or deny",
        )
    return LogsVerdict(
        "pass",
        f"[[logs]] {check.id}: {len(problems)} entries {what} {where}"
        + (f" ({allowed} allowed)" if allowed else ""),
        tuple(problems),
    )

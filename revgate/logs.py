"""The Cloud Logging checks (``[[logs]]``): options, the wait for the logs, the verdict of one entry.

When is the data there? Cloud Logging shows an entry some time after it was written ("There is
typically a slight delay between when log entries are created and when they show up in Cloud
Logging", https://cloud.google.com/functions/1stgendocs/monitoring/logging), and it promises no order
across log names: the request logs come from Cloud Run's serving layer, stdout and stderr from the
instance, and its tail API buffers entries "to prevent out of order results due to late arriving log
entries" (``TailLogEntriesRequest.buffer_window``, default 2000 ms, at most 60000 ms:
google/logging/v2/logging.proto). An entry that has not arrived yet must never make a silent pass.

So before judging, the gate sends one probe request of its own to the revision URL
(``GET HEALTH_PATH?revgate-logs-probe=ID``) and waits, bounded by ``--logs-timeout``, for two proofs:

1. the serving layer's: Cloud Run's request log of that request (``run.googleapis.com/requests``,
   ``httpRequest.requestUrl`` holding the id);
2. the container's own pipeline's: an entry the instance wrote in any of its own log names (stdout,
   stderr, a client library's log) that holds the probe's id (an application that logs each request,
   as most web servers do; for one that logs only errors and refusals, the gate also asks for
   ``/revgate-logs-probe-ID?revgate-logs-probe=ID``, a path no application serves, whose 404 most
   servers log) or is timestamped at or after the probe's request.

Then it waits a settle margin (``--logs-settle``, default Logging's ``buffer_window`` default, 2 s),
for the log names that proved nothing, and reads. The window is ``[start, end]``: ``start`` is the
creation of the revision under test (``since = "revision"``) or the start of this run (``since =
"run"``); ``end`` is the moment the probe was answered (on Cloud Logging's clock). Without both proofs
within the timeout, nothing shows that the logs are complete: the checks are NOT VERIFIED and say
which proof is missing (unless the entries already visible fail a check: a problem seen is a
problem). A probe that no instance served (the front end's 403, a 429 or 503 with no instance) shows
in the request log but proves nothing of the container's logs: the second proof is still needed.

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
from .logs_query import (
    KINDS,
    Entry,
    LogQueries,
    container_filter,
    explorer_link,
    kinds_filter,
    log_id_filter,
    problems_filter,
    _quoted,
    rfc3339,
    shown_text,
    time_filter,
)

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
    "missing_probe_path",
    "probe_path",
    "resolve_logs_options",
    "wait_for_probe",
]

DEFAULT_SETTLE = 2.0
"""Seconds waited after both proofs: Cloud Logging's own margin against late entries
(``TailLogEntriesRequest.buffer_window`` "Defaults to 2000 milliseconds", logging.proto)."""
MAX_SETTLE = 60.0
"""``buffer_window``'s largest value ("Valid values are between 0-60000 milliseconds")."""
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
    settle: float = DEFAULT_SETTLE

    def describe(self) -> str:
        return (
            f"wait up to {self.timeout:g} s for Cloud Logging to show the probe request's log and an entry of "
            f"the container after it, then {self.settle:g} s more"
        )


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
    group.addoption(
        "--logs-settle",
        default=None,
        metavar="SECONDS",
        help="Seconds to wait, once Cloud Logging shows the probe, for entries of other log names that arrive late "
        f"(0 to {MAX_SETTLE:g}). Env: REVGATE_LOGS_SETTLE; ini: revgate_logs_settle; default: {DEFAULT_SETTLE:g} "
        "(Cloud Logging's buffer_window default).",
    )
    parser.addini("revgate_logs_settle", "Seconds to wait for late entries once the probe is seen.", default=None)


def _seconds_option(config: pytest.Config, dest: str, flag: str, env: str, ini: str, default: float, top: float) -> float:
    raw: Any = None
    for value, source in (
        (config.getoption(dest, None), flag),
        (os.environ.get(env), env),
        (config.getini(ini), f"{ini} (pytest.ini)"),
    ):
        if value not in (None, ""):
            raw, flag = value, source
            break
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {raw!r} is not a number of seconds (0 to {top:g})") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= top:
        raise ConfigError(f"{flag} {raw!r}: give the seconds to wait for Cloud Logging, 0 to {top:g}")
    return seconds


def resolve_logs_options(config: pytest.Config) -> LogsOptions:
    """The logs options of this run; raises ConfigError naming the flag, the value and what is expected."""
    return LogsOptions(
        timeout=_seconds_option(
            config, "logs_timeout", "--logs-timeout", "REVGATE_LOGS_TIMEOUT", "revgate_logs_timeout", DEFAULT_TIMEOUT, MAX_TIMEOUT
        ),
        settle=_seconds_option(
            config, "logs_settle", "--logs-settle", "REVGATE_LOGS_SETTLE", "revgate_logs_settle", DEFAULT_SETTLE, MAX_SETTLE
        ),
    )


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
    proof: str = ""
    """What showed the logs complete, for the verdict's message."""


def probe_path(path: str) -> tuple[str, str]:
    """``(path with the probe id, the id)``."""
    probe_id = uuid.uuid4().hex
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}{PROBE_PARAM}={probe_id}", probe_id


def missing_probe_path(probe_id: str) -> str:
    """A path no application serves, with the probe's id: most servers that do not log a 200 log a 404
    (JupyterLab logs 2xx at DEBUG and 4xx at WARNING), so the instance writes a line because of the probe."""
    return f"/{PROBE_PARAM}-{probe_id}?{PROBE_PARAM}={probe_id}"


def poll_interval(timeout: float) -> float:
    """Seconds between polls: at most 12 polls a minute, each one or two ListLogEntries calls (the
    request log, the container's), inside the gate's budget (:data:`revgate.logs_query.CALLS_PER_MINUTE`,
    half of Cloud Logging's 60 a minute per project, https://cloud.google.com/logging/quotas)."""
    return min(5.0, max(1.0, timeout / 10))


def _no_instance(entry: Entry) -> bool:
    """The probe's request log says no instance served it: no ``instanceId``, or Cloud Run's answers
    without one (429, 503: "no available instance"; the front end's 403)."""
    return not entry.instance or entry.status in (429, 503)


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
    settle: float = DEFAULT_SETTLE,
    sleep: Callable[[float], None] = time.sleep,
) -> LogsWindow:
    """Poll until Cloud Logging shows the probe's request log and an entry of the container's own logs
    at or after it (or ``timeout`` runs out), then wait ``settle`` seconds more."""
    scope = queries.scope
    marker = f"{PROBE_PARAM}={probe_id}"
    served_query = " AND ".join(
        [
            *scope.resource_filter(),
            log_id_filter("requests"),
            f"httpRequest.requestUrl:{_quoted(marker)}",
            *time_filter(sent - 60, end + 60),
        ]
    )
    started = time.monotonic()
    deadline = started + timeout
    interval = poll_interval(timeout)
    served: Entry | None = None
    container: Entry | None = None
    served_after = container_after = 0.0
    while True:
        if served is None:
            found, _ = queries.list(served_query, what="probe request log", limit=1)
            if found:
                served, served_after = found[0], time.monotonic() - started
                progress(
                    f"revgate logs: Cloud Logging shows the probe request's log of {scope.describe()} after {served_after:.1f} s",
                    True,
                )
        if container is None:
            # the probe's id in a container entry, or any container entry at or after the probe (on Cloud
            # Logging's clock once the request log is seen, else on the gate's)
            after = served.timestamp if served is not None else sent
            container_query = " AND ".join(
                [
                    *scope.resource_filter(),
                    container_filter(),
                    f"(textPayload:{_quoted(marker)} OR jsonPayload.message:{_quoted(marker)} OR timestamp>={_quoted(rfc3339(after))})",
                    *time_filter(sent - 60, max(end, after) + 3600),
                ]
            )
            found, _ = queries.list(container_query, what="container log after the probe", limit=1)
            if found:
                container, container_after = found[0], time.monotonic() - started
                progress(
                    f"revgate logs: Cloud Logging shows an entry of the container's {container.kind} log "
                    f"{'for' if marker in container.text else 'after'} the probe after {container_after:.1f} s",
                    True,
                )
        if served is not None and container is not None:
            break
        waited = time.monotonic() - started
        left = deadline - time.monotonic()
        if left <= 0:
            break
        missing = "the probe request's log" if served is None else "an entry of the container's logs after the probe"
        progress(f"revgate logs: waiting for Cloud Logging to show {missing} of {scope.describe()}, {left:.0f} s left", False)
        sleep(min(interval, left))
    waited = time.monotonic() - started
    if served is not None and container is not None:
        if settle > 0:
            progress(f"revgate logs: {settle:g} s more for entries of other log names that arrive late", True)
            sleep(settle)
        # The window's times are compared with the entries' timestamps, which are Cloud Logging's
        # ("timestamp: The time the event described by the log entry occurred",
        # google/logging/v2/log_entry.proto), not the gate's: a runner's clock off by some seconds
        # would hide the last entries (behind) or the first ones (ahead). The probe was received
        # between `sent` and `end` of the gate's clock, so its entry's timestamp bounds the offset:
        # the window ends at that timestamp plus the probe's round trip (never before what the probe
        # proves), and a start read on the gate's clock moves by the offset's lower bound.
        stamp = served.timestamp
        proof = (
            f"the request log showed the probe after {served_after:.1f} s, the container's {container.kind} log "
            f"{'its own line for it' if marker in container.text else 'an entry after it'} after {container_after:.1f} s"
            + (f", then {settle:g} s for the other log names" if settle > 0 else ", with no margin for the other log names")
        )
        return LogsWindow(
            end=max(end, stamp + (end - sent)), complete=True, waited=time.monotonic() - started, probe_url=probe_url,
            offset=stamp - end, proof=proof,
        )
    if served is None:
        why = (
            f"Cloud Logging showed no request log of the gate's probe request ({probe_url}) "
            f"within --logs-timeout {timeout:g} s, so the revision's logs may not have arrived yet"
        )
        if not answered:
            why += " (the probe request got no answer: no instance may have served it)"
    else:
        why = (
            f"Cloud Logging showed the probe request's log (the serving layer's, status {served.status}) but no entry "
            f"of the container's own logs for or after the probe within --logs-timeout {timeout:g} s, so the "
            "container's logs (stdout, stderr, ...) are not proven complete"
        )
        if _no_instance(served):
            why += f": no instance served the probe (status {served.status})"
        else:
            why += ": an application that logs each request (most web servers do) proves it"
    progress(f"revgate logs: {why}", True)
    return LogsWindow(end=end, complete=False, waited=waited, probe_url=probe_url, why=why)


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
    if entry.kind != "requests":
        # the application's own line about the gate's probe (a 403 or 404 it logs at WARNING): the
        # probe's evidence, not a problem; at ERROR or above it stays one
        return f"{PROBE_PARAM}=" in entry.text and _severity_rank(entry.severity) < _severity_rank("ERROR")
    if not entry.user_agent.startswith("revgate"):
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
            kinds_filter(check.kinds),
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
        f"of {scope.describe()} in "
        + ("all its logs" if set(check.kinds) >= set(KINDS) else f"the {', '.join(check.kinds)} logs")
        + f", from {start_label} to the probe request"
    )
    counted = f"{len(problems)}{'' if read_all else '+'}"
    noun = "entry" if counted == "1" else "entries"
    if len(problems) > check.max_entries:
        shown = "\n".join("  " + e.line(scrub=scrub) for e in problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        tolerated = f" (at most {check.max_entries} tolerated)" if check.max_entries else ""
        link = explorer_link(scope.project, query, start, window.end)
        note = "" if window.complete else f"\n(the logs were not proven complete: {window.why}; more may follow)"
        first = shown_text(problems[0].text, 100, scrub)  # scrubbed before it is cut
        return LogsVerdict(
            "fail",
            f"[[logs]] {check.id}: {counted} log {noun} {what} {where}{tolerated}"
            f"{f', {allowed} allowed' if allowed else ''}; first: {problems[0].severity} {problems[0].kind}: {first}"
            f"\n{shown}{more}{note}\nLogs Explorer: {link}",
            tuple(problems),
        )
    if not window.complete:
        return LogsVerdict("not verified", f"[[logs]] {check.id}: {window.why}; {len(problems)} entries {what} seen so far")
    if not read_all and queries.unfinished:
        return LogsVerdict(
            "not verified",
            f"[[logs]] {check.id}: Cloud Logging's search of {scope.describe()} did not finish within "
            f"{queries.max_pages} pages (an empty page with a next page token: it \"did not have time to search all "
            f"the possible log entries\"); {len(problems)} problems among the {len(entries)} entries read: narrow "
            "the window (since = \"run\"), kinds or min_severity",
        )
    if not read_all:
        return LogsVerdict(
            "not verified",
            f"[[logs]] {check.id}: more than {len(entries)} entries matched {what} {where} and not all were read "
            f"({len(problems)} problems, {allowed} allowed among those read): narrow min_severity, kinds or deny",
        )
    return LogsVerdict(
        "pass",
        f"[[logs]] {check.id}: {len(problems)} entries {what} {where}"
        + (f" ({allowed} allowed)" if allowed else "")
        + (f"; complete: {window.proof}" if window.proof else ""),
        tuple(problems),
    )

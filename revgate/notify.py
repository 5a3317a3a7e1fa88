"""Notifications: a message when a rollback starts, and one when the run ends.

Configuration (resolved once, in the controller, at session start):

- where: ``--notify URL`` (repeatable), else ``REVGATE_NOTIFY`` (URLs separated by
  whitespace or commas), else the variable that ``[notify] urls_env`` names. A
  webhook URL is a secret (Slack: "your webhook URL contains a secret"; a Google
  Chat webhook's ``token`` parameter is its key), so a checklist, which is
  committed to a repository, names the variable that holds it and never holds
  it. A value that is not an http(s) URL with a host is a usage error (exit 4,
  one line), before any check. A ``urls_env`` variable that is unset is not an
  error (a fork's pull request gets no secrets): the header says so.
- how: ``[notify] format`` (``auto``: Slack for ``hooks.slack.com``, Google Chat
  for ``chat.googleapis.com``, else JSON; or one format for every URL),
  ``on`` (moments: ``rollback``, ``end``), ``only_on`` (verdicts of the end
  message), ``timeout`` and ``retries``.

Delivery is bounded and harmless. Each URL gets its own thread and its own
httpx client; an attempt has ``timeout`` seconds (connect, write and each read);
connection errors, timeouts, 429 and 5xx are retried ``retries`` times
(0.5 s, 1 s, 2 s apart, or after the ``Retry-After`` the answer asks for when it fits in the
message's bound: otherwise the message is given up at once, naming the wait asked), any other
answer is final; a message has at most
:func:`NotifyConfig.budget` seconds in all (at most :data:`MAX_BUDGET`), after
which it is given up. The rollback message is sent from the rollback thread
once its update request was answered, in threads of its own (the rollback never
waits for it); the end message is sent once the verdict and the exit code are
final (after every ``pytest_sessionfinish`` hook: the rollback joined, the
promotion done), in a ``pytest_terminal_summary`` wrapper, else at unconfigure.
A notification that could not be delivered is one line in the terminal summary
and an entry of the JSON report's ``notifications``; it never changes the
verdict or the exit code and never raises. Webhook URLs are added to the
secrets every report is scrubbed of, and are shown as ``https://HOST/***``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from .errors import ConfigError, RevgateError
from .results import notifications_key
from .notify_formats import (
    ROLLBACK_STARTED,
    RUN_FINISHED,
    Message,
    ci_run_url,
    detect_format,
    encode,
    payload,
    redact_url,
)

__all__ = [
    "ENV",
    "Delivery",
    "NotifyConfig",
    "add_options",
    "check_webhook_url",
    "deliver",
    "finished_message",
    "resolve_notify",
    "retry_after",
    "rollback_message",
]

ENV = "REVGATE_NOTIFY"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2
MAX_URLS = 10
MAX_BUDGET = 30.0
"""Seconds one message may take in all, whatever ``timeout`` and ``retries`` say."""
BACKOFF = (0.5, 1.0, 2.0, 2.0, 2.0)
MAX_LISTED = 5
"""Failed and NOT VERIFIED checks listed in a message (the count says how many more)."""
MAX_URL_LENGTH = 4096
VERDICTS = ("PASS", "FAIL", "NOT VERIFIED", "INTERRUPTED", "ERROR")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate notifications", "revgate notifications (Slack, Google Chat, webhooks)")
    group.addoption(
        "--notify",
        action="append",
        default=None,
        metavar="URL",
        help=f"Post a message to this webhook when a rollback starts and when the run ends (repeatable). "
        f"Prefer env {ENV} in CI: a command line shows in process lists. Format, moments, timeout: [notify] in the checklist.",
    )


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Webhook:
    url: str
    format: str

    @property
    def shown(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    webhooks: tuple[Webhook, ...] = ()
    source: str = ""
    note: str = ""
    """Why there is no webhook although ``[notify]`` asks for some."""
    on: tuple[str, ...] = ("rollback", "end", "step")
    only_on: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @property
    def budget(self) -> float:
        """Seconds a message may take in all: every attempt's timeout and the pauses between them."""
        return min((self.retries + 1) * self.timeout + sum(BACKOFF[: self.retries]), MAX_BUDGET)

    def secrets(self) -> list[str]:
        return [part for hook in self.webhooks for part in secret_parts(hook.url)]

    def header(self) -> str:
        if not self.webhooks:
            return f"none ({self.note})"
        hooks = ", ".join(f"{h.shown} ({h.format})" for h in self.webhooks)
        only = f" (verdicts {', '.join(self.only_on)})" if self.only_on else ""
        return (
            f"{hooks} from {self.source}; on {', '.join(self.on)}{only}; timeout {self.timeout:g} s, "
            f"{self.retries} retries, at most {self.budget:g} s per message"
        )


def secret_parts(url: str) -> list[str]:
    """What of a webhook URL must never be shown: the URL, its path and query, each query value."""
    parts = [url]
    try:
        split = urlsplit(url)
    except ValueError:
        return parts
    rest = url.split(split.netloc, 1)[1] if split.netloc else ""
    parts += [rest, split.path + (f"?{split.query}" if split.query else ""), split.query]
    parts += [value for _, value in parse_qsl(split.query, keep_blank_values=True)]
    if "@" in split.netloc:
        parts.append(split.netloc.rpartition("@")[0])
    return [p for p in dict.fromkeys(parts) if len(p) >= 8 and p not in ("/", "")]


def check_webhook_url(raw: str, where: str) -> str:
    """The URL, or ConfigError in one line that never repeats the URL (it holds a secret)."""
    url = raw.strip()
    if not url:
        raise ConfigError(f"{where}: empty; give the webhook's https:// URL")
    if len(url) > MAX_URL_LENGTH:
        raise ConfigError(f"{where}: {len(url)} characters long; a webhook URL has at most {MAX_URL_LENGTH}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{where}: the URL contains spaces or control characters; give one webhook URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}: not a valid URL ({exc}); give the webhook's https:// URL") from None
    if parts.scheme not in ("http", "https"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme and len(parts.scheme) < 16 else "no http(s) scheme"
        raise ConfigError(f"{where}: not an http(s) URL ({scheme}); give the webhook's https:// URL")
    if not host:
        raise ConfigError(f"{where}: no host in the URL ({parts.scheme}://...); give the webhook's full URL")
    return url


def split_urls(raw: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", raw) if part]


def resolve_notify(config: pytest.Config, checklist: Any, env: Any = None) -> NotifyConfig:
    """CLI > env > checklist; raises ConfigError (one line) for a bad URL."""
    env = os.environ if env is None else env
    section = getattr(checklist, "notify", None)
    cli = [u for u in (config.getoption("notify", None) or [])]
    note = ""
    if cli:
        raws, source, label = cli, "--notify", "--notify #{}"
    elif env.get(ENV, "").strip():
        raws, source, label = split_urls(env[ENV]), f"env {ENV}", f"{ENV} URL #{{}}"
    elif section is not None and section.urls_env:
        value = env.get(section.urls_env, "").strip()
        raws, source, label = split_urls(value), f"env {section.urls_env} ([notify] urls_env)", f"{section.urls_env} URL #{{}}"
        if not raws:
            note = f"env {section.urls_env}, named by [notify] urls_env, is not set"
    else:
        raws, source, label = [], "", ""
        note = "no --notify, no env " + ENV + ", no [notify] urls_env"
    if len(raws) > MAX_URLS:
        raise ConfigError(f"{source}: {len(raws)} webhook URLs; at most {MAX_URLS}")
    fmt = section.format if section is not None else "auto"
    urls = [check_webhook_url(raw, label.format(i)) for i, raw in enumerate(raws, 1)]
    webhooks = tuple(Webhook(url=u, format=detect_format(u, fmt)) for u in dict.fromkeys(urls))
    if section is None:
        return NotifyConfig(webhooks=webhooks, source=source, note=note)
    return NotifyConfig(
        webhooks=webhooks,
        source=source,
        note=note,
        on=tuple(section.on),
        only_on=tuple(section.only_on),
        timeout=section.timeout,
        retries=section.retries,
    )


# -- delivery ----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Delivery:
    """One message to one webhook: what happened."""

    event: str
    url: str
    """Redacted."""
    format: str
    status: str = "sending"
    """``delivered``, ``failed`` or ``sending`` (still in flight when given up)."""
    http_status: int | None = None
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        why = f"HTTP {self.http_status}" if self.http_status and not self.error else self.error or self.status
        return f"{self.event} to {self.url} {self.status} ({why}, {self.attempts} attempt(s), {self.seconds:.1f} s)"


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _transport_reason(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    if "refused" in text.lower():
        return "connection refused"
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP date, RFC 9110 10.2.3);
    None when absent or unreadable. Slack answers a rate-limited webhook "HTTP 429 Too Many Requests
    ... with a Retry-After header" (https://api.slack.com/apis/rate-limits)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


def deliver(webhook: Webhook, body: bytes, *, event: str, timeout: float, retries: int, budget: float,
            record: Delivery | None = None) -> Delivery:
    """POST ``body`` to the webhook, retried on connection errors, timeouts, 429 and 5xx; never raises."""
    record = record or Delivery(event=event, url=webhook.shown, format=webhook.format)
    secrets = secret_parts(webhook.url)
    started = time.monotonic()
    deadline = started + budget
    try:
        from importlib.metadata import PackageNotFoundError, version

        import httpx

        try:
            __version__ = version("revgate")
        except PackageNotFoundError:
            __version__ = "unknown"
    except Exception as exc:  # noqa: BLE001 - a notification never breaks the run
        record.status, record.error = "failed", f"cannot send: {type(exc).__name__}"
        return record
    headers = {"Content-Type": "application/json; charset=UTF-8", "User-Agent": f"revgate/{__version__}"}
    try:
        with httpx.Client(follow_redirects=False) as client:
            for attempt in range(retries + 1):
                left = deadline - time.monotonic()
                if left < 0.05:
                    record.error = record.error or "no time left"
                    break
                record.attempts = attempt + 1
                retry = False
                try:
                    answer = client.post(webhook.url, content=body, headers=headers, timeout=httpx.Timeout(min(timeout, left)))
                except httpx.TransportError as exc:
                    record.http_status, record.error, retry = None, _transport_reason(exc), True
                else:
                    record.http_status = answer.status_code
                    if 200 <= answer.status_code < 300:
                        record.status, record.error = "delivered", ""
                        break
                    said = " ".join(answer.text.split())[:80]
                    record.error = f"HTTP {answer.status_code}" + (f": {said}" if said else "")
                    retry = answer.status_code == 429 or answer.status_code >= 500
                    wait = retry_after(answer.headers.get("retry-after")) if retry else None
                    if wait is not None and attempt < retries:
                        if time.monotonic() + wait > deadline - 0.05:
                            record.error += f" (asked to retry after {wait:g} s, past the message's bound of {budget:g} s)"
                            break
                        time.sleep(max(wait, BACKOFF[attempt]))
                        continue
                if not retry:
                    break
                if attempt < retries:
                    time.sleep(max(0.0, min(BACKOFF[attempt], deadline - time.monotonic())))
    except Exception as exc:  # noqa: BLE001 - a notification never breaks the run
        record.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]
    if record.status != "delivered":
        record.status = "failed"
    record.error = _scrub(record.error, secrets)
    record.seconds = round(time.monotonic() - started, 3)
    return record


class Batch:
    """One message to every webhook, each in a daemon thread; :meth:`wait` is bounded by the budget."""

    def __init__(self, config: NotifyConfig, message: Message) -> None:
        self.message = message
        self.started = time.monotonic()
        self.deadline = self.started + config.budget + 0.5
        self.budget = config.budget
        self.deliveries: list[Delivery] = []
        self._threads: list[threading.Thread] = []
        for hook in config.webhooks:
            record = Delivery(event=message.event, url=hook.shown, format=hook.format)
            self.deliveries.append(record)
            body = encode(payload(message, hook.format))
            thread = threading.Thread(
                target=deliver,
                args=(hook, body),
                kwargs={"event": message.event, "timeout": config.timeout, "retries": config.retries,
                        "budget": config.budget, "record": record},
                name=f"revgate-notify-{message.event}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def wait(self, until: float | None = None) -> list[Delivery]:
        """Join the threads until the budget is spent, or ``until`` (monotonic) when that comes first."""
        deadline = self.deadline if until is None else min(self.deadline, until)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for record in self.deliveries:
            if record.status == "sending":  # still in its thread: given up, it ends with the process
                if deadline < self.deadline:
                    record.status, record.error = "failed", "still sending when the grace after the signal ran out: given up"
                else:
                    record.status, record.error = "failed", f"still sending after {self.budget:g} s: given up"
                record.seconds = round(min(self.budget, max(0.0, time.monotonic() - self.started)), 3)
        return self.deliveries


# -- messages ----------------------------------------------------------------------------------


def _split_of(entries: Any) -> dict[str, int]:
    split: dict[str, int] = {}
    for entry in entries or []:
        data = entry if isinstance(entry, dict) else dataclasses.asdict(entry)
        if data.get("percent"):
            split[data["revision"]] = split.get(data["revision"], 0) + int(data["percent"])
    return split


def _describe(split: dict[str, int] | None) -> str:
    if not split:
        return "no traffic"
    return ", ".join(f"{rev} {pct} %" for rev, pct in split.items())


def _short(nodeid: str | None) -> str:
    return (nodeid or "?").rsplit("::", 1)[-1]


def rollback_message(
    *, deployment: Any, test: str | None, reason: str, outcome: Any, run_url: str | None, serving: dict[str, int] | None = None
) -> Message:
    """When the rollback's update request was answered (or the rollback ended without one).

    ``serving``: the split the run itself had set (a rollout's step), which the rollback takes back."""
    before = dict(serving) if serving else _split_of(deployment.traffic_before)
    plan = getattr(outcome, "plan", None)
    planned = dict(plan.split) if plan is not None else None
    status = getattr(outcome, "status", "") if getattr(outcome, "done_at", None) is not None else "sent"
    under = ", ".join(deployment.revisions_under_test)
    dry = deployment.mode == "dry-run"
    title = f"revgate: {'dry-run ' if dry else ''}rollback of {deployment.service}: {under} failed {_short(test)}"
    lines = [f"failed: {_short(test)}: {reason}"]
    if planned is not None:
        lines.append(f"traffic: {_describe(before)} → {_describe(planned)}")
    else:
        lines.append(f"traffic now: {_describe(before)}")
    if status == "sent":
        lines.append("rollback: " + ("validating the plan (dry-run, nothing changes)" if dry else "update sent to Cloud Run"))
    else:
        lines.append(f"rollback {status}: {getattr(outcome, 'message', '')}")
    lines.append(f"service: {deployment.service} ({deployment.region}, {deployment.project})")
    if run_url:
        lines.append(f"CI run: {run_url}")
    data = {
        "verdict": None,
        "exit_status": None,
        "target": {"service": deployment.service, "region": deployment.region, "project": deployment.project,
                   "revisions": list(deployment.revisions_under_test)},
        "trigger": {"test": test, "reason": reason},
        "failed": [{"test": test, "reason": reason}],
        "not_verified": [],
        "traffic": {"before": before, "planned": planned, "after": None},
        "rollback": {"status": status, "message": getattr(outcome, "message", "") or "", "mode": deployment.mode},
        "promotion": None,
        "run_url": run_url,
    }
    return Message(event=ROLLBACK_STARTED, title=title, lines=lines, code=[_short(test)], data=data)


def final_verdict(exitstatus: int, checks_verdict: str) -> str:
    """The verdict the exit code says: 0 PASS, 1 FAIL, 2 INTERRUPTED (FAIL when a gating check had failed),
    6 NOT VERIFIED, anything else ERROR."""
    from .errors import NOT_VERIFIED_EXIT

    code = int(exitstatus)
    if code == 0:
        return "PASS"
    if code == 1:
        return "FAIL"
    if code == 2:
        return "FAIL" if checks_verdict == "FAIL" else "INTERRUPTED"
    if code == NOT_VERIFIED_EXIT:
        return "NOT VERIFIED"
    return "ERROR"


def finished_message(config: pytest.Config, exitstatus: int, run_url: str | None) -> Message:
    """The end of the run: verdict, subject, failures, traffic, rollback and promotion."""
    from .interrupts import interrupted_by
    from .report import target_info, traffic_records
    from .results import RunResults, results_key

    results = config.stash.get(results_key, None) or RunResults()
    verdict = final_verdict(exitstatus, results.verdict)
    target = target_info(config)
    records = traffic_records(config)
    rollback, promotion, rollout = records.get("rollback"), records.get("promotion"), records.get("rollout")
    subject = ", ".join(target.get("revisions") or []) or target.get("url") or "?"
    where = f" ({target['service']})" if target.get("service") else ""
    signal = interrupted_by(config)
    title = f"revgate {verdict}: {subject}{where}" + (f", interrupted ({signal})" if signal and verdict != "INTERRUPTED" else "")
    lines = [f"checks: {results.counts()}"]
    failed = [{"test": c.id, "reason": c.summary()} for c in results.gating_failures]
    not_verified = [{"test": c.id, "reason": c.summary()} for c in results.not_verified]
    for label, items in (("FAILED", failed), ("NOT VERIFIED", not_verified)):
        for item in items[:MAX_LISTED]:
            lines.append(f"{label} {_short(item['test'])}: {item['reason']}")
        if len(items) > MAX_LISTED:
            lines.append(f"... and {len(items) - MAX_LISTED} more {label}")
    if verdict == "FAIL" and not failed:
        why = [r.get("message") for r in (rollback, promotion) if r and r.get("status") == "failed"]
        lines.append(f"the checks passed, but: {why[0] if why else 'the gate exited 1'}")
    if signal and verdict == "INTERRUPTED":
        lines.append(f"interrupted ({signal}): nothing verified")
    deployment = _deployment(config)
    before = _split_of(deployment.traffic_before) if deployment is not None else None
    after_record = None
    for record in (rollback, promotion):
        traffic = (record or {}).get("traffic") or {}
        if record and record.get("status") in ("done", "already-acted") and traffic.get("after"):
            after_record = _split_of(traffic["after"])
    runner = _runner(config)
    gate_split = dict(runner.gate_split) if runner is not None and getattr(runner, "gate_split", None) else None
    if rollout and rollout.get("status") in ("completed", "held", "stopped", "interrupted") and gate_split and after_record is None:
        after_record = gate_split  # the rollout's last step, as it left the traffic
    if deployment is None:
        lines.append("traffic: not changed (no --service)")
    elif after_record is not None and after_record != before:
        lines.append(f"traffic: {_describe(before)} → {_describe(after_record)}")
    else:
        lines.append(f"traffic: {_describe(before)} (not changed by this gate)")
    if rollback and rollback.get("status") not in (None, "not-needed"):
        lines.append(f"rollback {rollback['status']}: {rollback.get('message', '')}")
    if promotion:
        lines.append(f"promotion {promotion.get('status')}: {promotion.get('message', '')}")
    if rollout:
        lines.append(f"rollout {rollout.get('status')}: {rollout.get('message', '')}")
    if run_url:
        lines.append(f"CI run: {run_url}")
    data = {
        "verdict": verdict,
        "exit_status": int(exitstatus),
        "checks_verdict": results.verdict,
        "counts": results.counts(),
        "interrupted": signal,
        "target": {k: target.get(k) for k in ("url", "service", "region", "project", "revisions")},
        "trigger": (rollback or {}).get("trigger"),
        "failed": failed[:10],
        "not_verified": not_verified[:10],
        "traffic": {"before": before, "planned": None, "after": after_record},
        "rollback": {k: rollback.get(k) for k in ("status", "message", "mode")} if rollback else None,
        "promotion": {k: promotion.get(k) for k in ("status", "message", "percent")} if promotion else None,
        "run_url": run_url,
    }
    return Message(
        event=RUN_FINISHED, title=title, lines=lines,
        code=[_short(item["test"]) for item in failed + not_verified], data=data,
    )


def _runner(config: pytest.Config) -> Any:
    """The rollback's runner, or None (no --service)."""
    try:
        from revgate.rollback.plugin import runner_key
    except ImportError:  # pragma: no cover - the rollback package ships with revgate
        return None
    return config.stash.get(runner_key, None)


def _deployment(config: pytest.Config) -> Any:
    from .results import deployment_of

    return deployment_of(config)


# -- the plugin --------------------------------------------------------------------------------

notify_key = pytest.StashKey[NotifyConfig]()


class NotifyPlugin:
    """Registered in the controller when a gate run has at least one webhook."""

    def __init__(self, config: pytest.Config, notify: NotifyConfig) -> None:
        self.config = config
        self.notify = notify
        self.session: pytest.Session | None = None
        self.run_url = ci_run_url()
        self._lock = threading.Lock()
        self._batches: list[Batch] = []
        self._closed = False
        self._finished = False
        self._session_ran = False
        config.stash[notifications_key] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        # once the session started (the rollback plugin made its runner), before any check runs
        self.session = session
        if "rollback" not in self.notify.on:
            return
        try:
            from revgate.rollback.plugin import runner_key
        except ImportError:  # pragma: no cover - the rollback package ships with revgate
            return
        runner = self.config.stash.get(runner_key, None)
        if runner is not None and hasattr(runner, "on_started"):
            runner.on_started = self._rollback_started

    def announce(self, message: Message) -> None:
        """A message of another plugin (a rollout's step, :mod:`revgate.soak`), sent like the others
        (threads, within the same budget), when ``[notify] on`` has ``step``."""
        if "step" not in self.notify.on:
            return
        with self._lock:
            if not self._closed:
                self._batches.append(Batch(self.notify, message))

    def _rollback_started(self, runner: Any, outcome: Any) -> None:
        """Called from the rollback thread: builds the message and hands it to threads of its own."""
        try:
            message = rollback_message(
                deployment=runner.deployment, test=runner.trigger_test, reason=runner.trigger_reason,
                outcome=outcome, run_url=self.run_url, serving=getattr(runner, "gate_split", None),
            )
            with self._lock:
                if not self._closed:
                    self._batches.append(Batch(self.notify, message))
        except Exception:  # noqa: BLE001 - a notification never breaks the rollback
            pass

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._session_ran = True  # only a session that started gets an end message (never a usage error)
        self._finishing_at = time.monotonic()  # tryfirst: before the rollback is joined

    def _until(self) -> float | None:
        """After SIGTERM or SIGINT, the end of the grace period (``REVGATE_INTERRUPT_GRACE``), counted
        from the session's finish (which the signal starts): the rollback's join and every message
        share it, so the runner's SIGKILL does not come before the JSON report is written."""
        from .interrupts import interrupt_grace, interrupted_by

        if not interrupted_by(self.config):
            return None
        try:
            grace = interrupt_grace()
        except RevgateError:
            grace = 0.0
        return getattr(self, "_finishing_at", time.monotonic()) + grace

    def _finish(self) -> list[Delivery]:
        """Wait for the rollback message (bounded), send the end message (bounded); once."""
        if self._finished or not self._session_ran:
            return []
        self._finished = True
        with self._lock:
            self._closed = True
            batches = list(self._batches)
        deliveries: list[Delivery] = []
        until = self._until()
        for batch in batches:
            deliveries += batch.wait(until)
        try:
            session = self.session
            exitstatus = int(session.exitstatus) if session is not None else 0
            from .results import results_key

            results = self.config.stash.get(results_key, None)
            checks_verdict = results.verdict if results is not None else "ERROR"
            verdict = final_verdict(exitstatus, checks_verdict)
            if "end" in self.notify.on and (not self.notify.only_on or verdict in self.notify.only_on):
                deliveries += Batch(self.notify, finished_message(self.config, exitstatus, self.run_url)).wait(until)
        except Exception as exc:  # noqa: BLE001 - a notification never changes the verdict
            deliveries.append(Delivery(event=RUN_FINISHED, url="-", format="-", status="failed",
                                       error=f"the message could not be built: {type(exc).__name__}: {exc}"[:200]))
        self.config.stash[notifications_key] = [d.to_dict() for d in deliveries]
        return deliveries

    def summary_line(self, deliveries: list[Delivery]) -> tuple[str, bool] | None:
        if not deliveries:
            return None
        bad = [d for d in deliveries if d.status != "delivered"]
        events = ", ".join(dict.fromkeys(d.event for d in deliveries))
        if not bad:
            hooks = ", ".join(dict.fromkeys(d.url for d in deliveries))
            return f"revgate notifications: {len(deliveries)} delivered ({events}) to {hooks}", False
        text = "; ".join(d.line() for d in bad[:3]) + ("; ..." if len(bad) > 3 else "")
        return (
            f"revgate notifications: {len(bad)} of {len(deliveries)} NOT delivered: {text} "
            "(the verdict and the exit code do not depend on them)",
            True,
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> Any:
        result = yield
        try:
            deliveries = self._finish()
            line = self.summary_line(deliveries)
            if line is not None:
                from .report import scrub

                terminalreporter.line(scrub(line[0], config), yellow=line[1], red=False)
        except Exception:  # noqa: BLE001 - a notification never changes the verdict
            pass
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # tryfirst: before the JSON report is written. Only when no terminal summary ran (-p no:terminal)
        if self._finished or not self._session_ran:
            return
        try:
            line = self.summary_line(self._finish())
            if line is not None and line[1]:
                import sys

                from .report import scrub

                sys.stderr.write(scrub(line[0], config) + "\n")
        except Exception:  # noqa: BLE001
            pass


def pytest_sessionstart(session: pytest.Session) -> None:
    """After the settings (``tryfirst`` in :mod:`revgate.plugin`), before the deployment is resolved."""
    config = session.config
    from .log_scrub import install

    install(config)  # again, in case pytest's logging plugin registered after this module's configure
    if hasattr(config, "workerinput"):
        return
    from .settings import settings_key

    settings = config.stash.get(settings_key, None)
    if settings is None:
        return
    try:
        notify = resolve_notify(config, settings.checklist)
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[notify_key] = notify
    if not notify.webhooks:
        return
    if hasattr(settings, "extra_secrets"):
        config.stash[settings_key] = dataclasses.replace(
            settings, extra_secrets=tuple(dict.fromkeys([*settings.extra_secrets, *notify.secrets()]))
        )
    plugin = NotifyPlugin(config, notify)
    plugin.session = session
    config.pluginmanager.register(plugin, "revgate-notify")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # httpx logs a webhook's full URL at INFO: pytest's log handlers get every record scrubbed of the
    # run's secrets (the webhook URLs are among them once resolved), wherever they print or write it
    from .log_scrub import install

    install(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    notify = config.stash.get(notify_key, None)
    if notify is None:
        return []
    section = None
    from .settings import settings_key

    settings = config.stash.get(settings_key, None)
    if settings is not None:
        section = getattr(settings.checklist, "notify", None)
    if not notify.webhooks and section is None:
        return []
    return [f"revgate notify: {notify.header()}"]

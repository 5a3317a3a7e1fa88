"""What a notification says, and how each receiver wants it: Slack, Google Chat, plain JSON.

A :class:`Message` is built once per moment (:data:`ROLLBACK_STARTED`,
:data:`RUN_FINISHED`) from plain data; :func:`payload` renders it for one
receiver. The text is short and plain: a title line, then one line per fact,
read on a phone.

Formats, and the documents they follow:

- ``slack``: a Slack incoming webhook (``https://hooks.slack.com/services/...``)
  takes a JSON body with ``text`` and optional ``blocks``; with blocks, ``text``
  is the fallback shown in notifications (https://api.slack.com/messaging/webhooks,
  docs.slack.dev "Sending messages using incoming webhooks"). Message text is
  ``mrkdwn``, in which ``&``, ``<`` and ``>`` must be escaped as ``&amp;``,
  ``&lt;``, ``&gt;`` (https://api.slack.com/reference/surfaces/formatting#escaping);
  a section block's text is at most 3000 characters (Block Kit reference,
  https://api.slack.com/reference/block-kit/blocks#section).
- ``google-chat``: a Google Chat incoming webhook
  (``https://chat.googleapis.com/v1/spaces/SPACE/messages?key=KEY&token=TOKEN``)
  takes ``{"text": "..."}`` posted as ``application/json; charset=UTF-8``
  (https://developers.google.com/workspace/chat/quickstart/webhooks; Workflows'
  https://cloud.google.com/workflows/docs/notify-google-chat). Text formatting
  uses ``*bold*`` and backquoted code (https://developers.google.com/workspace/chat/format-messages);
  a message's text is at most 4096 characters.
- ``json``: anything else; the body is :func:`json_body`'s documented schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "FORMATS",
    "Message",
    "ROLLBACK_STARTED",
    "RUN_FINISHED",
    "SCHEMA",
    "ci_run_url",
    "detect_format",
    "json_body",
    "payload",
    "redact_url",
]

ROLLBACK_STARTED = "rollback-started"
RUN_FINISHED = "run-finished"
SCHEMA = "revgate.notification/1"
FORMATS = ("auto", "slack", "google-chat", "json")
SLACK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
GOOGLE_CHAT_HOSTS = ("chat.googleapis.com",)
SLACK_SECTION_LIMIT = 3000
CHAT_TEXT_LIMIT = 4096
LINE_LIMIT = 200
"""Characters of one line (a failure's reason is cut there: a phone shows two or three lines of it)."""
RUN_URL_ENV = "REVGATE_RUN_URL"


@dataclass(kw_only=True)
class Message:
    """One notification: ``title`` (one line), ``lines`` (one fact each), ``data`` (the JSON fields)."""

    event: str
    title: str
    lines: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    """Texts inside ``lines`` (test ids) that chat formats show as code, so ``_`` or ``*`` in them is not formatting."""
    data: dict[str, Any] = field(default_factory=dict)

    def text(self, code: Callable[[str], str] = lambda s: s, escape: Callable[[str], str] = lambda s: s) -> str:
        lines = [escape(self.title)] + [escape(_cut(line)) for line in self.lines]
        text = "\n".join(lines)
        for span in sorted(set(self.code), key=len, reverse=True):
            if span:
                text = text.replace(escape(span), code(escape(span)))
        return text


def _cut(line: str, limit: int = LINE_LIMIT) -> str:
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n... (cut)"


def detect_format(url: str, configured: str = "auto") -> str:
    """``configured`` unless it is ``auto``; then by the URL's host: Slack, Google Chat, else ``json``."""
    if configured != "auto":
        return configured
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in SLACK_HOSTS:
        return "slack"
    if host in GOOGLE_CHAT_HOSTS:
        return "google-chat"
    return "json"


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/***``: the scheme, host and port only (the path and query hold the secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)/***"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}/***"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: Message) -> dict[str, Any]:
    """``{"text": fallback, "blocks": [section (mrkdwn), context]}``."""
    plain = _cap(message.text(), SLACK_SECTION_LIMIT)
    title, _, rest = message.text(code=lambda s: f"`{s}`", escape=_slack_escape).partition("\n")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cap(f"*{title}*", SLACK_SECTION_LIMIT)}},
    ]
    if rest:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cap(rest, SLACK_SECTION_LIMIT)}})
    return {"text": _slack_escape(plain), "blocks": blocks}


def google_chat_body(message: Message) -> dict[str, Any]:
    """``{"text": ...}``: the title in bold, test ids as code."""
    title, _, rest = message.text(code=lambda s: f"`{s}`").partition("\n")
    return {"text": _cap(f"*{title}*" + (f"\n{rest}" if rest else ""), CHAT_TEXT_LIMIT)}


def json_body(message: Message) -> dict[str, Any]:
    """The ``json`` format's body::

        schema       "revgate.notification/1"
        event        "rollback-started" | "run-finished"
        text         the message as plain text (what the chat formats show)
        verdict      PASS | FAIL | NOT VERIFIED | INTERRUPTED | ERROR (run-finished; null before)
        exit_status  the gate's exit code (run-finished)
        target       {url, service, region, project, revisions}
        trigger      {test, reason}: the first gating failure (null on a run without one)
        failed       [{test, reason}] gating failures (at most 10)
        not_verified [{test, reason}] (at most 10)
        traffic      {before, planned, after}: revision -> percent (null when unknown or unchanged)
        rollback     {status, message, mode} | null
        promotion    {status, message, percent} | null
        run_url      the CI run's page, or null
    """
    return {"schema": SCHEMA, "event": message.event, "text": message.text(), **message.data}


def payload(message: Message, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        return slack_body(message)
    if fmt == "google-chat":
        return google_chat_body(message)
    return json_body(message)


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")


def ci_run_url(env: Mapping[str, str] | None = None) -> str | None:
    """The page of the CI run, when the environment names one:

    - ``REVGATE_RUN_URL``, when set (any CI);
    - GitHub Actions: ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``, from the
      default variables GitHub sets in every step (https://docs.github.com/en/actions/reference/variables-reference);
    - Cloud Build: ``https://console.cloud.google.com/cloud-build/builds;region=$LOCATION/$BUILD_ID?project=$PROJECT_ID``
      (``/builds/$BUILD_ID`` without ``LOCATION``). ``BUILD_ID``, ``PROJECT_ID`` and ``LOCATION`` are Cloud Build's
      default substitutions (https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values),
      which a step sees as variables only when its ``env`` passes them: ``env: ["BUILD_ID=$BUILD_ID",
      "PROJECT_ID=$PROJECT_ID", "LOCATION=$LOCATION"]``.
    """
    env = os.environ if env is None else env
    override = env.get(RUN_URL_ENV, "").strip()
    if override:
        return override
    server, repo, run = (env.get(k, "").strip() for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repo and run:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"
    build, project = env.get("BUILD_ID", "").strip(), env.get("PROJECT_ID", "").strip()
    if build and project:
        location = env.get("LOCATION", "").strip()
        where = f";region={location}" if location and location != "global" else ""
        return f"https://console.cloud.google.com/cloud-build/builds{where}/{build}?project={project}"
    return None

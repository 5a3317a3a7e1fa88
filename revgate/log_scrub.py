"""No secret through a library's logger: every record pytest's logging handlers receive is scrubbed.

httpx logs each request at INFO with its full URL (``HTTP Request: POST https://hooks.slack.com/
services/T/B/SECRET "HTTP/1.1 200 OK"``), and a webhook URL is a secret; the websockets library
logs a handshake's headers at DEBUG (``> Authorization: Bearer ...``). With ``--log-cli-level``,
``--log-file`` or the captured-log sections, pytest would print or write them. So a filter on each
of pytest's handlers (live log, log file, captured logs, ``caplog``) replaces every secret of the run
(the API token, the webhook URLs' secret parts: :meth:`revgate.settings.Settings.secrets`) with
``***`` in the message and in a formatted traceback, before any handler formats the record.
The filter reads the secrets when a record comes, so it holds for secrets resolved after it was
installed, and does nothing in a run without them.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

__all__ = ["SecretFilter", "install"]


class SecretFilter(logging.Filter):
    """Scrubs a record of the run's secrets (never drops it)."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__("revgate-secrets")
        self.config = config

    def _secrets(self) -> list[str]:
        from .settings import settings_key

        settings = self.config.stash.get(settings_key, None)
        return sorted((s for s in (settings.secrets() if settings else []) if s), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets()
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose arguments do not format: keep it as it is
            return True
        scrubbed = _scrub(message, secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _scrub(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = _scrub(record.stack_info, secrets)
        return True


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def install(config: pytest.Config) -> None:
    """Add the filter to every handler of pytest's logging plugin (once)."""
    plugin: Any = config.pluginmanager.get_plugin("logging-plugin")
    if plugin is None:
        return
    scrubber = SecretFilter(config)
    for name in ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler"):
        handler = getattr(plugin, name, None)
        if isinstance(handler, logging.Handler) and not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(scrubber)

"""The fake Cloud Logging store: entries in their JSON form, listed as ``ListLogEntries`` lists them.

Behaviour (google/logging/v2/logging.proto, ``ListLogEntriesRequest``):

- ``resource_names`` is required: ``projects/PROJECT_ID`` of this sandbox's project (another
  project is PERMISSION_DENIED, another kind of parent, or none, INVALID_ARGUMENT);
- ``filter``: the subset of :mod:`sandbox.log_filter` (else INVALID_ARGUMENT);
- ``order_by``: ``"timestamp asc"`` (the default) or ``"timestamp desc"``; entries with equal
  timestamps in ``insert_id`` order;
- ``page_size``: default 50, negative or above 1000 refused; ``next_page_token`` while more entries
  match; a ``page_token`` is only valid with the same filter, order and parents.

Visibility: an entry becomes visible ``visibility_delay`` seconds after it was written (Cloud
Logging ingestion is not instantaneous: "There is typically a slight delay between when log entries
are created and when they show up in Cloud Logging",
https://cloud.google.com/functions/1stgendocs/monitoring/logging), or after the delay of its own log
name (:attr:`LogStore.delays`, keyed by the log id, ``run.googleapis.com/stdout``): Cloud Logging
promises no order across log names, and its tail API buffers entries "to prevent out of order
results due to late arriving log entries" (``TailLogEntriesRequest.buffer_window``,
google/logging/v2/logging.proto), so an entry written before another may show after it. The delays
are read at query time, so ``sandbox delay logs S`` applies to entries already written, as the
metrics delay does.

Every filter received is kept (:attr:`LogStore.filters`), so tests can check what the gate asked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sandbox.log_filter import InvalidFilter, compile_filter, parse_time

__all__ = ["InvalidRequest", "LogStore", "PermissionDenied"]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
MAX_ENTRIES = 200_000
"""Entries kept at most (the oldest are dropped first): the sandbox runs for hours, not for the 30-day retention."""


class InvalidRequest(ValueError):
    """INVALID_ARGUMENT, with a one-line message."""


class PermissionDenied(ValueError):
    """PERMISSION_DENIED: a project the sandbox does not hold."""


@dataclass
class _Stored:
    entry: dict[str, Any]
    written: float
    seq: int
    sort_key: tuple[float, str] = field(default=(0.0, ""))


class LogStore:
    """Thread-safe: the router, the revision output readers and the gRPC threads all use it."""

    def __init__(self, *, project: str, visibility_delay: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        self.project = project
        self.visibility_delay = visibility_delay
        self.delays: dict[str, float] = {}
        """Log id (``run.googleapis.com/stderr``, ``python``) -> its own visibility delay (seconds)."""
        self.clock = clock
        self.filters: list[str] = []
        self._lock = threading.Lock()
        self._entries: list[_Stored] = []
        self._seq = 0

    def write(self, entry: dict[str, Any]) -> None:
        """Store one entry (its JSON form, as :mod:`sandbox.log_capture` builds it)."""
        stamp = parse_time(str(entry["timestamp"])).timestamp()
        with self._lock:
            self._seq += 1
            self._entries.append(_Stored(entry, self.clock(), self._seq, (stamp, str(entry.get("insertId", "")))))
            if len(self._entries) > MAX_ENTRIES:
                del self._entries[: len(self._entries) - MAX_ENTRIES]

    def delay_of(self, entry: dict[str, Any]) -> float:
        """The visibility delay of ``entry``: its log name's own, else the store's."""
        log_id = unquote(str(entry.get("logName", "")).partition("/logs/")[2])
        return self.delays.get(log_id, self.visibility_delay)

    def set_delay(self, seconds: float, log_id: str | None = None) -> None:
        """Every log name's delay (``log_id`` None: the per-name delays are cleared), or one log name's."""
        with self._lock:
            if log_id is None:
                self.visibility_delay = seconds
                self.delays.clear()
            else:
                self.delays[log_id] = seconds

    def visible(self) -> list[dict[str, Any]]:
        now = self.clock()
        with self._lock:
            return [s.entry for s in self._entries if s.written + self.delay_of(s.entry) <= now]

    def list(
        self,
        *,
        resource_names: list[str],
        filter_text: str,
        order_by: str,
        page_size: int,
        page_token: str,
    ) -> tuple[list[dict[str, Any]], str]:
        """One page of matching visible entries and the next page token ('' when none)."""
        self._check_parents(resource_names)
        with self._lock:
            self.filters.append(filter_text)
        order = (order_by or "timestamp asc").strip().lower()
        if order not in ("timestamp asc", "timestamp desc"):
            raise InvalidRequest(f'order_by {order_by!r}: only "timestamp asc" and "timestamp desc" are permitted')
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size {page_size}: must be between 0 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        try:
            predicate = compile_filter(filter_text)
        except InvalidFilter as exc:
            raise InvalidRequest(f"invalid filter: {exc}") from None
        digest = hashlib.sha256(json.dumps([sorted(resource_names), filter_text, order]).encode()).hexdigest()[:16]
        offset = 0
        if page_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(page_token.encode()))
                offset, token_digest = int(token["o"]), str(token["d"])
            except (ValueError, KeyError, TypeError):
                raise InvalidRequest("page_token is not a token this API returned") from None
            if token_digest != digest:
                raise InvalidRequest("page_token belongs to another request: give the same filter, order_by and resource_names")
        now = self.clock()
        with self._lock:
            stored = [s for s in self._entries if s.written + self.delay_of(s.entry) <= now]
        stored.sort(key=lambda s: s.sort_key, reverse=order == "timestamp desc")
        matched = [s.entry for s in stored if predicate(s.entry)]
        page = matched[offset : offset + size]
        following = ""
        if offset + size < len(matched):
            following = base64.urlsafe_b64encode(json.dumps({"o": offset + size, "d": digest}).encode()).decode()
        return page, following

    def _check_parents(self, names: list[str]) -> None:
        if not names:
            raise InvalidRequest("resource_names is required: give projects/PROJECT_ID")
        if len(names) > 100:
            raise InvalidRequest("at most 100 resource_names may be given")
        for name in names:
            parts = name.split("/")
            if len(parts) != 2 or parts[0] != "projects" or not parts[1]:
                raise InvalidRequest(
                    f"resource name {name!r}: the sandbox's Logging API holds projects/PROJECT_ID only "
                    "(no organizations, folders, billing accounts or views)"
                )
            if parts[1] != self.project:
                raise PermissionDenied(f"the caller does not have permission to read the logs of project {parts[1]!r}")

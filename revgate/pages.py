"""What a page did while it loaded, and the problems a ``[[page]]`` check sees in it.

:class:`PageWatch` listens to a Playwright page (console, uncaught errors,
requests, responses) and records plain data; :func:`judge` turns that record,
the page's timings and the check's settings into the list of problems a user
reads, every one of them, not only the first. Judging is pure: it takes no
browser, so the rules (what is third-party, what a favicon is, which console
line repeats a failed request) read in one place.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover - Playwright is imported lazily
    from playwright.sync_api import ConsoleMessage, Page, Request, Response

    from .checklist import Page as PageCheck

__all__ = [
    "PERF_SCRIPT",
    "ConsoleLine",
    "Judgement",
    "PageNote",
    "PageWatch",
    "RequestTrouble",
    "Timings",
    "judge",
    "origin_of",
]

PERF_SCRIPT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const size = (e) => e.transferSize || e.encodedBodySize || 0;
  return {
    load: nav ? nav.loadEventEnd : 0,
    dcl: nav ? nav.domContentLoadedEventEnd : 0,
    bytes: (nav ? size(nav) : 0) + resources.reduce((sum, e) => sum + size(e), 0),
    icons: Array.from(document.querySelectorAll("link[rel~='icon']"), (l) => l.href),
  };
}"""
"""Navigation timing (ms from navigation start), bytes transferred, and the page's icon URLs."""

_RESOURCE_LOAD_FAILED = re.compile(r"^Failed to load resource\b")


def origin_of(url: str) -> str:
    """``https://host:port`` of a URL (default ports dropped, as browsers do); '' for data:, blob: ..."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


@dataclass(frozen=True)
class ConsoleLine:
    kind: str
    text: str
    url: str = ""
    line: int = 0

    def where(self) -> str:
        return f" (at {self.url}:{self.line})" if self.url else ""


@dataclass(frozen=True)
class RequestTrouble:
    """A request that failed (``failure`` set) or was answered with a status >= 400."""

    method: str
    url: str
    resource_type: str
    status: int | None = None
    failure: str = ""

    def describe(self) -> str:
        what = f"HTTP {self.status}" if self.status is not None else self.failure
        return f"{self.method} {self.url} ({self.resource_type}): {what}"


@dataclass
class Timings:
    load_ms: float = 0.0
    dom_content_loaded_ms: float = 0.0
    bytes: int = 0
    icons: list[str] = field(default_factory=list)

    @classmethod
    def from_script(cls, value: dict[str, Any]) -> Timings:
        return cls(
            load_ms=float(value.get("load") or 0),
            dom_content_loaded_ms=float(value.get("dcl") or 0),
            bytes=int(value.get("bytes") or 0),
            icons=[str(i) for i in value.get("icons") or []],
        )


class PageWatch:
    """Records what a page does: console lines, uncaught errors, failed and >= 400 requests, requests in flight."""

    def __init__(self, page: Page) -> None:
        self.console: list[ConsoleLine] = []
        self.page_errors: list[str] = []
        self.troubles: list[RequestTrouble] = []
        self.log: list[str] = []
        """Everything seen, in order, for the console log artifact."""
        self._in_flight: set[int] = set()
        self._last_activity = time.monotonic()
        self._started = time.monotonic()
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_request_done)
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    def _note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self._started:8.3f}s {text}")

    def _on_console(self, message: ConsoleMessage) -> None:
        location = message.location or {}
        line = ConsoleLine(message.type, message.text, location.get("url", ""), int(location.get("lineNumber", 0) or 0))
        self.console.append(line)
        self._note(f"console.{line.kind}: {line.text}{line.where()}")

    def _on_page_error(self, error: Any) -> None:
        text = getattr(error, "message", None) or str(error)
        name = getattr(error, "name", "") or "Error"
        self.page_errors.append(f"{name}: {text}" if not text.startswith(name) else text)
        stack = getattr(error, "stack", "") or ""
        self._note(f"uncaught {name}: {text}" + (f"\n{stack}" if stack else ""))

    def _on_request(self, request: Request) -> None:
        self._in_flight.add(id(request))
        self._last_activity = time.monotonic()
        self._note(f"request {request.method} {request.url} ({request.resource_type})")

    def _on_request_done(self, request: Request) -> None:
        self._in_flight.discard(id(request))
        self._last_activity = time.monotonic()

    def _on_request_failed(self, request: Request) -> None:
        self._on_request_done(request)
        failure = request.failure or "failed"
        self.troubles.append(RequestTrouble(request.method, request.url, request.resource_type, failure=failure))
        self._note(f"request failed {request.method} {request.url}: {failure}")

    def _on_response(self, response: Response) -> None:
        request = response.request
        self._note(f"response {response.status} {request.method} {response.url}")
        if response.status >= 400:
            self.troubles.append(RequestTrouble(request.method, response.url, request.resource_type, status=response.status))

    def quiet_for(self) -> float:
        """Seconds since the last request started or ended; 0 while one is in flight."""
        if self._in_flight:
            return 0.0
        return time.monotonic() - self._last_activity


class PageNote(UserWarning):
    """Something a page did that the checklist allows, reported as a warning (a third-party failure)."""


@dataclass
class Judgement:
    problems: list[str] = field(default_factory=list)
    """Each makes the check fail."""
    notes: list[str] = field(default_factory=list)
    """Reported without failing (third-party failures the checklist allows)."""


def _is_favicon(url: str, icons: list[str]) -> bool:
    return urlsplit(url).path == "/favicon.ico" or url in icons


def judge(
    check: PageCheck,
    *,
    origin: str,
    console: list[ConsoleLine],
    page_errors: list[str],
    troubles: list[RequestTrouble],
    timings: Timings | None,
    document: list[str] = (),  # type: ignore[assignment]
    rendering: list[str] = (),  # type: ignore[assignment]
) -> Judgement:
    """Every problem seen on the page, in the order a reader wants them.

    ``document``: problems of the document itself (listed first); ``rendering``:
    selectors or text that did not show (listed after the requests, before the budgets).
    """
    result = Judgement(problems=list(document))
    icons = timings.icons if timings else []
    ignored = [re.compile(p) for p in check.ignore_console]

    # Requests: one entry per URL (a stylesheet answered 404 is also 'aborted'; report the 404).
    reported: set[str] = set()
    skipped: set[str] = set()
    by_url: dict[str, RequestTrouble] = {}
    for trouble in troubles:
        previous = by_url.get(trouble.url)
        if previous is None or (previous.status is None and trouble.status is not None):
            by_url[trouble.url] = trouble
    request_lines: list[str] = []
    for url, trouble in by_url.items():
        if _is_favicon(url, icons) and not check.require_favicon:
            skipped.add(url)
            continue
        if origin_of(url) and origin_of(url) != origin:
            line = f"third-party request {trouble.describe()}"
            if check.allow_third_party_failures:
                result.notes.append(f"{line} (allowed: allow_third_party_failures = true)")
                skipped.add(url)
                continue
            request_lines.append(f"{line} (set allow_third_party_failures = true to accept it)")
        else:
            request_lines.append(f"request {trouble.describe()}")
        reported.add(url)

    for error in page_errors:
        result.problems.append(f"uncaught exception: {error}")
    for line in console:
        if line.kind != "error":
            continue
        if _RESOURCE_LOAD_FAILED.match(line.text) and line.url in reported | skipped:
            continue  # the browser's own line for a request listed below (or deliberately ignored)
        if any(p.search(line.text) for p in ignored):
            continue
        result.problems.append(f"console error: {line.text}{line.where()}")
    result.problems.extend(request_lines)
    result.problems.extend(rendering)

    if timings is not None:
        budgets = (
            ("load_ms", "load event", timings.load_ms, check.load_ms, "ms"),
            ("dom_content_loaded_ms", "DOMContentLoaded", timings.dom_content_loaded_ms, check.dom_content_loaded_ms, "ms"),
            ("max_bytes", "bytes transferred", float(timings.bytes), check.max_bytes, "bytes"),
        )
        for key, label, seen, limit, unit in budgets:
            if limit is None:
                continue
            if unit == "ms" and seen <= 0:
                result.problems.append(f"{label}: never reached (budget {limit:g} ms, key {key})")
            elif seen > limit:
                result.problems.append(f"{label}: {seen:,.0f} {unit}, over the budget of {limit:,.0f} {unit} (key {key})")
    return result

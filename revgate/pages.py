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
_FONT_DECODE = re.compile(r"^Failed to decode downloaded font: (\S+)")
_OTS = re.compile(r"^OTS parsing error\b")


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
    """A request that failed (``failure`` set), was answered with a status >= 400, or came back as
    something else than what was asked (``served``: the answer's media type)."""

    method: str
    url: str
    resource_type: str
    status: int | None = None
    failure: str = ""
    served: str = ""

    def describe(self) -> str:
        if self.served:
            return (f"{self.method} {self.url}: a {self.resource_type} was asked, and {self.status} {self.served} came back"
                    + (" (an app's page instead of a missing file?)" if "html" in self.served else ""))
        return f"{self.method} {self.url} ({self.resource_type}): {self.cause()}"

    def cause(self) -> str:
        if self.served:
            return f"came back as {self.served}"
        return f"HTTP {self.status}" if self.status is not None else plain_failure(self.failure)


ASSET_TYPES: dict[str, tuple[str, ...]] = {
    "script": ("javascript", "ecmascript", "jscript", "livescript", "json", "wasm"),
    "stylesheet": ("text/css",),
    "font": ("font", "woff", "opentype", "truetype", "octet-stream", "vnd.ms-fontobject", "sfnt"),
    "image": ("image/", "octet-stream"),
}
"""What each asset's ``Content-Type`` may contain (Chromium's resource types; fonts and images are often
``application/octet-stream``)."""


def mime_mismatch(resource_type: str, content_type: str) -> str:
    """The media type when an asset came back as something else than its kind ('' when it fits).
    HTML never fits: it is what a single-page app answers for a missing file. No type at all is left
    to the browser's sniffing."""
    fits = ASSET_TYPES.get(resource_type)
    mime = content_type.split(";", 1)[0].strip().lower()
    if fits is None or not mime:
        return ""
    if "html" in mime or not any(f in mime for f in fits):
        return mime
    return ""


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
        self.causes: dict[str, str] = {}
        """URL -> why the secret route could not fetch it (the browser only sees an abort code)."""
        self.error_places: dict[str, str] = {}
        """Uncaught error text -> 'URL:line:column' (Chromium's DevTools; a SyntaxError has no stack)."""
        self._in_flight: dict[int, tuple[str, float]] = {}
        """id -> ('GET URL (type)', when it started) of each request not finished."""
        self.answered: list[tuple[float, str, int]] = []
        """``(epoch seconds, origin, status)`` of every answer the page got: the gate's own requests,
        which a rollout's soak takes out of the revision's Cloud Monitoring counts."""
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

    def watch_exceptions(self, page: Page) -> None:
        """Chromium only: where each uncaught error was thrown, from DevTools (a SyntaxError's file and line)."""
        try:
            session = page.context.new_cdp_session(page)
            session.on("Runtime.exceptionThrown", self._on_exception_thrown)
            session.send("Runtime.enable")
        except Exception:  # noqa: BLE001 - not Chromium: messages keep Playwright's stack only
            return

    def _on_exception_thrown(self, params: dict[str, Any]) -> None:
        details = params.get("exceptionDetails") or {}
        url = details.get("url") or ""
        frames = (details.get("stackTrace") or {}).get("callFrames") or []
        if not url and frames:
            url = frames[0].get("url") or ""
        if not url:
            return
        text = ((details.get("exception") or {}).get("description") or details.get("text") or "").splitlines()
        where = f"{url}:{int(details.get('lineNumber', 0)) + 1}:{int(details.get('columnNumber', 0)) + 1}"
        if text:
            self.error_places.setdefault(text[0], where)

    def _on_page_error(self, error: Any) -> None:
        text = getattr(error, "message", None) or str(error)
        name = getattr(error, "name", "") or "Error"
        line = f"{name}: {text}" if not text.startswith(name) else text
        stack = getattr(error, "stack", "") or ""
        place = _first_place(stack)
        self.page_errors.append(line + (f" (at {place})" if place else ""))
        self._note(f"uncaught {name}: {text}" + (f"\n{stack}" if stack else ""))

    def place_errors(self) -> list[str]:
        """The uncaught errors, each with where it was thrown when its stack did not say."""
        placed = []
        for line in self.page_errors:
            if " (at " not in line and line in self.error_places:
                line += f" (at {self.error_places[line]})"
            placed.append(line)
        return placed

    def _on_request(self, request: Request) -> None:
        self._in_flight[id(request)] = (f"{request.method} {request.url} ({request.resource_type})", time.monotonic())
        self._last_activity = time.monotonic()
        self._note(f"request {request.method} {request.url} ({request.resource_type})")

    def _on_request_done(self, request: Request) -> None:
        self._in_flight.pop(id(request), None)
        self._last_activity = time.monotonic()

    def _on_request_failed(self, request: Request) -> None:
        self._on_request_done(request)
        failure = request.failure or "failed"
        if request.url in self.causes:
            failure = self.causes[request.url]
        self.troubles.append(RequestTrouble(request.method, request.url, request.resource_type, failure=failure))
        self._note(f"request failed {request.method} {request.url}: {failure}")

    def _on_response(self, response: Response) -> None:
        request = response.request
        self.answered.append((time.time(), origin_of(response.url), response.status))
        self._note(f"response {response.status} {request.method} {response.url}")
        if response.status >= 400:
            self.troubles.append(RequestTrouble(request.method, response.url, request.resource_type, status=response.status))
        elif 200 <= response.status < 300 and response.status != 204 and origin_of(response.url):
            served = mime_mismatch(request.resource_type, response.headers.get("content-type", ""))
            if served:
                self.troubles.append(
                    RequestTrouble(request.method, response.url, request.resource_type, status=response.status, served=served)
                )
                self._note(f"  {request.resource_type} came back as {served}")

    def quiet_for(self) -> float:
        """Seconds since the last request started or ended; 0 while one is in flight."""
        if self._in_flight:
            return 0.0
        return time.monotonic() - self._last_activity

    def still_open(self) -> list[str]:
        """The requests not finished (an EventSource, a long poll, a worker's fetch), oldest first."""
        now = time.monotonic()
        return [f"{what}, open {now - since:.1f} s" for what, since in sorted(self._in_flight.values(), key=lambda v: v[1])]


class PageNote(UserWarning):
    """Something a page did that the checklist allows, reported as a warning (a third-party failure)."""


@dataclass
class Judgement:
    problems: list[str] = field(default_factory=list)
    """Each makes the check fail."""
    notes: list[str] = field(default_factory=list)
    """Reported without failing (third-party failures the checklist allows)."""


_PLACE = re.compile(r"\b(https?://[^\s()]+:\d+:\d+)")

NET_ERRORS = {
    "net::ERR_CONNECTION_REFUSED": "connection refused",
    "net::ERR_CONNECTION_RESET": "connection reset",
    "net::ERR_CONNECTION_CLOSED": "connection closed",
    "net::ERR_EMPTY_RESPONSE": "the server closed the connection without answering",
    "net::ERR_NAME_NOT_RESOLVED": "host name not resolved",
    "net::ERR_ADDRESS_UNREACHABLE": "address unreachable",
    "net::ERR_TIMED_OUT": "timed out",
    "net::ERR_CONNECTION_TIMED_OUT": "connection timed out",
    "net::ERR_ABORTED": "aborted (the page stopped loading it)",
}
"""Chromium's error codes in plain words (the code is kept in messages too)."""

GROUP_FROM = 3
"""This many requests failing for one cause are one problem ("41 requests failed: connection refused")."""


def _first_place(stack: str) -> str:
    match = _PLACE.search(stack)
    return match.group(1) if match else ""


def plain_failure(failure: str) -> str:
    """``net::ERR_CONNECTION_REFUSED`` -> ``connection refused (net::ERR_CONNECTION_REFUSED)``."""
    for code, words in NET_ERRORS.items():
        if failure.startswith(code):
            return f"{words} ({failure})"
    return failure


def _is_favicon(url: str, icons: list[str]) -> bool:
    return urlsplit(url).path == "/favicon.ico" or url in icons


def _matches_any(patterns: list[re.Pattern[str]], *texts: str) -> bool:
    return any(p.search(t) for p in patterns for t in texts if t)


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
    ignored_requests = [re.compile(p) for p in getattr(check, "ignore_requests", [])]
    allowed_mime = [re.compile(p) for p in getattr(check, "allow_mime_mismatch", [])]
    levels = set(getattr(check, "console_levels", ["error"]))

    # Requests: one entry per URL (a stylesheet answered 404 is also 'aborted'; report the 404).
    reported: set[str] = set()
    skipped: set[str] = set()
    by_url: dict[str, RequestTrouble] = {}
    for trouble in troubles:
        if trouble.served and _matches_any(allowed_mime, trouble.url):
            continue
        previous = by_url.get(trouble.url)
        if previous is None or (previous.status is None and trouble.status is not None):
            by_url[trouble.url] = trouble
    same_origin: list[RequestTrouble] = []
    third_party: list[RequestTrouble] = []
    for url, trouble in by_url.items():
        if _is_favicon(url, icons) and not check.require_favicon:
            skipped.add(url)
            continue
        if _matches_any(ignored_requests, url, trouble.describe()):
            skipped.add(url)
            continue
        if origin_of(url) and origin_of(url) != origin:
            if check.allow_third_party_failures:
                result.notes.append(f"third-party request {trouble.describe()} (allowed: allow_third_party_failures = true)")
                skipped.add(url)
                continue
            third_party.append(trouble)
        else:
            same_origin.append(trouble)
        reported.add(url)
    request_lines = _request_lines(same_origin, "")
    request_lines += [
        f"{line} (set allow_third_party_failures = true to accept it)" for line in _request_lines(third_party, "third-party ")
    ]

    for error, count in _counted(page_errors):
        result.problems.append(f"uncaught exception: {error}" + (f" ({count} times)" if count > 1 else ""))
    console_lines: list[str] = []
    mismatched = {url: t.served for url, t in by_url.items() if t.served and url in reported}
    fonts: set[str] = set()
    for line in console:
        font = _FONT_DECODE.match(line.text)
        if font or _OTS.match(line.text):
            # Chromium only warns: a font that does not decode is a font missing from the page
            url = font.group(1) if font else line.url
            if url in mismatched or url in skipped or _matches_any(allowed_mime, url) or url in fonts:
                continue
            if font:
                fonts.add(url)
                reason = next((c.text for c in console if _OTS.match(c.text) and c.url == url), "")
                console_lines.append(f"font {url} failed to decode" + (f" ({reason})" if reason else ""))
            continue
        if line.kind not in levels:
            continue
        if "MIME type" in line.text and any(u in line.text or u == line.url or f"'{m}'" in line.text or f'"{m}"' in line.text
                                            for u, m in mismatched.items()):
            continue  # the browser's own line for an asset listed below as served as something else
        if _RESOURCE_LOAD_FAILED.match(line.text) and line.url in reported | skipped:
            continue  # the browser's own line for a request listed below (or deliberately ignored)
        if _RESOURCE_LOAD_FAILED.match(line.text) and _is_favicon(line.url, icons):
            # Chromium's own favicon fetch is no Playwright request: only its console line tells
            if check.require_favicon:
                console_lines.append(f"favicon missing: {line.text} (at {line.url})")
            continue
        if _RESOURCE_LOAD_FAILED.match(line.text) and _matches_any(ignored_requests, line.url):
            continue
        if _matches_any(ignored, line.text, line.url):
            continue
        console_lines.append(f"console {line.kind}: {line.text}{line.where()}")
    result.problems.extend(f"{text} ({count} times)" if count > 1 else text for text, count in _counted(console_lines))
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


def _counted(lines: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return list(counts.items())


def _request_lines(troubles: list[RequestTrouble], prefix: str) -> list[str]:
    """One line per request, except that ``GROUP_FROM`` or more with one cause are one line."""
    by_cause: dict[str, list[RequestTrouble]] = {}
    for trouble in troubles:
        by_cause.setdefault(trouble.cause(), []).append(trouble)
    lines = []
    for cause, group in by_cause.items():
        if len(group) < GROUP_FROM:
            lines.extend(f"{prefix}request {t.describe()}" for t in group)
            continue
        if group[0].served:
            shown = ", ".join(f"{t.url} ({t.resource_type})" for t in group[:3])
            more = f" and {len(group) - 3} more" if len(group) > 3 else ""
            lines.append(f"{len(group)} {prefix}assets came back as {group[0].served}, not what was asked: {shown}{more}")
            continue
        shown = ", ".join(t.url for t in group[:3])
        more = f" and {len(group) - 3} more" if len(group) > 3 else ""
        verb = "answered" if group[0].status is not None else "failed:"
        lines.append(f"{len(group)} {prefix}requests {verb} {cause}: {shown}{more}")
    return lines

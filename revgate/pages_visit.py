"""One visit of a ``[[page]]``: load it in a browser context, wait for it, judge it, keep evidence.

Secrets: the API token (``auth = true``) and the IAM ID token are added by a
route on the revision's own origin only. Each routed request is fetched by
Playwright without following redirects and the answer handed to the browser,
which follows any redirect itself: a redirect to another origin goes out as a
fresh, unrouted request, so a secret never leaves the revision's origin
(``extra_http_headers`` would send them everywhere). Playwright routes only the
first request of a redirect chain, so a redirect that stays on the origin
(``/`` -> ``/lab``) is walked first: when every hop stays on the origin, a
navigation continues with the headers (the browser follows the hops itself and
sends them along: every hop was seen to be on the origin), and any other request
gets the chain's last answer. A chain that leaves the origin is handed to the
browser as it came, without the secret.

When the route cannot fetch a request (the revision is down), the browser is
told the matching network error (connection refused, reset, timed out) rather
than a bare ``net::ERR_FAILED``, and the watch records the route's own reason.

Evidence of a failed visit goes to the test's folder of the pytest-playwright
output directory (``--output``, default ``test-results``): ``screenshot.png``
and ``console.log`` (every console line, uncaught error, request and answer,
secrets replaced by ``***``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .pages import PERF_SCRIPT, Judgement, PageWatch, Timings, judge, origin_of, plain_failure

if TYPE_CHECKING:  # pragma: no cover - Playwright is imported lazily
    from playwright.sync_api import BrowserContext, Page, Route

    from .checklist import Page as PageCheck

__all__ = ["ABSENT_POLL_MS", "Visit", "add_secret_route", "visit_page"]

SETTLE_SLICE_MS = 100
"""The settle period is waited in slices this long, each against the clock."""
ABSENT_POLL_MS = 50
"""How often, while the page settles, the ``absent`` selectors and texts are looked for."""


REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 10
_ABORT_CODES = (
    ("ECONNREFUSED", "connectionrefused", "connection refused"),
    ("ECONNRESET", "connectionreset", "connection reset"),
    ("socket hang up", "connectionclosed", "connection closed without an answer"),
    ("ENOTFOUND", "namenotresolved", "host name not resolved"),
    ("EAI_AGAIN", "namenotresolved", "host name not resolved"),
    ("EHOSTUNREACH", "addressunreachable", "address unreachable"),
    ("Timeout", "timedout", "no answer within the request timeout"),
    ("ETIMEDOUT", "timedout", "timed out"),
)


def _route_failure(exc: Exception) -> tuple[str, str]:
    """(abort code for the browser, the real reason) of a failed ``route.fetch``."""
    text = str(exc).strip()
    first = text.splitlines()[0].removeprefix("Route.fetch: ").removeprefix("apiRequestContext.fetch: ") if text else ""
    for needle, code, words in _ABORT_CODES:
        if needle in text:
            return code, f"{words} ({first})"
    return "failed", first or type(exc).__name__


def add_secret_route(
    context: BrowserContext,
    *,
    origin: str,
    headers: dict[str, str],
    timeout: float,
    causes: dict[str, str] | None = None,
) -> None:
    """Send ``headers`` with every request to ``origin``, and only there (see the module docstring).

    ``causes`` receives URL -> the real reason of each request the route could not fetch."""
    from urllib.parse import urljoin

    from playwright.sync_api import Error as PlaywrightError

    pattern = re.compile("^" + re.escape(origin) + "(?:[/?#]|$)")

    def handle(route: Route) -> None:
        request = route.request
        sent = {**request.headers, **headers}
        try:
            answer = route.fetch(headers=sent, max_redirects=0, timeout=timeout * 1000)
            location = answer.headers.get("location", "")
            if answer.status not in REDIRECTS or not location:
                route.fulfill(response=answer)
                return
            # walk the chain while it stays on the origin
            url, last = request.url, answer
            for _ in range(MAX_HOPS):
                url = urljoin(url, last.headers.get("location", ""))
                if origin_of(url) != origin:
                    route.fulfill(response=answer)  # leaves the origin: the browser follows, unrouted
                    return
                hop = {k: v for k, v in sent.items() if k.lower() not in ("content-type", "content-length")}
                last = route.fetch(url=url, method="GET", headers=hop, max_redirects=0, timeout=timeout * 1000)
                if last.status not in REDIRECTS or not last.headers.get("location"):
                    break
            if request.is_navigation_request():
                route.continue_(headers=sent)  # every hop is on the origin: the headers may go along
            else:
                route.fulfill(response=last)
        except PlaywrightError as exc:
            code, reason = _route_failure(exc)
            if causes is not None:
                causes[request.url] = reason
            try:
                route.abort(code)
            except PlaywrightError:
                pass  # the page is gone

    context.route(pattern, handle)


@dataclass
class Visit:
    """What one visit found: the problems (empty: the page passed), notes, and where the evidence went."""

    url: str
    auth: str
    status: int | None = None
    final_url: str = ""
    elapsed: float = 0.0
    judgement: Judgement = field(default_factory=Judgement)
    artifacts: list[Path] = field(default_factory=list)
    screenshot_withheld: bool = False
    """No screenshot was taken: the page's visible text held the API token."""
    still_open: list[str] = field(default_factory=list)
    """Requests still open when the page was judged (never waited for: an EventSource, a long poll)."""
    settle_s: float = 0.0
    """Seconds the settle period took (from the selectors shown to the judgement)."""

    @property
    def problems(self) -> list[str]:
        return self.judgement.problems

    def message(self) -> str:
        """The failure message: the page, how many problems, where the evidence is, then every problem."""
        n = len(self.problems)
        head = f"GET {self.url} ({self.auth}): {n} problem{'s' if n != 1 else ''}"
        if self.status is not None:
            head += f" (document answered {self.status} after {self.elapsed:.2f} s)"
        if self.final_url and self.final_url != self.url:
            head += f", redirected to {self.final_url}"
        if self.artifacts:
            kept = "screenshot and console log" if any(a.name == "screenshot.png" for a in self.artifacts) else "console log"
            head += f"; {kept} in {self.artifacts[0].parent}"
        if self.screenshot_withheld:
            head += f" ({NO_SCREENSHOT})"
        return head + "".join(f"\n  - {p}" for p in self.problems)


def _wait_visible(page: Page, selector: str, deadline: float, timeout: float) -> str:
    """'' when ``selector`` shows before ``deadline``, else why not."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    remaining = max(deadline - time.monotonic(), 0.05)
    try:
        page.locator(selector).locator("visible=true").first.wait_for(state="attached", timeout=remaining * 1000)
    except PlaywrightTimeout:
        return f"selector {selector!r}: nothing visible matches it within {timeout:g} s"
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"selector {selector!r} cannot be used: {first.removeprefix('Locator.wait_for: ')}"
    return ""


def _wait_text(page: Page, text: str, deadline: float, timeout: float) -> str:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    remaining = max(deadline - time.monotonic(), 0.05)
    try:
        page.get_by_text(text).locator("visible=true").first.wait_for(state="attached", timeout=remaining * 1000)
    except PlaywrightTimeout:
        return f"text {text!r} is not shown within {timeout:g} s"
    return ""


def _absent_seen(page: Page, check: PageCheck, since: float) -> list[str]:
    """The ``absent`` selectors and ``absent_text`` visible now, each with the text it shows."""
    from playwright.sync_api import Error as PlaywrightError

    found = []
    when = f"{time.monotonic() - since:.2f} s after load"
    for selector in check.absent:
        try:
            shown = page.locator(selector).locator("visible=true")
            if shown.count():
                text = " ".join(shown.first.inner_text(timeout=1000).split())
                found.append(f"absent {selector!r} is visible ({when}): {text[:200]!r}")
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            found.append(f"absent {selector!r} cannot be used: {first.split(': ', 1)[-1]}")
    for text in check.absent_text:
        try:
            shown = page.get_by_text(text).locator("visible=true")
            if shown.count():
                around = " ".join(shown.first.inner_text(timeout=1000).split())
                found.append(f"absent_text {text!r} is shown ({when}): {around[:200]!r}")
        except PlaywrightError:
            continue  # the page navigated away meanwhile: seen at the next look
    return found


def _settle(page: Page, check: PageCheck, end: float, loaded: float) -> list[str]:
    """Watch the page until ``end`` (``settle_ms`` after the selectors showed, whatever requests are still
    open: an EventSource or a worker's fetch never ends). Errors and failed requests meanwhile count;
    an ``absent`` entry that becomes visible ends the watch at once. Returns what was seen of ``absent``."""
    if not (check.absent or check.absent_text):
        while (remaining := (end - time.monotonic()) * 1000) > 0:
            page.wait_for_timeout(min(remaining, SETTLE_SLICE_MS))  # short waits: a late wake-up costs one slice at most
        return []
    while True:
        seen = _absent_seen(page, check, loaded)
        if seen:
            return seen
        remaining = (end - time.monotonic()) * 1000
        if remaining <= 0:
            return []
        page.wait_for_timeout(min(ABSENT_POLL_MS, remaining))


def _count_own(watch: PageWatch, base_url: str) -> None:
    """The page's answers from the revision's own origin are the gate's own requests (:data:`revgate.target.SENT`)."""
    from .pages import origin_of
    from .target import SENT

    origin = origin_of(base_url)
    SENT.extend((at, status) for at, seen, status in watch.answered if seen == origin)
    watch.answered.clear()


def visit_page(
    context: BrowserContext,
    check: PageCheck,
    *,
    base_url: str,
    timeout: float,
    auth_label: str,
    evidence_dir: Path,
    scrub: Callable[[str], str],
    causes: dict[str, str] | None = None,
) -> Visit:
    """Load ``check.path`` in a new page of ``context`` and judge it; on problems, keep the evidence.

    ``causes``: filled by :func:`add_secret_route` with the real reason of requests it could not fetch."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url = base_url + check.path
    origin = origin_of(base_url)
    page = context.new_page()
    watch = PageWatch(page)
    if causes is not None:
        watch.causes = causes
    watch.watch_exceptions(page)
    visit = Visit(url=url, auth=auth_label)
    document: list[str] = []
    rendering: list[str] = []
    timings: Timings | None = None
    started = time.monotonic()
    timeout = check.timeout if getattr(check, "timeout", None) is not None else timeout
    deadline = started + timeout
    try:
        response = page.goto(url, wait_until="load", timeout=timeout * 1000)
        visit.final_url = page.url
        visit.status = response.status if response is not None else None
    except PlaywrightTimeout:
        document.append(
            f"the page did not load within {timeout:g} s (no load event; raise the page's timeout or --request-timeout if it is just slow)"
        )
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.removeprefix("Page.goto: ")
        cause = watch.causes.get(url, "")
        document.append(f"the page did not load: {cause or plain_failure(first)}")
    visit.elapsed = time.monotonic() - started
    if visit.status is not None and visit.status >= 400:
        document.append(f"the document answered {visit.status} (expected < 400)")
    elif not document:
        loaded = time.monotonic()
        for selector in check.selectors:
            why = _wait_visible(page, selector, deadline, timeout)
            if why:
                rendering.append(why)
        if check.text is not None:
            why = _wait_text(page, check.text, deadline, timeout)
            if why:
                rendering.append(why)
        settling = time.monotonic()
        rendering += _settle(page, check, min(settling + check.settle_ms / 1000, deadline), loaded)
        visit.settle_s = time.monotonic() - settling
        visit.still_open = watch.still_open()
        if visit.still_open:
            watch.log.append(f"still open when the page was judged (not waited for): {len(visit.still_open)}")
            watch.log.extend(f"  {line}" for line in visit.still_open)
        visit.final_url = page.url
        document += _redirect_problems(check, url, visit.final_url)
        try:
            timings = Timings.from_script(page.evaluate(PERF_SCRIPT))
        except PlaywrightError as exc:
            rendering.append(f"cannot read the page's timings: {str(exc).strip().splitlines()[0]}")

    _count_own(watch, base_url)
    documents = {url, visit.final_url} if visit.status is not None else set()
    visit.judgement = judge(
        check,
        origin=origin,
        console=[c for c in watch.console if not (c.url in documents and c.text.startswith("Failed to load resource"))],
        page_errors=watch.place_errors(),
        troubles=[t for t in watch.troubles if t.url not in documents],
        timings=timings,
        document=document,
        rendering=rendering,
    )
    if visit.problems:
        visit.artifacts = _keep_evidence(page, watch, visit, evidence_dir, scrub)
    return visit


def _redirect_problems(check: PageCheck, asked: str, final: str) -> list[str]:
    """The page ended elsewhere (a login page, most often) and ``allow_redirect_to`` does not allow it."""
    from urllib.parse import urlsplit

    same = lambda u: u.split("#", 1)[0].rstrip("/?")  # noqa: E731 - a fragment is the page's own business
    if not final or same(final) == same(asked):
        return []
    parts = urlsplit(final)
    path = parts.path or "/"
    candidates = (final, path + (f"?{parts.query}" if parts.query else ""), path)
    if any(re.search(p, c) for p in check.allow_redirect_to for c in candidates):
        return []
    hint = "; allow it with allow_redirect_to = [...]" if not check.allow_redirect_to else f" (allow_redirect_to: {check.allow_redirect_to})"
    login = " (a login page: is the token right?)" if "login" in final.lower() or "signin" in final.lower() else ""
    return [f"the page ended at {final}, not {asked}{login}{hint}"]


NO_SCREENSHOT = "no screenshot: the page's visible text contains the API token (a screenshot cannot be scrubbed)"


def shows_secret(page: Page, scrub: Callable[[str], str]) -> bool:
    """The page's visible text holds a secret (``scrub`` would change it): no screenshot may be taken.
    A page whose text cannot be read is treated as showing one."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        text = page.inner_text("body", timeout=2000)
    except PlaywrightError:
        return True
    return scrub(text) != text


def _keep_evidence(page: Page, watch: PageWatch, visit: Visit, folder: Path, scrub: Callable[[str], str]) -> list[Path]:
    from playwright.sync_api import Error as PlaywrightError

    folder.mkdir(parents=True, exist_ok=True)
    kept: list[Path] = []
    screenshot = folder / "screenshot.png"
    withheld = shows_secret(page, scrub)
    if not withheld:
        try:
            page.screenshot(path=screenshot, full_page=True, timeout=5000)
            kept.append(screenshot)
        except PlaywrightError:
            pass
    log = folder / "console.log"
    header = [f"# {visit.url} ({visit.auth})", *(f"# problem: {p}" for p in visit.problems)]
    if withheld:
        header.append(f"# {NO_SCREENSHOT}")
        visit.screenshot_withheld = True
    header.append("")
    log.write_text(scrub("\n".join(header + watch.log)) + "\n", encoding="utf-8")
    kept.append(log)
    return kept

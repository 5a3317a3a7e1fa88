"""Fixtures of the frontend checks: pytest-playwright pointed at the revision, with the Chromium we pick.

pytest-playwright provides the browser (one per worker, session-scoped), its
options (``--browser``, ``--headed``, ``--output``, ``--tracing``,
``--screenshot``, ``--video``) and its artifacts; :mod:`revgate.browser_plugin`
chooses the Chromium (for the team's ``page`` tests too); this file overrides:

- ``base_url``: the revision under test (``--revision-url``);
- ``browser_context_args``: ``--video`` without Playwright's ffmpeg records no video;
- ``delete_output_dir``: emptied once by the controller, not by each xdist worker
  (a late worker would delete the evidence another worker just wrote).

``visit`` loads one ``[[page]]`` in a fresh context. A page that sends a secret
(``auth = true`` with a token, or an ID token) gets its own context outside
pytest-playwright's recorder: a Playwright trace records request headers, so
none is recorded for it (said once in the terminal summary).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from revgate.browser import empty_output_dir, ffmpeg_path
from revgate.checklist import Page
from revgate.pages_visit import NO_SCREENSHOT, Visit, add_secret_route, shows_secret, visit_page
from revgate.settings import Settings, settings_key
from revgate.target import Target

if TYPE_CHECKING:  # pragma: no cover - Playwright is imported lazily
    from playwright.sync_api import Browser, BrowserContext

PAGE_TEST = "test_pages.py::test_page"


@pytest.fixture(scope="session")
def base_url(settings: Settings) -> str:
    """The revision under test: pytest-playwright's contexts resolve relative URLs against it."""
    return settings.revision_url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], browser_name: str) -> dict[str, Any]:
    if "record_video_dir" in browser_context_args and browser_name == "chromium" and ffmpeg_path() is None:
        return {k: v for k, v in browser_context_args.items() if k not in ("record_video_dir", "record_video_size")}
    return browser_context_args


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    # (no usable Chromium is refused at session start by revgate.browser_plugin)
    if getattr(config.option, "numprocesses", None):
        empty_output_dir(config)


def secret_pages(settings: Settings) -> list[str]:
    """Ids of the pages whose requests carry a secret."""
    return [p.id for p in settings.checklist.page if settings.id_token or (p.auth and settings.token)]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return
    ran = [r for reports in terminalreporter.stats.values() for r in reports if PAGE_TEST in getattr(r, "nodeid", "")]
    if not ran:
        return
    lines = []
    if config.getoption("--tracing", "off") != "off" and secret_pages(settings):
        lines.append(
            f"no Playwright trace for page(s) {', '.join(secret_pages(settings))}: "
            "they send a secret, and a trace records request headers"
        )
    if config.getoption("--video", "off") != "off" and ffmpeg_path() is None:
        lines.append("--video needs Playwright's ffmpeg (python -m playwright install ffmpeg): no video was recorded")
    if lines:
        terminalreporter.section("revgate frontend", yellow=True)
        for line in lines:
            terminalreporter.line(line)


@pytest.fixture
def visit(
    request: pytest.FixtureRequest,
    browser: Browser,
    browser_context_args: dict[str, Any],
    settings: Settings,
    target: Target,
    output_path: str,
) -> Iterator[Callable[[Page], Visit]]:
    """``visit(page_check)`` loads the page in a fresh context and returns what it found."""
    own_contexts: list[BrowserContext] = []
    secrets = settings.secrets()

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def run(check: Page) -> Visit:
        headers = target.headers(auth=check.auth, check=check)
        causes: dict[str, str] = {}
        if headers:
            # Outside pytest-playwright's recorder: no trace (it would hold the headers), no video.
            args = {k: v for k, v in browser_context_args.items() if k not in ("record_video_dir", "record_video_size")}
            context = browser.new_context(**args)
            own_contexts.append(context)
            add_secret_route(
                context, origin=_origin(settings.revision_url), headers=headers, timeout=check.timeout or settings.request_timeout,
                causes=causes,
            )
        else:
            context = request.getfixturevalue("new_context")()
        result = visit_page(
            context,
            check,
            base_url=settings.revision_url,
            timeout=settings.request_timeout,
            auth_label="with token" if check.auth and target.has_token else "no token",
            evidence_dir=Path(output_path),
            scrub=scrub,
            causes=causes,
        )
        if headers and not result.problems and request.config.getoption("--screenshot", "off") == "on":
            # pytest-playwright's recorder does not see this context: its --screenshot=on, by hand
            shot = Path(output_path) / "screenshot.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            if shows_secret(context.pages[0], scrub):
                request.node.user_properties.append(("revgate_screenshot", NO_SCREENSHOT))
            else:
                context.pages[0].screenshot(path=shot, full_page=True, timeout=5000)
                result.artifacts.append(shot)
        for artifact in result.artifacts:
            request.node.user_properties.append((f"revgate_{artifact.stem}", str(artifact)))
        if result.still_open:  # never waited for: listed with the test's report (JUnit XML, JSON report)
            request.node.user_properties.append(("revgate_still_open", scrub("; ".join(result.still_open))))
        return result

    yield run
    for context in own_contexts:
        context.close()


def _origin(url: str) -> str:
    from revgate.pages import origin_of

    return origin_of(url)

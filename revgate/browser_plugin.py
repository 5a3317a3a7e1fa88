"""The browser every page of a gate run uses: the suite's ``[[page]]`` checks and the team's ``page`` tests.

pytest-playwright provides the browser (one per worker, session-scoped) and its
options; this plugin overrides, for the whole run:

- ``chromium_choice``: the Chromium chosen by :mod:`revgate.browser`;
- ``browser_type_launch_args``: that executable and its flags;
- ``browser``: a browser that will not start is one line, not a traceback
  (NOT VERIFIED: the gate's problem, never the revision's);

and, at session start, refuses a run whose checklist has pages when no Chromium
is usable at all (exit 4, before any check).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .browser import BrowserChoice, choose_chromium, launch_error_line
from .errors import ConfigError
from .judge import fail
from .settings import settings_key

if TYPE_CHECKING:  # pragma: no cover - Playwright is imported lazily
    from playwright.sync_api import Browser, BrowserType


@pytest.fixture(scope="session")
def chromium_choice(browser_name: str, browser_type: BrowserType, pytestconfig: pytest.Config) -> BrowserChoice | None:
    """The Chromium to launch (None for Firefox, WebKit or an explicit ``--browser-channel``)."""
    if browser_name != "chromium" or pytestconfig.getoption("--browser-channel"):
        return None
    try:
        return choose_chromium(
            playwright_executable=browser_type.executable_path, headless=not pytestconfig.getoption("--headed")
        )
    except ConfigError as exc:
        fail(str(exc))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any], chromium_choice: BrowserChoice | None) -> dict[str, Any]:
    if chromium_choice is None or "executable_path" in browser_type_launch_args:
        return browser_type_launch_args
    return chromium_choice.apply(browser_type_launch_args)


@pytest.fixture(scope="session")
def browser(
    launch_browser: Callable[[], Browser], chromium_choice: BrowserChoice | None, browser_name: str
) -> Iterator[Browser]:
    from playwright.sync_api import Error as PlaywrightError

    try:
        launched = launch_browser()
    except PlaywrightError as exc:
        fail(launch_error_line(exc, chromium_choice, browser_name=browser_name))
    yield launched
    launched.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    settings = config.stash.get(settings_key, None)
    wants_chromium = set(config.getoption("--browser", None) or ["chromium"]) == {"chromium"}
    if settings is None or not settings.checklist.page or not wants_chromium or config.getoption("--browser-channel", None):
        return
    from .options import selected_sections

    if "tests_frontend" not in selected_sections(config):
        return  # --sections without frontend: no page is opened
    # No usable Chromium is a usage error before any test, not a failed page: a page that
    # errors is gating, and the gate's own missing browser must never roll back a revision.
    try:
        choice = choose_chromium(playwright_executable=None, headless=not config.getoption("--headed", False))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if choice.source == "none":
        raise pytest.UsageError(
            "no Chromium for the page checks: run 'playwright install --only-shell chromium' (or "
            "'playwright install chromium'), install a system chromium, or set CHROMIUM_EXECUTABLE "
            "(or run without them: --sections smoke,revision,metrics,logs)"
        )

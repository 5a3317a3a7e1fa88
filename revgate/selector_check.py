"""Page selectors parsed at start by the engine that will use them: Playwright's, in the browser the
page checks launch (``page.locator(selector)`` takes CSS, and Playwright's own ``text=``, ``>>``,
``:has-text()``...; no parser outside the browser knows that grammar exactly). One headless page,
an empty document, each selector counted once: a selector the engine refuses is a usage error at
start (exit 4), not a page check's FAIL. Only when page checks with selectors are selected."""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["unusable_selector"]


def unusable_selector(config: pytest.Config, selectors: list[str]) -> str | None:
    """The one-line problem of the first selector the browser's engine refuses, else None. When the
    browser cannot be launched here, None: the page checks then say so themselves (NOT VERIFIED)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return None
    from .browser import choose_chromium
    from .errors import ConfigError

    try:
        choice = choose_chromium(playwright_executable=None)
    except ConfigError:
        return None
    launch: dict[str, Any] = choice.apply({"headless": True})
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch, timeout=30_000)
            try:
                page = browser.new_page()
                page.set_content("<!doctype html><title>revgate</title>")
                for selector in selectors:
                    try:
                        page.locator(selector).count()
                    except Error as exc:
                        first = (str(exc).splitlines() or ["invalid"])[0].removeprefix("Locator.count: ")
                        return (
                            f"page selector {selector[:120]!r} cannot be parsed by the browser's selector engine "
                            f"({first[:200]}): fix it in the checklist's [[page]] selectors"
                        )
            finally:
                browser.close()
    except Error:
        return None  # no browser here: the page checks report it (NOT VERIFIED)
    return None

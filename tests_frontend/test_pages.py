"""The revision's pages in a real browser: each ``[[page]]`` loads without errors, renders, and keeps its budgets.

A page passes when its document answers < 400 and it ends where it was asked
(or where ``allow_redirect_to`` allows); while it loads, and ``settle_ms`` after
its selectors show, there is no console error (beyond ``ignore_console``), no
uncaught exception, no failed request and no same-origin answer >= 400 (beyond
``ignore_requests``; third-party ones per ``allow_third_party_failures``; a
missing favicon only with ``require_favicon``); its selectors become visible,
its text shows, and the load, DOMContentLoaded and bytes budgets hold. The failure message lists every
problem seen; the screenshot and console log are kept in the test's folder of
``--output``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from revgate.checklist import Page
from revgate.judge import fail
from revgate.pages import PageNote
from revgate.pages_visit import Visit
from revgate.target import Target


def test_page(page_check: Page, visit: Callable[[Page], Visit], target: Target) -> None:
    if page_check.auth and not target.has_token:
        fail(
            f"GET {target.url(page_check.path)} needs the API token (auth = true), and none was given: "
            "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE"
        )
    result = visit(page_check)
    for note in result.judgement.notes:
        warnings.warn(PageNote(f"page {page_check.id!r}: {note}"), stacklevel=1)
    if result.problems:
        fail(result.message())

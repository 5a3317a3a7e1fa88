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


def _refused_by_serving_revision(config, page_check: Page, target: Target, status: int) -> str | None:  # noqa: ANN001
    """The document refused 401/403: the same page asked of the revision a rollback would restore (its
    document, with the same credentials); refused there too, the gate's credentials are wrong."""
    from revgate.settings import settings_key
    from revgate.token_check import serving_revision_refuses

    probe = target.request("GET", page_check.path, auth=bool(page_check.auth and target.has_token), check=page_check)
    if probe.status not in (401, 403):
        return None  # the page's own request is not refused now: judge what the browser saw
    return serving_revision_refuses(config, config.stash[settings_key], page_check, probe,
                                    auth=bool(page_check.auth and target.has_token))


def test_page(page_check: Page, visit: Callable[[Page], Visit], target: Target, pytestconfig) -> None:  # noqa: ANN001
    if page_check.auth and not target.has_token:
        fail(
            f"GET {target.url(page_check.path)} needs the API token (auth = true), and none was given: "
            "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE"
        )
    result = visit(page_check)
    for note in result.judgement.notes:
        warnings.warn(PageNote(f"page {page_check.id!r}: {note}"), stacklevel=1)
    if result.problems and result.status in (401, 403):
        reason = _refused_by_serving_revision(pytestconfig, page_check, target, result.status)
        if reason is not None:
            from revgate.errors import not_verified

            not_verified(reason)
    if result.problems:
        fail(result.message())

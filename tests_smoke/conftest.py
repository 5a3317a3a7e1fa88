"""Collection rules of the smoke checks that the checklist decides."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``refuse_without_token = false``: the endpoint is public by design, no refusal check for it."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        check = callspec.params.get("api_auth_check") if callspec is not None else None
        (drop if not getattr(check, "refuse_without_token", True) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

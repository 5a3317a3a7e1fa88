"""Fixtures for the smoke selftests (the sample service and the token come from selftest/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
@pytest.fixture
def checklist_variant(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the shipped checklist with some lines replaced: ``checklist_variant({"ready_budget = 60": "ready_budget = 4"})``."""

    def make(replacements: dict[str, str], *, name: str = "checklist.toml") -> Path:
        text = (REPO / "checklist.toml").read_text()
        for old, new in replacements.items():
            assert old in text, f"{old!r} is not in the shipped checklist"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text)
        return path

    return make

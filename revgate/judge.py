"""Small helpers the checks use to judge what came back and to say why they fail."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

__all__ = ["JSON_TYPES", "fail", "is_json_type", "json_type_of", "missing_subset"]

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def fail(message: str) -> NoReturn:
    """Fail the check with ``message`` alone: the reader needs the reason, not our traceback."""
    pytest.fail(message, pytrace=False)


def json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    for name, types in JSON_TYPES.items():
        if name not in ("number", "boolean") and isinstance(value, types):
            return name
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def is_json_type(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return expected == "boolean"
    return isinstance(value, JSON_TYPES[expected])


def missing_subset(actual: Any, expected: dict[str, Any]) -> list[str]:
    """Keys of ``expected`` whose value ``actual`` (a JSON object) does not have, as 'key: want X, got Y'."""
    if not isinstance(actual, dict):
        return [f"expected a JSON object, got {json_type_of(actual)}"]
    problems = []
    for key, want in expected.items():
        if key not in actual:
            problems.append(f"{key!r} missing (want {want!r})")
        elif actual[key] != want:
            problems.append(f"{key!r}: want {want!r}, got {actual[key]!r}")
    return problems

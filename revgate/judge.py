"""Small helpers the checks use to judge what came back and to say why they fail."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

__all__ = ["JSON_TYPES", "MISSING", "fail", "is_json_type", "json_type_of", "missing_subset", "resolve_path", "shape_problems"]

MISSING = object()
"""What :func:`resolve_path` returns for a path the value does not have."""

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
    """``expected`` is one JSON type or a union of them (``"string|null"``)."""
    if "|" in expected:
        return any(is_json_type(value, part) for part in expected.split("|"))
    if isinstance(value, bool):
        return expected == "boolean"
    return isinstance(value, JSON_TYPES[expected])


def resolve_path(value: Any, path: str) -> Any:
    """``"stats.total"``, ``"rows.0.id"`` (``"$"``: the value itself); :data:`MISSING` when absent.

    A key holding a dot is found too (``"a.b"`` tries the key ``a.b`` before ``a`` then ``b``)."""
    if path == "$":
        return value
    path = path.removeprefix("$.")
    if isinstance(value, dict) and path in value:
        return value[path]
    head, _, rest = path.partition(".")
    if isinstance(value, dict):
        if head not in value:
            return MISSING
        child = value[head]
    elif isinstance(value, list):
        if not head.isdigit() or int(head) >= len(value):
            return MISSING
        child = value[int(head)]
    else:
        return MISSING
    return resolve_path(child, rest) if rest else child


def _count(value: Any) -> str:
    return f"{len(value)} item{'s' if len(value) != 1 else ''}" if isinstance(value, (list, dict)) else json_type_of(value)


def shape_problems(
    value: Any,
    *,
    keys: dict[str, str] | None = None,
    equals: dict[str, Any] | None = None,
    min_items: dict[str, int] | None = None,
) -> list[str]:
    """Every way ``value`` (parsed JSON) differs from the expectations, each naming its path."""
    problems = []
    for path, kind in (keys or {}).items():
        seen = resolve_path(value, path)
        if seen is MISSING:
            problems.append(f"{path!r} missing (want {kind})")
        elif not is_json_type(seen, kind):
            problems.append(f"{path!r} is {json_type_of(seen)}, expected {kind}")
    for path, want in (equals or {}).items():
        seen = resolve_path(value, path)
        if seen is MISSING:
            problems.append(f"{path!r} missing (want {want!r})")
        elif not _same(seen, want):
            problems.append(f"{path!r}: want {want!r}, got {_short(seen)}")
    for path, fewest in (min_items or {}).items():
        seen = resolve_path(value, path)
        if seen is MISSING:
            problems.append(f"{path!r} missing (want at least {fewest} items)")
        elif not isinstance(seen, (list, dict)):
            problems.append(f"{path!r} is {json_type_of(seen)}, expected an array with at least {fewest} items")
        elif len(seen) < fewest:
            problems.append(f"{path!r} has {_count(seen)}, expected at least {fewest}")
    return problems


def _same(seen: Any, want: Any) -> bool:
    # JSON has one number type: 1 == 1.0; but true is not 1.
    if isinstance(seen, bool) or isinstance(want, bool):
        return type(seen) is type(want) and seen == want
    return bool(seen == want)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def missing_subset(actual: Any, expected: dict[str, Any], *, prefix: str = "") -> list[str]:
    """Keys of ``expected`` whose value ``actual`` (a JSON object) does not have, as 'key: want X, got Y'.

    A table in ``expected`` is itself a subset (``{ header = { msg_type = "x" } }``); a key may be a dotted path."""
    if not isinstance(actual, dict):
        where = f"{prefix.rstrip('.')!r}: " if prefix else ""
        return [f"{where}expected a JSON object, got {json_type_of(actual)}"]
    problems = []
    for key, want in expected.items():
        seen = resolve_path(actual, key)
        name = prefix + key
        if seen is MISSING:
            problems.append(f"{name!r} missing (want {_short(want)})")
        elif isinstance(want, dict) and isinstance(seen, dict):
            problems.extend(missing_subset(seen, want, prefix=name + "."))
        elif not _same(seen, want):
            problems.append(f"{name!r}: want {want!r}, got {_short(seen)}")
    return problems

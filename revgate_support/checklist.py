"""The declarative checklist: a TOML file that parametrizes the suite's tests.

Each top-level section is one kind of check. Table sections (``[health]``)
hold one check, array sections (``[[api]]``) hold any number, each with an
``id`` used as the test id (``test_api[memory-user-stats]``). Every section is
optional, so the format grows (pages, metrics) without breaking files that
omit the newer sections; an unknown section or key is an error, since a typo
would otherwise silently disable a check.

A checklist that cannot be used raises :class:`ChecklistError` with one line
naming the file, the key and what was expected.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ChecklistError

__all__ = [
    "Checklist",
    "Defaults",
    "Health",
    "Api",
    "WebSocket",
    "Latency",
    "load_checklist",
    "parse_checklist",
]

JsonType = Literal["object", "array", "string", "number", "integer", "boolean", "null"]


class _Section(BaseModel):
    # strict: "5" is not accepted where a number is expected; forbid: a typo is an error.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Check(_Section):
    advisory: bool = False
    """An advisory check is reported but never fails the gate nor triggers a rollback."""


class _NamedCheck(_Check):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"a path must start with '/', got {value!r}")
    return value


class Defaults(_Section):
    timeout: float = Field(10.0, gt=0)
    """Seconds allowed to each request (``--request-timeout`` overrides)."""


class Health(_Check):
    id: str = "health"
    path: str = "/health"
    status: int = 200
    json_subset: dict[str, Any] = Field(default_factory=lambda: {"status": "ok"}, alias="json")
    ready_budget: float = Field(60.0, ge=0)
    """Seconds a cold revision may take to become ready (answers in ``retry_statuses`` are retried)."""
    retry_statuses: list[int] = Field(default_factory=lambda: [429, 502, 503, 504])

    _check_path = field_validator("path")(_path)


class Api(_NamedCheck):
    path: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    auth: bool = True
    """True: without the token the endpoint must refuse (401/403), with it answer ``status``."""
    status: int = 200
    body: dict[str, Any] | None = None
    """JSON body sent with the request."""
    keys: dict[str, JsonType] = Field(default_factory=dict)
    """Top-level JSON keys the answer must have, with their JSON types."""

    _check_path = field_validator("path")(_path)


class WebSocket(_NamedCheck):
    path: str
    """May contain ``{session}``: replaced by a fresh id on every run."""
    send: dict[str, Any] | str
    """Sent as JSON when a table, as text when a string."""
    expect: dict[str, Any] | str
    """A table: the reply's JSON must contain these keys and values; a string: the reply must contain it."""
    timeout: float = Field(5.0, gt=0)
    auth: bool = False

    _check_path = field_validator("path")(_path)


class Latency(_NamedCheck):
    paths: list[str] = Field(min_length=1)
    requests: int = Field(20, ge=1, le=10_000)
    """Requests sent to each path."""
    auth: bool = False
    p50_ms: float | None = Field(None, gt=0)
    p95_ms: float | None = Field(None, gt=0)
    p99_ms: float | None = Field(None, gt=0)

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, value: list[str]) -> list[str]:
        return [_path(p) for p in value]


class Checklist(_Section):
    defaults: Defaults = Field(default_factory=Defaults)
    health: Health | None = None
    api: list[Api] = Field(default_factory=list)
    websocket: list[WebSocket] = Field(default_factory=list)
    latency: list[Latency] = Field(default_factory=list)

    @field_validator("api", "websocket", "latency")
    @classmethod
    def _unique_ids(cls, entries: list[_NamedCheck]) -> list[_NamedCheck]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"id {entry.id!r} is used twice")
            seen.add(entry.id)
        return entries

    def entries(self, section: str) -> list[_Check]:
        """The checks of one section, as a list (empty when the section is absent)."""
        value = getattr(self, section)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]


def _is_union_member(part: int | str) -> bool:
    # pydantic names the member of a union that failed: 'str', 'dict[str,any]', 'function-after[...]'
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part)


def _where(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """``('api', 0, 'path')`` -> ``[[api]] 'memory-user-stats' key 'path'``."""
    loc = tuple(p for p in loc if not _is_union_member(p))
    if not loc:
        return "the file"
    section = str(loc[0])
    if section not in Checklist.model_fields:
        return f"unknown section [{section}]"
    is_array = isinstance(data.get(section), list)
    brackets = f"[[{section}]]" if is_array else f"[{section}]"
    if len(loc) >= 2 and isinstance(loc[1], int):
        entries = data[section]
        entry = entries[loc[1]] if loc[1] < len(entries) else {}
        name = entry.get("id", f"#{loc[1] + 1}") if isinstance(entry, dict) else f"#{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{brackets} {name!r}" + (f" key {rest!r}" if rest else "")
    rest = ".".join(str(p) for p in loc[1:])
    return brackets + (f" key {rest!r}" if rest else "")


def _describe(errors: list[dict[str, Any]]) -> str:
    """One sentence for the errors pydantic reports at one place (several for a union)."""
    first = errors[0]
    kind = first["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against the comments in the shipped checklist.toml)"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return first["msg"].removeprefix("Value error, ")
    msgs = [e["msg"] for e in errors]
    msg = msgs[0] + "".join(" or " + m.removeprefix("Input should be ") for m in msgs[1:])
    return f"{msg} (got {first['input']!r})"


def parse_checklist(data: dict[str, Any], *, source: str) -> Checklist:
    """Validate already-parsed TOML data; ``source`` names the file in messages."""
    try:
        return Checklist.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        where = _where(errors[0]["loc"], data)
        here = [e for e in errors if _where(e["loc"], data) == where]
        others = len({_where(e["loc"], data) for e in errors}) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        if where.startswith("unknown section"):
            known = ", ".join(Checklist.model_fields)
            raise ChecklistError(f"{source}: {where} (known sections: {known}){more}") from None
        raise ChecklistError(f"{source}: {where}: {_describe(here)}{more}") from None


def load_checklist(path: Path) -> tuple[Checklist, dict[str, Any]]:
    """Read and validate a checklist file; returns the checklist and its raw data."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ChecklistError(
            f"{path}: checklist file not found (give one with --checklist PATH or REVGATE_CHECKLIST)"
        ) from None
    except OSError as exc:
        raise ChecklistError(f"{path}: cannot read the checklist: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChecklistError(f"{path}: not valid TOML: {exc}") from None
    return parse_checklist(data, source=str(path)), data

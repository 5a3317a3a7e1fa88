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

import re
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
    "Page",
    "Metrics",
    "Baseline",
    "MetricLimit",
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


class MetricLimit(_Section):
    """One limit of ``[metrics]`` or ``[metrics.baseline]``, as a test parameter (``test_metric[p99-latency]``)."""

    id: str
    advisory: bool = False
    limit: float


METRIC_IDS = ("error-rate", "p50-latency", "p95-latency", "p99-latency", "memory-utilization", "cpu-utilization", "startup-latency")
BASELINE_IDS = ("error-rate", "p50-latency", "p95-latency", "p99-latency")


def _known_ids(ids: list[str], known: tuple[str, ...], set_ids: list[str]) -> list[str]:
    for name in ids:
        if name not in known:
            raise ValueError(f"advisory_checks: {name!r} is not a check id (one of: {', '.join(known)})")
        if name not in set_ids:
            raise ValueError(f"advisory_checks: {name!r} has no limit set in this section")
    return ids


class Baseline(_Section):
    """The revision under test against the previous revision, over the same window."""

    advisory: bool = False
    max_error_rate_increase: float | None = Field(None, ge=0, le=1)
    """Allowed increase of the 5xx share, as a fraction (0.01: one percentage point)."""
    max_p50_ratio: float | None = Field(None, ge=1)
    max_p95_ratio: float | None = Field(None, ge=1)
    max_p99_ratio: float | None = Field(None, ge=1)
    latency_slack_ms: float = Field(50.0, ge=0)
    """A latency increase smaller than this is never a regression (bucket resolution, noise)."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level of the error-rate comparison (one-sided Fisher exact test)."""
    advisory_checks: list[str] = Field(default_factory=list)
    """Ids of comparisons reported but not gating (validated after the limits above)."""

    def limits(self, *, advisory: bool = False) -> list[MetricLimit]:
        """``advisory``: the whole ``[metrics]`` section is advisory."""
        advisory = advisory or self.advisory
        values = {
            "error-rate": self.max_error_rate_increase,
            "p50-latency": self.max_p50_ratio,
            "p95-latency": self.max_p95_ratio,
            "p99-latency": self.max_p99_ratio,
        }
        return [
            MetricLimit(id=key, limit=value, advisory=advisory or key in self.advisory_checks)
            for key, value in values.items()
            if value is not None
        ]

    @field_validator("advisory_checks")
    @classmethod
    def _check_advisory(cls, value: list[str], info: Any) -> list[str]:
        keys = {"error-rate": "max_error_rate_increase", "p50-latency": "max_p50_ratio", "p95-latency": "max_p95_ratio", "p99-latency": "max_p99_ratio"}
        set_ids = [k for k, field in keys.items() if info.data.get(field) is not None]
        return _known_ids(value, BASELINE_IDS, set_ids)


class Metrics(_Section):
    """Cloud Monitoring limits of the revision under test over the last ``window`` seconds."""

    advisory: bool = False
    window: int = Field(600, ge=60, le=86_400)
    min_requests: int = Field(20, ge=1)
    """Requests of the revision that must be visible in Cloud Monitoring before anything is judged."""
    max_error_rate: float | None = Field(None, ge=0, le=1)
    p50_latency_ms: float | None = Field(None, gt=0)
    p95_latency_ms: float | None = Field(None, gt=0)
    p99_latency_ms: float | None = Field(None, gt=0)
    max_memory_utilization: float | None = Field(None, gt=0, le=1)
    max_cpu_utilization: float | None = Field(None, gt=0)
    max_startup_latency_ms: float | None = Field(None, gt=0)
    baseline: Baseline | None = None
    advisory_checks: list[str] = Field(default_factory=list)
    """Ids of limits reported but not gating (``cpu-utilization``...)."""

    def _values(self) -> dict[str, float | None]:
        return {
            "error-rate": self.max_error_rate,
            "p50-latency": self.p50_latency_ms,
            "p95-latency": self.p95_latency_ms,
            "p99-latency": self.p99_latency_ms,
            "memory-utilization": self.max_memory_utilization,
            "cpu-utilization": self.max_cpu_utilization,
            "startup-latency": self.max_startup_latency_ms,
        }

    def limits(self) -> list[MetricLimit]:
        return [
            MetricLimit(id=key, limit=value, advisory=self.advisory or key in self.advisory_checks)
            for key, value in self._values().items()
            if value is not None
        ]

    @field_validator("advisory_checks")
    @classmethod
    def _check_advisory(cls, value: list[str], info: Any) -> list[str]:
        fields = dict(zip(METRIC_IDS, ("max_error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_memory_utilization", "max_cpu_utilization", "max_startup_latency_ms"), strict=True))
        set_ids = [k for k, field in fields.items() if info.data.get(field) is not None]
        return _known_ids(value, METRIC_IDS, set_ids)


class Page(_NamedCheck):
    """A page loaded in a real browser (``[[page]]``): it must render without errors, within budget."""

    path: str
    selectors: list[str] = Field(default_factory=list)
    """CSS selectors that must all become visible (within the request timeout)."""
    text: str | None = None
    """Text the page must show."""
    auth: bool = False
    """True: the page needs the API token; it is sent to the revision's own origin only."""
    ignore_console: list[str] = Field(default_factory=list)
    """Regular expressions: console errors matching one of them are not problems."""
    load_ms: float | None = Field(None, gt=0)
    """Budget for the load event, from navigation start."""
    dom_content_loaded_ms: float | None = Field(None, gt=0)
    """Budget for the end of DOMContentLoaded, from navigation start."""
    max_bytes: int | None = Field(None, gt=0)
    """Budget for the bytes transferred (document and every resource)."""
    allow_third_party_failures: bool = False
    """True: a request to another origin that fails or answers >= 400 is reported, not failed."""
    require_favicon: bool = False
    """True: a missing favicon is a problem (by default it is ignored)."""

    _check_path = field_validator("path")(_path)

    @field_validator("selectors")
    @classmethod
    def _check_selectors(cls, value: list[str]) -> list[str]:
        if any(not s.strip() for s in value):
            raise ValueError("a selector must not be empty")
        return value

    @field_validator("ignore_console")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
        return value


class Checklist(_Section):
    defaults: Defaults = Field(default_factory=Defaults)
    health: Health | None = None
    api: list[Api] = Field(default_factory=list)
    websocket: list[WebSocket] = Field(default_factory=list)
    latency: list[Latency] = Field(default_factory=list)
    metrics: Metrics | None = None
    page: list[Page] = Field(default_factory=list)

    @field_validator("api", "websocket", "latency", "page")
    @classmethod
    def _unique_ids(cls, entries: list[_NamedCheck]) -> list[_NamedCheck]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"id {entry.id!r} is used twice")
            seen.add(entry.id)
        return entries

    @property
    def metric_limits(self) -> list[MetricLimit]:
        """The ``[metrics]`` limits, one test parameter each."""
        return self.metrics.limits() if self.metrics else []

    @property
    def baseline_limits(self) -> list[MetricLimit]:
        """The ``[metrics.baseline]`` comparisons, one test parameter each."""
        if self.metrics is None or self.metrics.baseline is None:
            return []
        return self.metrics.baseline.limits(advisory=self.metrics.advisory)

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


def _problems(exc: ValidationError, data: dict[str, Any], *, source: str) -> list[str]:
    """Every problem pydantic found, one line each, in file order: ``FILE: WHERE: WHAT``."""
    errors = exc.errors()
    places: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        places.setdefault(_where(error["loc"], data), []).append(error)
    lines = []
    for where, here in places.items():
        if where.startswith("unknown section"):
            known = ", ".join(Checklist.model_fields)
            lines.append(f"{source}: {where} (known sections: {known})")
        else:
            lines.append(f"{source}: {where}: {_describe(here)}")
    return lines


def parse_checklist(data: dict[str, Any], *, source: str) -> Checklist:
    """Validate already-parsed TOML data; ``source`` names the file in messages.

    A :class:`ChecklistError` says the first problem and how many more there are;
    its ``problems`` lists every one (``revgate check`` prints them all)."""
    try:
        return Checklist.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, data, source=source)
        others = len(problems) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''}: revgate check {source} lists them)" if others else ""
        raise ChecklistError(problems[0] + more, problems=problems) from None


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

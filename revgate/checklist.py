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

import math
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ChecklistError

__all__ = [
    "Checklist",
    "Defaults",
    "Health",
    "Api",
    "WebSocket",
    "WsStep",
    "statuses",
    "Latency",
    "Page",
    "Metrics",
    "Baseline",
    "MetricLimit",
    "Rollback",
    "RevisionConfig",
    "RevisionKey",
    "REVISION_KEYS",
    "Notify",
    "Rollout",
    "Logs",
    "LOG_KINDS",
    "LOG_SEVERITIES",
    "load_checklist",
    "parse_checklist",
]

JSON_TYPE_NAMES = ("object", "array", "string", "number", "integer", "boolean", "null")
JsonType = Literal["object", "array", "string", "number", "integer", "boolean", "null"]
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP header name (RFC 9110 token)."""


class _Section(BaseModel):
    # strict: "5" is not accepted where a number is expected; forbid: a typo is an error.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Check(_Section):
    advisory: bool = False
    """An advisory check is reported but never fails the gate nor triggers a rollback."""


class _NamedCheck(_Check):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


MAX_PATH_LENGTH = 2048
"""Characters a check's path may have: the whole URL must stay within what browsers and proxies pass
(about 2 KiB), like ``--revision-url``."""
MIN_TIMEOUT = 0.1
"""Seconds: the shortest timeout a check may have (a request to a healthy revision takes some
milliseconds; a shorter timeout would fail it for the gate's own setting)."""
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _path(value: str) -> str:
    """A path the gate sends as is, after the revision's URL: one leading '/', no space or control
    character, at most :data:`MAX_PATH_LENGTH` characters, every '%' starting an escape (``%2F``)."""
    if not value.startswith("/"):
        raise ValueError(f"a path must start with '/', got {value[:80]!r}")
    if value.startswith("//"):
        raise ValueError(
            f"{value[:80]!r} starts with '//', which a browser or an HTTP client reads as another host "
            "(a scheme-relative URL): give a path with a single leading '/'"
        )
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"the path is {len(value)} characters long; at most {MAX_PATH_LENGTH} are accepted")
    bad = next((c for c in value if c.isspace() or ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        raise ValueError(
            f"{value[:80]!r} contains a space or a control character ({bad!r}): percent-encode it (%20 for a space)"
        )
    if _BAD_PERCENT.search(value):
        raise ValueError(f"{value[:80]!r} has a '%' that starts no escape (like %2F): write a literal '%' as %25")
    return value


def _json_type(value: str) -> str:
    """``"string|null"``: one JSON type or a union of them."""
    names = [part.strip() for part in value.split("|")]
    bad = [n for n in names if n not in JSON_TYPE_NAMES]
    if bad or not value.strip():
        raise ValueError(
            f"{value!r} is not a JSON type or a union of them like 'string|null' (types: {', '.join(JSON_TYPE_NAMES)})"
        )
    return "|".join(names)


def _json_path(value: str) -> str:
    """``"stats.total"``, ``"rows.0.id"``, ``"$"`` (the whole body), ``"$.rows"``."""
    if value == "$":
        return value
    rest = value.removeprefix("$.")
    if not rest or any(part == "" for part in rest.split(".")):
        raise ValueError(f"{value!r} is not a path: keys and array indexes joined by '.', like 'rows.0.id' ('$' is the whole body)")
    return value


def _header_names(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not an HTTP header name")
        if "\n" in text or "\r" in text:
            raise ValueError(f"header {name!r}: a value must be one line")
        # RFC 9110 section 5.5: field-content is visible ASCII, space, tab and obs-text (bytes 0x80-0xFF)
        bad = next((c for c in text if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255), None)
        if bad is not None:
            what = "a control character" if ord(bad) < 128 else "a character outside Latin-1"
            raise ValueError(f"header {name!r}: the value has {what} ({bad!r}), which an HTTP header cannot carry")
        if len(text) > 8192:
            raise ValueError(f"header {name!r}: the value is {len(text)} characters long; at most 8192 are accepted")
    return value


def _subprotocols(value: list[str]) -> list[str]:
    """RFC 6455 section 4.1: each subprotocol is a token (RFC 2616 section 2.2), each named once."""
    for name in value:
        if not HEADER_NAME.match(name):
            raise ValueError(
                f"subprotocol {name!r} is not a token (RFC 6455: letters, digits and !#$%&'*+.^_`|~-; "
                "no space, comma or quote)"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"subprotocols {value!r}: name each one once")
    return value


def _auth_header(value: str | None) -> str | None:
    if value is not None and not HEADER_NAME.match(value):
        raise ValueError(f"{value!r} is not an HTTP header name (like 'Authorization' or 'X-API-Key')")
    return value


def _auth_scheme(value: str | None) -> str | None:
    # RFC 9110 section 11.1: auth-scheme = token (so visible ASCII: an HTTP header can carry it)
    if value is not None and value != "" and not HEADER_NAME.match(value):
        raise ValueError(f"{value!r} is not an auth scheme: one word like 'Bearer' or 'token', or '' for the bare token")
    return value


def _patterns(value: list[str]) -> list[str]:
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
    return value


def _statuses(value: int | list[int]) -> int | list[int]:
    codes = value if isinstance(value, list) else [value]
    if not codes:
        raise ValueError("give at least one status")
    for code in codes:
        if not 100 <= code <= 599:
            raise ValueError(f"{code} is not an HTTP status (100-599)")
    return value


def statuses(value: int | list[int]) -> list[int]:
    """``status`` of a check as a list."""
    return value if isinstance(value, list) else [value]


class _Auth(_Section):
    """How a check sends the API token: ``HEADER: SCHEME TOKEN`` (``[defaults]`` gives both unless the entry does)."""

    auth_header: str | None = None
    """Header carrying the token; default: ``[defaults] auth_header``."""
    auth_scheme: str | None = None
    """Word before the token ('Bearer', 'token'); '' sends the bare token; default: ``[defaults] auth_scheme``."""

    _check_auth_header = field_validator("auth_header")(_auth_header)
    _check_auth_scheme = field_validator("auth_scheme")(_auth_scheme)


class Defaults(_Section):
    timeout: float = Field(10.0, ge=MIN_TIMEOUT, le=600)
    """Seconds allowed to each request (``--request-timeout`` overrides)."""
    auth_header: str = "Authorization"
    """Header carrying the API token (``X-API-Key`` ...)."""
    auth_scheme: str = "Bearer"
    """Word before the token (``token`` for Jupyter); '' sends the bare token."""

    _check_auth_header = field_validator("auth_header")(_auth_header)
    _check_auth_scheme = field_validator("auth_scheme")(_auth_scheme)


class Health(_Check, _Auth):
    """No hidden expectations: ``json`` and ``contains`` left out check nothing."""

    id: str = "health"
    path: str = "/health"
    status: int | list[int] = 200
    json_subset: dict[str, Any] | None = Field(None, alias="json")
    """The answer must be a JSON object containing these keys and values (dotted paths allowed)."""
    contains: str | None = None
    """The body (any content type) must contain this text."""
    auth: bool = False
    """True: the health request carries the API token."""
    ready_budget: float = Field(60.0, ge=0, le=3600)
    """Seconds a cold revision may take to become ready (answers in ``retry_statuses`` are retried)."""
    retry_statuses: list[int] = Field(default_factory=lambda: [429, 502, 503, 504])

    _check_path = field_validator("path")(_path)
    _check_status = field_validator("status")(_statuses)


class Api(_NamedCheck, _Auth):
    path: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    auth: bool = True
    """True: the request carries the token, and without it (or with a wrong one) the endpoint must refuse (401/403)."""
    refuse_without_token: bool = True
    """False (with ``auth = true``): the token is sent, but the endpoint is public by design: no refusal checks."""
    session: bool = False
    """True: this check keeps the cookies earlier session checks received, and adds its own (default: no cookies)."""
    status: int | list[int] = 200
    headers: dict[str, str] = Field(default_factory=dict)
    """Request headers (never the token: see ``auth``)."""
    body: dict[str, Any] | list[Any] | None = None
    """JSON body sent with the request."""
    follow_redirects: bool = False
    """True: redirects are followed (the token only to the revision's own origin); ``status`` is the final one."""
    keys: dict[str, str] = Field(default_factory=dict)
    """JSON paths the answer must have, with their JSON types: ``"stats.total" = "integer"``, ``"next" = "string|null"``."""
    equals: dict[str, Any] = Field(default_factory=dict)
    """JSON paths and the values they must hold: ``{ "status" = "ok" }``."""
    min_items: dict[str, int] = Field(default_factory=dict)
    """JSON paths of arrays (or objects) and the fewest items they must hold: ``{ rows = 1 }``."""
    response_headers: dict[str, str] = Field(default_factory=dict)
    """Response headers that must be present and contain this text (case-insensitive): ``{ content-type = "json" }``."""
    contains: str | None = None
    """The body (any content type: a version string, ``ok``) must contain this text."""
    matches: str | None = None
    """The body (any content type) must match this regular expression (RE2 syntax, searched anywhere)."""
    content_type: str | None = None
    """The answer's media type (``text/plain``, ``application/json``), compared without its parameters."""

    _check_path = field_validator("path")(_path)
    _check_status = field_validator("status")(_statuses)
    _check_headers = field_validator("headers", "response_headers")(_header_names)

    @field_validator("matches")
    @classmethod
    def _check_matches(cls, value: str | None) -> str | None:
        if value is not None:
            body_pattern(value)
        return value

    @field_validator("content_type")
    @classmethod
    def _check_content_type(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$", value.strip()):
            raise ValueError(f"{value!r} is not a media type like 'text/plain' or 'application/json'")
        return value.strip().lower() if value is not None else None

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {_json_path(k): _json_type(v) for k, v in value.items()}

    @field_validator("equals")
    @classmethod
    def _check_equals(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            _json_path(key)
        return value

    @field_validator("min_items")
    @classmethod
    def _check_min_items(cls, value: dict[str, int]) -> dict[str, int]:
        for key, count in value.items():
            _json_path(key)
            if count < 0:
                raise ValueError(f"{key!r}: a count must be 0 or more, got {count}")
        return value

    @field_validator("headers")
    @classmethod
    def _no_auth_in_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ("authorization", "cookie", "x-serverless-authorization"):
                raise ValueError(f"{name!r}: credentials are not written in the checklist (use auth = true and REVGATE_AUTH_TOKEN)")
        return value


def body_pattern(pattern: str) -> Any:
    """``pattern`` compiled as RE2 (linear time: a pattern cannot hang the gate on a large body). Raises ValueError."""
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"{pattern!r} is not an RE2 regular expression (no lookaround, no backreferences): {reason}") from None


def ws_bytes(value: str) -> bytes:
    """``"hex:0a ff"`` or ``"base64:CgM="`` -> the bytes (binary WebSocket checks). Raises ValueError."""
    import base64
    import binascii

    kind, _, data = value.partition(":")
    try:
        if kind == "hex":
            return bytes.fromhex(data)
        if kind == "base64":
            return base64.b64decode(data.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"{value!r}: not valid {kind} after '{kind}:'") from None
    raise ValueError(f"{value!r}: with binary = true, give bytes as \"hex:0a1b...\" or \"base64:...\"")


class WsStep(_Section):
    """One exchange of ``steps``: send a message (optional), then wait for the first frame matching ``expect``."""

    send: dict[str, Any] | str | None = None
    expect: dict[str, Any] | str


class WebSocket(_NamedCheck, _Auth):
    path: str
    """May contain ``{session}``: replaced by a fresh id on every run (in ``send`` too)."""
    send: dict[str, Any] | str | None = None
    """Sent as JSON when a table, as text when a string (omit it to wait for what the server sends first)."""
    expect: dict[str, Any] | str | None = None
    """A table: a frame's JSON must contain these keys (or dotted paths) and values; a string: a frame must contain it.
    Frames that do not match are skipped, until ``timeout``."""
    steps: list[WsStep] = Field(default_factory=list)
    """A short exchange, ``[{ send = ..., expect = ... }, ...]``, instead of ``send`` and ``expect``."""
    subprotocols: list[str] = Field(default_factory=list)
    """Subprotocols offered in the handshake; the server must pick one of them."""
    timeout: float = Field(5.0, ge=MIN_TIMEOUT, le=600)
    """Seconds for the handshake, and for each expected frame."""
    auth: bool = False
    """True: the token goes with the handshake (``auth_header``, ``auth_scheme``)."""
    _check_subprotocols = field_validator("subprotocols")(_subprotocols)
    forbid: list[str] = Field(default_factory=list)
    """Regular expressions (RE2) on each frame's text (``"hex:..."``: bytes, with ``binary``): a frame that matches
    fails the check, before or after the awaited one (the check reads until the awaited frame, or ``hold_ms``)."""
    hold_ms: float = Field(0.0, ge=0, le=600_000)
    """After the exchange, the socket must stay open this long (frames meanwhile are read, and ``forbid`` applies),
    then close cleanly. With neither ``send`` nor ``expect`` the check is the handshake, this hold and the close
    (default 1000 ms then)."""
    binary: bool = False
    """True: ``send`` is bytes (``"hex:0a1b"`` or ``"base64:..."``) sent as a binary frame, and ``expect`` a byte
    pattern (``"hex:..."``/``"base64:..."``) a frame must contain."""

    _check_path = field_validator("path")(_path)

    @field_validator("forbid")
    @classmethod
    def _check_forbid(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern.startswith(("hex:", "base64:")):
                body_pattern(pattern)
        return value

    @model_validator(mode="after")
    def _one_exchange(self) -> WebSocket:
        if self.steps and (self.send is not None or self.expect is not None):
            raise ValueError("give either send/expect or steps, not both")
        if not self.steps and self.send is not None and self.expect is None and self.hold_ms == 0 and not self.forbid:
            raise ValueError("send without expect checks nothing: give expect, or hold_ms (and forbid) to watch what comes")
        for step in self.exchanges():
            if self.binary:
                for name, value in (("send", step.send), ("expect", step.expect)):
                    if isinstance(value, dict):
                        raise ValueError(f"binary = true: {name} must be bytes as \"hex:...\" or \"base64:...\", not a table")
                    if isinstance(value, str):
                        ws_bytes(value)
        if self.binary:
            for pattern in self.forbid:
                if pattern.startswith(("hex:", "base64:")):
                    ws_bytes(pattern)
        return self

    def exchanges(self) -> list[WsStep]:
        if self.steps:
            return list(self.steps)
        return [WsStep(send=self.send, expect=self.expect)] if self.expect is not None else []

    @property
    def hold(self) -> float:
        """Seconds the socket must stay open after the exchange."""
        if self.hold_ms == 0 and self.send is None and self.expect is None and not self.steps:
            return 1.0
        return self.hold_ms / 1000


class Latency(_NamedCheck, _Auth):
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
    latency_slack_ms: float = Field(50.0, ge=0, le=60_000)
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
    min_requests: int = Field(20, ge=1, le=1_000_000)
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


class Page(_NamedCheck, _Auth):
    """A page loaded in a real browser (``[[page]]``): it must render without errors, within budget."""

    path: str
    selectors: list[str] = Field(default_factory=list)
    """CSS selectors that must all become visible (within the request timeout)."""
    text: str | None = None
    """Text the page must show."""
    auth: bool = False
    """True: the page needs the API token; it is sent to the revision's own origin only."""
    ignore_console: list[str] = Field(default_factory=list)
    """Regular expressions: console errors whose text or source URL matches one of them are not problems."""
    ignore_requests: list[str] = Field(default_factory=list)
    """Regular expressions: failed or >= 400 requests whose URL (or failure) matches one of them are not problems."""
    allow_redirect_to: list[str] = Field(default_factory=list)
    """Regular expressions: the page may end at a URL (or path) matching one of them; any other final URL fails."""
    settle_ms: float = Field(500.0, ge=0, le=60_000)
    """After the selectors show, the page is watched this long: errors and failed requests still count."""
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
    absent: list[str] = Field(default_factory=list)
    """CSS selectors that must never become visible while the page loads and settles (an error box, a toast)."""
    absent_text: list[str] = Field(default_factory=list)
    """Texts that must never be shown while the page loads and settles (\"An internal error occurred\")."""
    console_levels: list[Literal["error", "warning", "info", "log", "debug", "assert", "trace"]] = Field(
        default_factory=lambda: ["error"], min_length=1
    )
    """The console levels whose lines are problems (beyond ``ignore_console``); default: error."""
    allow_mime_mismatch: list[str] = Field(default_factory=list)
    """Regular expressions: a script, stylesheet, font or image whose URL matches one of them may come back as
    another type (by default HTML or a type that does not fit is a problem: an SPA's fallback for a missing asset)."""
    timeout: float | None = Field(None, ge=MIN_TIMEOUT, le=600)
    """Seconds this page may take (a slow SPA); default: the request timeout (``--request-timeout``)."""

    _check_path = field_validator("path")(_path)

    @field_validator("absent", "absent_text")
    @classmethod
    def _check_absent(cls, value: list[str]) -> list[str]:
        if any(not s.strip() for s in value):
            raise ValueError("an entry must not be empty")
        return value

    @field_validator("console_levels")
    @classmethod
    def _unique_levels(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("selectors")
    @classmethod
    def _check_selectors(cls, value: list[str]) -> list[str]:
        if any(not s.strip() for s in value):
            raise ValueError("a selector must not be empty")
        return value

    _check_patterns = field_validator("ignore_console", "ignore_requests", "allow_redirect_to", "allow_mime_mismatch")(_patterns)


class Rollback(_Check):
    """What a rollback of this service must be able to do (``[rollback]``)."""

    id: str = "rollback-target"
    require_target: bool = False
    """True: no Ready revision to roll back to is a gating failure (``test_rollback_target``), before any
    promotion; a first deploy (no revision but the one under test) is not applicable."""
    promote_without_target: bool = False
    """True: ``--promote 100`` may leave the service with no Ready older revision to roll back to
    (by default it refuses, and says so)."""


class Notify(_Section):
    """Messages to chat webhooks (``[notify]``): when a rollback starts, and when the run ends (:mod:`revgate.notify`).

    The webhook URLs are secrets (their path or token is the key): a checklist names the environment
    variable that holds them (``urls_env``) and never holds them; ``--notify`` and ``REVGATE_NOTIFY`` come first."""

    urls_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable holding the webhook URL(s), separated by whitespace or commas."""
    format: Literal["auto", "slack", "google-chat", "json"] = "auto"
    """``auto``: Slack for hooks.slack.com, Google Chat for chat.googleapis.com, JSON otherwise; else that format for every URL."""
    on: list[Literal["rollback", "end", "step"]] = Field(default_factory=lambda: ["rollback", "end", "step"], min_length=1)
    """The moments: ``rollback`` (a rollback started), ``end`` (the run ended), ``step`` (a rollout's step
    began or ended)."""
    only_on: list[Literal["PASS", "FAIL", "NOT VERIFIED", "INTERRUPTED", "ERROR"]] = Field(default_factory=list)
    """The verdicts that get the end message (empty: every verdict)."""
    timeout: float = Field(5.0, gt=0, le=30)
    """Seconds per attempt (connect, write and each read)."""
    retries: int = Field(2, ge=0, le=5)
    """Further attempts after a connection error, a timeout, 429 or 5xx (never after another 4xx)."""

    @model_validator(mode="before")
    @classmethod
    def _no_urls_here(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("url", "urls", "webhook", "webhooks"):
                if key in data:
                    raise ValueError(
                        f"key {key!r}: a webhook URL is a secret and does not belong in a checklist (it is committed "
                        "to a repository): put it in an environment variable and name it with urls_env = \"NAME\", "
                        "or give REVGATE_NOTIFY or --notify"
                    )
        return data


MIN_MEMORY = 128 * 1024**2
MAX_MEMORY = 32 * 1024**3
"""Cloud Run's memory limits: 128 MiB (first generation) to 32 GiB
(cloud.google.com/run/docs/configuring/services/memory-limits)."""
MIN_CPU = Decimal("0.08")
MAX_CPU = Decimal(8)
"""Cloud Run's CPU limits: 0.08 to 8 vCPU (cloud.google.com/run/docs/configuring/services/memory-limits,
the table of the memory each CPU value allows: ".08 vCPU" to "8 vCPU")."""

REVISION_KEYS = (
    "image", "memory", "cpu", "timeout_s", "concurrency", "min_instances", "max_instances", "port",
    "service_account", "env", "env_values", "secrets", "allow_unauthenticated",
)
"""The ``[revision]`` checks, in the order they run (each key set is ``test_revision[KEY]``)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_REF = re.compile(r"^(projects/[a-z0-9][a-z0-9-]{0,62}/secrets/)?[A-Za-z0-9_-]{1,255}:(latest|[1-9][0-9]*)$")
"""``NAME:VERSION`` (a secret of the service's project) or ``projects/PROJECT/secrets/NAME:VERSION`` (another's)."""


class RevisionKey(_Section):
    """One key of ``[revision]``, as a test parameter (``test_revision[memory]``)."""

    id: str
    advisory: bool = False


def _image_ref(value: str) -> str:
    from .revision_images import parse_image

    parse_image(value)  # raises ValueError with one line
    return value


class RevisionConfig(_Section):
    """The revision under test's own configuration, as Cloud Run's Admin API reports it (``[revision]``)."""

    advisory: bool = False
    image: str | None = None
    """``REPO@sha256:DIGEST`` (compared by digest) or ``REPO:TAG`` (the repository, and the tag the deploy named)."""
    memory: str | None = None
    """A Kubernetes quantity: ``"2Gi"``, ``"512Mi"`` (compared as bytes)."""
    cpu: str | int | float | None = None
    """``2``, ``"2"``, ``"1000m"``, ``0.5`` (compared as cores)."""
    timeout_s: int | None = Field(None, ge=1, le=3600)
    concurrency: int | None = Field(None, ge=1, le=1000)
    """``max_instance_request_concurrency``."""
    min_instances: int | None = Field(None, ge=0, le=1000)
    max_instances: int | None = Field(None, ge=1, le=1000)
    port: int | None = Field(None, ge=1, le=65535)
    """The ingress container's port."""
    service_account: str | None = None
    env: list[str] = Field(default_factory=list)
    """Names that must be set (a plain value or a secret); values are never shown."""
    env_equals: list[str] = Field(default_factory=list)
    """Names whose values may be compared and shown; each needs its value in ``env_values``."""
    env_values: dict[str, str] = Field(default_factory=dict)
    """``{ NAME = "value" }`` for names listed in ``env_equals`` (no other name's value is ever compared)."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Env var name or mounted file path -> ``"SECRET:VERSION"`` (``latest`` allowed)."""
    allow_unauthenticated: bool | None = None
    """The service's IAM policy binds ``allUsers`` to ``roles/run.invoker`` (True) or does not (False)."""
    advisory_checks: list[str] = Field(default_factory=list)
    """Keys reported but not gating (``min_instances``...)."""

    _check_image = field_validator("image")(_image_ref)

    @field_validator("memory")
    @classmethod
    def _check_memory(cls, value: str | None) -> str | None:
        from .quantities import QuantityError, memory_bytes

        if value is not None:
            try:
                size = memory_bytes(value)
            except QuantityError:
                raise ValueError(f"{value!r} is not a memory size: give a Kubernetes quantity like \"512Mi\" or \"2Gi\"") from None
            if not MIN_MEMORY <= size <= MAX_MEMORY:
                raise ValueError(
                    f"{value!r} is not a memory limit Cloud Run allows (128Mi to 32Gi): no revision could match it"
                )
        return value

    @field_validator("cpu")
    @classmethod
    def _check_cpu(cls, value: str | int | float | None) -> str | int | float | None:
        from .quantities import QuantityError, cpu_cores

        if value is not None:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value!r} is not a CPU limit: give a finite number of cores like 2, \"2\", 0.5 or \"1000m\"")
            try:
                cores = cpu_cores(value)
            except QuantityError:
                raise ValueError(f"{value!r} is not a CPU limit: give cores like 2, \"2\", 0.5 or \"1000m\"") from None
            if not MIN_CPU <= cores <= MAX_CPU:
                raise ValueError(f"{value!r} is not a CPU limit Cloud Run allows (0.08 to 8 cores): no revision could match it")
        return value

    @field_validator("env", "env_equals")
    @classmethod
    def _check_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value

    @field_validator("secrets")
    @classmethod
    def _check_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for key, ref in value.items():
            if not (_ENV_NAME.match(key) or (key.startswith("/") and not key.endswith("/") and key.count("/") >= 2)):
                raise ValueError(f"{key!r} is neither an environment variable name nor a mounted file path like /secrets/api-key")
            if not _SECRET_REF.match(ref):
                raise ValueError(
                    f"{key!r}: {ref!r} is not SECRET:VERSION or projects/PROJECT/secrets/SECRET:VERSION (VERSION a number or latest)"
                )
        return value

    @model_validator(mode="after")
    def _check_values_and_keys(self) -> RevisionConfig:
        listed = set(self.env_equals)
        for name in self.env_values:
            if name not in listed:
                raise ValueError(f"env_values {name!r}: list it in env_equals too, so that its value may be compared and shown")
        for name in self.env_equals:
            if name not in self.env_values:
                raise ValueError(f"env_equals {name!r}: give its expected value in env_values = {{ {name} = \"...\" }}")
        if self.min_instances is not None and self.max_instances is not None and self.min_instances > self.max_instances:
            raise ValueError(f"min_instances {self.min_instances} is more than max_instances {self.max_instances}")
        set_keys = [key.id for key in self.keys()]
        for name in self.advisory_checks:
            if name not in REVISION_KEYS:
                raise ValueError(f"advisory_checks: {name!r} is not a key of [revision] (one of: {', '.join(REVISION_KEYS)})")
            if name not in set_keys:
                raise ValueError(f"advisory_checks: {name!r} is not set in this section")
        return self

    def keys(self) -> list[RevisionKey]:
        """The keys set, one test each."""
        values = {key: getattr(self, key) for key in REVISION_KEYS}
        return [
            RevisionKey(id=key, advisory=self.advisory or key in self.advisory_checks)
            for key, value in values.items()
            if value not in (None, [], {})
        ]


LOG_SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
"""Cloud Logging's LogSeverity names, lowest first (google/logging/type/log_severity.proto)."""
LOG_KINDS = ("stdout", "stderr", "requests", "system", "other")
"""The logs Cloud Run writes for a revision: container stdout and stderr, request logs, system logs."""


def log_pattern(pattern: str) -> Any:
    """``pattern`` compiled as RE2, the syntax of Cloud Logging's ``=~``, which the query sends it to
    (cloud.google.com/logging/docs/view/logging-query-language, "Regular expressions"): the gate matches
    exactly what Cloud Logging matched, and in linear time, so no pattern can hang the gate on a long
    line (Python's ``re`` backtracks: ``(a+)+$`` takes seconds on 26 characters). Raises ValueError."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason is in the exception; RE2 would also print it to stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"{pattern!r} is not a regular expression Cloud Logging accepts (RE2 syntax: no lookaround, "
            f"no backreferences): {reason}"
        ) from None


def _log_patterns(value: list[str]) -> list[str]:
    for pattern in value:
        log_pattern(pattern)
    return value


class Logs(_NamedCheck):
    """``[[logs]]``: no entry of the revision under test at ``min_severity`` or above (or matching ``deny``)."""

    min_severity: Literal["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"] = "ERROR"
    """Entries at this severity or above are problems (Cloud Logging's LogSeverity names)."""
    allow: list[str] = Field(default_factory=list)
    """Regular expressions (RE2): an entry whose message matches one of them is never a problem."""
    deny: list[str] = Field(default_factory=list)
    """Regular expressions (RE2, as Cloud Logging's ``=~``): an entry whose message matches one of them is a problem at any severity."""
    kinds: list[Literal["stdout", "stderr", "requests", "system", "other"]] = Field(
        default_factory=lambda: list(LOG_KINDS), min_length=1
    )
    """Which logs are read: stdout, stderr (container logs), requests (request logs), system (varlog/system),
    other (every other log name of the revision, such as a Cloud Logging client library's ``python``);
    by default all of them."""
    since: Literal["revision", "run"] = "revision"
    """The window starts when the revision was created, or when this run started; it ends when the logs are read."""
    max_entries: int = Field(0, ge=0, le=10_000)
    """Problem entries tolerated (0: none)."""

    _check_patterns = field_validator("allow", "deny")(_log_patterns)

    @field_validator("kinds")
    @classmethod
    def _unique_kinds(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"kinds {value!r}: name each kind once")
        return value


class Rollout(_Section):
    """``[rollout]``: carry the revision through traffic steps, watching it through each soak
    (:mod:`revgate.rollback.rollout`); ``--rollout``, ``--soak``, ``--probe-interval`` and ``--max-soak``
    come first."""

    steps: list[int] = Field(min_length=1, max_length=20)
    """Percents of the traffic, increasing, each 1 to 100: ``[10, 50, 100]``."""
    soak: str | list[str] = "10m"
    """How long each step is watched: one duration for every step (``"10m"``), or one per step."""
    probe_interval: str = "10s"
    """How often the request checks (health, ``[[api]]``, ``[[websocket]]``) run during a soak."""
    max_soak: str | list[str] | None = None
    """How long a step may be extended while evidence is missing (default: its soak plus 5m)."""

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(not 1 <= p <= 100 for p in value):
            raise ValueError(f"steps {value}: each step is a percent from 1 to 100")
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"steps {value}: the percents must increase")
        return value

    @field_validator("soak", "probe_interval", "max_soak")
    @classmethod
    def _durations(cls, value: str | list[str] | None, info: Any) -> str | list[str] | None:
        from .durations import parse_duration

        for item in [] if value is None else [value] if isinstance(value, str) else value:
            parse_duration(item, what=info.field_name)
        return value


class Suite(_Section):
    """``[suite]``: what the gate runs besides the checklist's checks."""

    checks: list[str] = Field(default_factory=list)
    """Folders of the team's own pytest files, relative to the checklist (``--checks`` overrides them)."""


LOGGING_FILTER_LIMIT = 20_000
"""Characters a Cloud Logging query may have (cloud.google.com/logging/quotas, "Logging usage limits":
the length of a Logging query language query is at most 20,000 characters, a limit that cannot be raised)."""
FILTER_RESERVE = 2_000
"""Characters the rest of the logs check's filter takes (the resource, revisions, time range, log names)."""


def probe_lines(health_path: str) -> list[str]:
    """The gate's own logs probe as Cloud Logging and an application's access log show it."""
    probe = f"{health_path}{'&' if '?' in health_path else '?'}revgate-logs-probe=0123456789abcdef0123456789abcdef"
    return [
        f"GET https://revision.a.run.app{probe} 200",
        f'127.0.0.1:54321 - "GET {probe} HTTP/1.1" 200',
    ]


def deny_within_limits(entry: Logs, health_path: str) -> None:
    """A ``deny`` pattern that matches the gate's own probe (or every line) would fail every revision, and
    the patterns must fit Cloud Logging's filter limit: ValueError (one line) otherwise."""
    for pattern in entry.deny:
        compiled = log_pattern(pattern)
        for line in ["", *probe_lines(health_path)]:
            if compiled.search(line):
                seen = "every line (it matches an empty one)" if not line else f"the gate's own probe request ({line!r})"
                raise ValueError(
                    f"[[logs]] {entry.id!r}: deny pattern {pattern[:80]!r} matches {seen}: it would fail every "
                    "revision; make it match only the lines that are problems"
                )
    from .logs_query import problems_filter

    length = len(problems_filter(entry.min_severity, entry.deny))
    if length + FILTER_RESERVE > LOGGING_FILTER_LIMIT:
        raise ValueError(
            f"[[logs]] {entry.id!r}: the deny patterns make a Cloud Logging filter of {length} characters; with the rest "
            f"of the query it must stay within {LOGGING_FILTER_LIMIT} (at most {LOGGING_FILTER_LIMIT - FILTER_RESERVE} "
            "for the patterns): use fewer or shorter patterns"
        )


class Checklist(_Section):
    defaults: Defaults = Field(default_factory=Defaults)
    health: Health | None = None
    api: list[Api] = Field(default_factory=list)
    websocket: list[WebSocket] = Field(default_factory=list)
    latency: list[Latency] = Field(default_factory=list)
    metrics: Metrics | None = None
    page: list[Page] = Field(default_factory=list)
    rollback: Rollback | None = None
    revision: RevisionConfig | None = None
    notify: Notify | None = None
    logs: list[Logs] = Field(default_factory=list)
    suite: Suite | None = None
    rollout: Rollout | None = None

    @model_validator(mode="after")
    def _deny_never_matches_the_gate(self) -> Checklist:
        for entry in self.logs:
            deny_within_limits(entry, self.health.path if self.health else "/")
        return self

    @field_validator("api", "websocket", "latency", "page", "logs")
    @classmethod
    def _unique_ids(cls, entries: list[_NamedCheck]) -> list[_NamedCheck]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"id {entry.id!r} is used twice")
            seen.add(entry.id)
        return entries

    @property
    def revision_keys(self) -> list[RevisionKey]:
        """The ``[revision]`` keys set, one test parameter each."""
        return self.revision.keys() if self.revision else []

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

"""The subset of the Logging query language the fake Cloud Logging API understands.

Source: "Logging query language", https://cloud.google.com/logging/docs/view/logging-query-language.
What is modelled:

- comparisons ``FIELD OP VALUE`` with ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``, ``:`` (has: a
  substring, case-insensitive) and ``=~`` / ``!~`` (regular expression search in RE2, as Google
  documents: a pattern RE2 refuses is INVALID_ARGUMENT, and matching takes linear time);
- ``AND``, ``OR``, ``NOT``, parentheses, and juxtaposition as an implicit ``AND``; as the page says,
  ``OR`` binds tighter than ``AND`` (``a OR b AND c`` is ``(a OR b) AND c``);
- fields: ``logName``, ``severity`` (compared in LogSeverity order, by name or number),
  ``timestamp`` / ``receiveTimestamp`` (RFC 3339, compared as instants), ``insertId``,
  ``resource.type``, ``resource.labels.KEY``, ``labels.KEY``, ``textPayload``,
  ``jsonPayload.PATH``, ``httpRequest.FIELD``, ``trace``, ``spanId``;
- a comparison of a field the entry lacks is false (``!=`` too, as a missing field has no value);
- the function ``log_id("LOG_ID")``: the entry's log id, whatever its ``logName``'s project is
  written as (the page's "log_id" function);

Anything else (a bare global search term, other functions such as ``sample()``, the ``-``
prefix, another field) is refused with :class:`InvalidFilter`: the API answers INVALID_ARGUMENT
naming what the fake does not support, so a query it cannot judge never returns silently wrong data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

__all__ = ["SEVERITIES", "InvalidFilter", "compile_filter", "parse_time", "severity_number"]

SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}
"""google.logging.type.LogSeverity (google/logging/type/log_severity.proto): name -> number."""

_FIELDS = re.compile(
    r"^(logName|severity|timestamp|receiveTimestamp|insertId|trace|spanId|textPayload|resource\.type"
    r"|resource\.labels\.[A-Za-z0-9_]+|labels\.[A-Za-z0-9_./-]+|jsonPayload(\.[A-Za-z0-9_@-]+)+"
    r"|httpRequest\.[A-Za-z]+)$"
)
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>=~|!~|>=|<=|!=|=|>|<|:)|(?P<paren>[()])|(?P<word>[^\s()=!<>:"]+))'
)

Entry = dict[str, Any]
Predicate = Callable[[Entry], bool]


class InvalidFilter(ValueError):
    """The filter is not valid, or uses what the fake does not support: one line, for the caller."""


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidFilter(f"unexpected character {text[pos:].lstrip()[:1]!r} in the filter")
        pos = m.end()
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
    return out


def _unquote(token: _Tok) -> str:
    if token.kind != "str":
        return token.text
    body = token.text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (``2026-12-02T01:40:00.5Z``); InvalidFilter otherwise."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFilter(f"{text!r} is not an RFC 3339 timestamp (like \"2026-01-31T12:00:00Z\")") from None
    if value.tzinfo is None:
        raise InvalidFilter(f"{text!r}: a timestamp needs a time zone (Z or +HH:MM)")
    return value


def severity_number(value: str) -> int:
    if value.upper() in SEVERITIES:
        return SEVERITIES[value.upper()]
    try:
        return int(value)
    except ValueError:
        raise InvalidFilter(f"{value!r} is not a LogSeverity ({', '.join(SEVERITIES)})") from None


def _lookup(entry: Entry, field: str) -> Any:
    if field.startswith("labels."):
        labels = entry.get("labels")
        return labels.get(field[len("labels."):]) if isinstance(labels, dict) else None
    value: Any = entry
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _compare(field: str, op: str, raw: str) -> Predicate:
    if field == "severity":
        if op in (":", "=~", "!~"):
            raise InvalidFilter(f"severity {op} is not supported by the sandbox's Logging API; use = or >=")
        wanted = severity_number(raw)

        def sev(entry: Entry) -> bool:
            have = SEVERITIES.get(str(entry.get("severity", "DEFAULT")), 0)
            return _ordered(have, op, wanted)

        return sev
    if field in ("timestamp", "receiveTimestamp"):
        if op in (":", "=~", "!~"):
            raise InvalidFilter(f"{field} {op} is not supported by the sandbox's Logging API; use >=, <=, >, <")
        when = parse_time(raw)

        def stamp(entry: Entry) -> bool:
            have = entry.get(field)
            return have is not None and _ordered(parse_time(str(have)), op, when)

        return stamp
    if op in ("=~", "!~"):
        import re2

        options = re2.Options()
        options.log_errors = False
        try:
            pattern = re2.compile(raw, options=options)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise InvalidFilter(f"{raw!r} is not a valid RE2 regular expression ({reason})") from None

        def regex(entry: Entry) -> bool:
            have = _lookup(entry, field)
            if have is None:
                return False
            found = pattern.search(_text(have)) is not None
            return found if op == "=~" else not found

        return regex

    def plain(entry: Entry) -> bool:
        have = _lookup(entry, field)
        if have is None:
            return False
        text = _text(have)
        if op == ":":
            return raw.lower() in text.lower()
        if op in ("=", "!="):
            equal = text == raw or _same_number(have, raw)
            return equal if op == "=" else not equal
        return _ordered(*_comparable(have, raw), op)

    return plain


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _same_number(have: Any, raw: str) -> bool:
    if isinstance(have, bool) or not isinstance(have, (int, float)):
        return False
    try:
        return float(raw) == float(have)
    except ValueError:
        return False


def _comparable(have: Any, raw: str) -> tuple[Any, Any]:
    if isinstance(have, (int, float)) and not isinstance(have, bool):
        try:
            return float(have), float(raw)
        except ValueError:
            pass
    return _text(have), raw


def _ordered(have: Any, op: str, wanted: Any) -> bool:
    return {
        "=": have == wanted,
        "!=": have != wanted,
        ">": have > wanted,
        "<": have < wanted,
        ">=": have >= wanted,
        "<=": have <= wanted,
    }[op]


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        token = self.peek()
        if token is None:
            raise InvalidFilter("the filter ends too early")
        self.pos += 1
        return token

    def conjunction(self) -> Predicate:
        """``a AND b``, or ``a b`` (juxtaposition): the loosest binding."""
        parts = [self.disjunction()]
        while (token := self.peek()) is not None and not (token.kind == "paren" and token.text == ")"):
            if token.kind == "word" and token.text == "AND":
                self.take()
            parts.append(self.disjunction())
        return parts[0] if len(parts) == 1 else (lambda e: all(p(e) for p in parts))

    def disjunction(self) -> Predicate:
        parts = [self.negation()]
        while (token := self.peek()) is not None and token.kind == "word" and token.text == "OR":
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda e: any(p(e) for p in parts))

    def negation(self) -> Predicate:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text == "NOT":
            self.take()
            inner = self.negation()
            return lambda e: not inner(e)
        return self.primary()

    def primary(self) -> Predicate:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            inner = self.conjunction()
            close = self.take()
            if close.text != ")":
                raise InvalidFilter("a '(' is not closed")
            return inner
        if token.kind != "word":
            raise InvalidFilter(
                f"{token.text!r}: the sandbox's Logging API supports only FIELD OP VALUE comparisons "
                "(no global search terms)"
            )
        field = token.text
        following = self.peek()
        if field == "log_id" and following is not None and following.kind == "paren" and following.text == "(":
            return self.log_id()
        if field.startswith("-") or (following is not None and following.kind == "paren" and following.text == "("):
            raise InvalidFilter(f"{field!r}: the '-' prefix and functions are not supported by the sandbox's Logging API")
        op = self.peek()
        if op is None or op.kind != "op":
            raise InvalidFilter(
                f"{field!r}: the sandbox's Logging API supports only FIELD OP VALUE comparisons (no global search terms)"
            )
        self.take()
        if not _FIELDS.match(field):
            raise InvalidFilter(f"field {field!r} is not supported by the sandbox's Logging API")
        value = self.take()
        if value.kind not in ("str", "word"):
            raise InvalidFilter(f"{field} {op.text}: a value is missing")
        return _compare(field, op.text, _unquote(value))


    def log_id(self) -> Predicate:
        """``log_id("run.googleapis.com/stdout")``: the entry's log id (``logName`` after ``/logs/``,
        URL-decoded), whatever the project is written as."""
        self.take()
        value = self.take()
        close = self.take()
        if value.kind != "str" or close.text != ")":
            raise InvalidFilter('log_id takes one quoted log id, like log_id("run.googleapis.com/stdout")')
        wanted = _unquote(value)
        return lambda e: unquote(str(e.get("logName", "")).partition("/logs/")[2]) == wanted


def compile_filter(text: str) -> Predicate:
    """A predicate over entries in their JSON form (``MessageToDict`` of a LogEntry); InvalidFilter if not supported."""
    if len(text) > 20_000:
        raise InvalidFilter("the filter is longer than 20,000 characters")
    tokens = _tokens(text)
    if not tokens:
        return lambda entry: True
    parser = _Parser(tokens)
    predicate = parser.conjunction()
    if parser.peek() is not None:
        raise InvalidFilter(f"unexpected {parser.peek().text!r} in the filter")  # type: ignore[union-attr]
    return predicate

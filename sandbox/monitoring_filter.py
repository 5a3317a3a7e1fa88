"""The subset of the Cloud Monitoring filter language the sandbox understands.

Supported (https://cloud.google.com/monitoring/api/v3/filters)::

    filter     := comparison ( "AND" comparison )*
    comparison := selector ( "=" | "!=" ) "double-quoted string"
    selector   := metric.type | resource.type
                | metric.labels.NAME   | metric.label.NAME
                | resource.labels.NAME | resource.label.NAME

A filter must contain exactly one ``metric.type = "..."`` comparison, as the
real API requires ("the filter must specify a single metric type").

Everything else (``OR``, ``NOT``, parentheses, ``:``, ``<``/``>``, functions
such as ``starts_with(...)`` or ``one_of(...)``, unquoted values, comparisons
side by side without ``AND``, other selectors such as ``project`` or
``metadata.*``) raises :class:`InvalidQuery` with a message that names the
unsupported part, so that a query is never answered "no data" because the
sandbox did not understand it.

A label missing from a time series compares as the empty string: ``!=`` then
matches it and ``=`` does not (unless the value compared with is ``""``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MonitoringError",
    "InvalidQuery",
    "Comparison",
    "Filter",
    "parse_filter",
    "split_label_selector",
    "label_value",
]


class MonitoringError(Exception):
    """Base class of the errors the sandbox's Monitoring API answers with."""


class InvalidQuery(MonitoringError, ValueError):
    """A request the sandbox refuses; the message names the unsupported part (INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``field`` is ``metric.type``, ``resource.type``,
    ``metric.labels.NAME`` or ``resource.labels.NAME`` (normalized spelling)."""

    field: str
    negated: bool
    value: str

    def matches(
        self,
        *,
        metric_type: str,
        resource_type: str,
        metric_labels: Mapping[str, str],
        resource_labels: Mapping[str, str],
    ) -> bool:
        if self.field == "metric.type":
            actual = metric_type
        elif self.field == "resource.type":
            actual = resource_type
        else:
            actual = label_value(self.field, metric_labels=metric_labels, resource_labels=resource_labels)
        return (actual == self.value) != self.negated


@dataclass(frozen=True)
class Filter:
    """A parsed filter: the metric type it selects and every comparison (ANDed)."""

    metric_type: str
    comparisons: tuple[Comparison, ...]

    def matches(
        self,
        *,
        metric_type: str,
        resource_type: str,
        metric_labels: Mapping[str, str],
        resource_labels: Mapping[str, str],
    ) -> bool:
        return all(
            c.matches(
                metric_type=metric_type,
                resource_type=resource_type,
                metric_labels=metric_labels,
                resource_labels=resource_labels,
            )
            for c in self.comparisons
        )


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<unterminated>"(?:[^"\\]|\\.)*$)
  | (?P<op>!=|>=|<=|=~|!~|=|:|<|>)
  | (?P<paren>[()])
  | (?P<word>[A-Za-z_][A-Za-z0-9_./-]*)
  | (?P<number>-?[0-9][0-9.eE+-]*)
  | (?P<other>[^\s"()=!<>:]+|\S)
    """,
    re.VERBOSE,
)

_LABEL_PREFIXES = {
    "metric.labels.": "metric.labels.",
    "metric.label.": "metric.labels.",
    "resource.labels.": "resource.labels.",
    "resource.label.": "resource.labels.",
}
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_label_selector(name: str) -> tuple[str, str] | None:
    """``(normal prefix, label name)`` of a label selector in any accepted spelling, else ``None``.

    The normal prefix is ``metric.labels.`` or ``resource.labels.``; the label
    name is returned as written (possibly empty), for the caller to check.
    """
    for prefix, normal in _LABEL_PREFIXES.items():
        if name.startswith(prefix):
            return normal, name[len(prefix) :]
    return None


def label_value(field: str, *, metric_labels: Mapping[str, str], resource_labels: Mapping[str, str]) -> str:
    """The value of the normalized label selector ``field`` (``""`` when the label is missing)."""
    if field.startswith("metric.labels."):
        return metric_labels.get(field[len("metric.labels.") :], "")
    return resource_labels.get(field[len("resource.labels.") :], "")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "ws":
            continue
        if kind == "unterminated":
            raise InvalidQuery(f"filter has an unterminated string: {m.group()!r}")
        out.append((kind, m.group()))
    return out


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _selector(word: str) -> str:
    if word in ("metric.type", "resource.type"):
        return word
    label = split_label_selector(word)
    if label is not None:
        normal, name = label
        if not _LABEL_NAME.fullmatch(name):
            raise InvalidQuery(f"filter selector {word!r}: {name!r} is not a label name")
        return normal + name
    raise InvalidQuery(
        f"filter selector {word!r} is not supported by the sandbox "
        "(supported: metric.type, resource.type, metric.labels.NAME, resource.labels.NAME)"
    )


def parse_filter(text: str) -> Filter:
    """Parse ``text``; raise :class:`InvalidQuery` naming the first unsupported part."""
    tokens = _tokens(text)
    if not tokens:
        raise InvalidQuery('filter is empty: it must specify a metric type (metric.type = "...")')
    comparisons: list[Comparison] = []
    i = 0
    while True:
        if i >= len(tokens):
            raise InvalidQuery("filter ends after AND: a comparison is missing")
        kind, value = tokens[i]
        if kind == "paren":
            raise InvalidQuery(f"filter uses parentheses {value!r}: not supported by the sandbox")
        if kind == "word" and value in ("OR", "NOT", "AND"):
            raise InvalidQuery(f"filter uses {value} where a comparison is expected: not supported by the sandbox")
        if kind != "word":
            raise InvalidQuery(f"filter has {value!r} where a selector is expected (e.g. metric.type)")
        if i + 1 < len(tokens) and tokens[i + 1] == ("paren", "("):
            raise InvalidQuery(f"filter function {value}(...) is not supported by the sandbox")
        field = _selector(value)
        if i + 1 >= len(tokens):
            raise InvalidQuery(f"filter ends after {value!r}: an operator and a value are missing")
        op_kind, op = tokens[i + 1]
        if op_kind != "op":
            raise InvalidQuery(f"filter has {op!r} after {value!r} where '=' or '!=' is expected")
        if op not in ("=", "!="):
            raise InvalidQuery(
                f"filter operator {op!r} (in {value} {op} ...) is not supported by the sandbox; use = or !="
            )
        if i + 2 >= len(tokens):
            raise InvalidQuery(f"filter ends after '{value} {op}': a quoted value is missing")
        v_kind, v = tokens[i + 2]
        if v_kind == "word" and i + 3 < len(tokens) and tokens[i + 3] == ("paren", "("):
            raise InvalidQuery(f"filter function {v}(...) is not supported by the sandbox")
        if v_kind != "string":
            raise InvalidQuery(f"filter value {v!r} after '{value} {op}' must be a double-quoted string")
        comparisons.append(Comparison(field=field, negated=op == "!=", value=_unquote(v)))
        i += 3
        if i >= len(tokens):
            break
        kind, value = tokens[i]
        if (kind, value) == ("word", "AND"):
            i += 1
            continue
        if kind == "word" and value in ("OR", "NOT"):
            raise InvalidQuery(f"filter uses {value}: not supported by the sandbox (only AND)")
        if kind == "paren":
            raise InvalidQuery(f"filter uses parentheses {value!r}: not supported by the sandbox")
        raise InvalidQuery(f"filter has {value!r} after a comparison where AND is expected")
    types = [c for c in comparisons if c.field == "metric.type"]
    if len(types) != 1 or types[0].negated:
        raise InvalidQuery(
            'filter must specify a single metric type with metric.type = "..." '
            f"(found {len(types)} metric.type comparison(s){', negated' if any(c.negated for c in types) else ''})"
        )
    return Filter(metric_type=types[0].value, comparisons=tuple(comparisons))

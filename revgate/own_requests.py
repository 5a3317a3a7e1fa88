"""The gate's own requests that are no evidence about the revision, counted by status class so that
the metric checks can leave them out: the readiness retries (``[health] retry_statuses`` answered
while the revision starts), the refusal probes of ``auth = true`` checks (sent without a token, or
with a wrong one, to be refused) and the logs probe.

Why counting: Cloud Monitoring's ``run.googleapis.com/request_count`` has the labels
``response_code_class`` (and ``response_code``) and the revision's resource labels only
(cloud.google.com/monitoring/api/metrics_gcp, "run"); no filter can pick requests by header, path
or client. So the gate counts what it sent, per class, and subtracts that from the revision's counts
(never below zero), and the message says how many were left out. Counts are per process: with
pytest-xdist, each worker leaves out what it sent itself.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["by_class", "describe", "record", "reset"]

_COUNTS: Counter[tuple[str, str]] = Counter()
"""``(kind, response_code_class) -> requests`` of this process."""


def status_class(status: int | None) -> str | None:
    """``503`` -> ``"5xx"``, the values of Cloud Run's ``response_code_class`` label; None for no answer."""
    if status is None or not 100 <= status <= 599:
        return None
    return f"{status // 100}xx"


def record(kind: str, status: int | None) -> None:
    """One request the gate sent for itself (``kind``: "readiness", "refusal probe", "logs probe")."""
    klass = status_class(status)
    if klass is not None:
        _COUNTS[(kind, klass)] += 1


def by_class() -> dict[str, int]:
    """``{response_code_class: requests}`` of every own request so far."""
    out: dict[str, int] = {}
    for (_, klass), count in _COUNTS.items():
        out[klass] = out.get(klass, 0) + count
    return out


def describe() -> str:
    """``"3 readiness retries, 2 refusal probes"``: what was left out, in words."""
    kinds: dict[str, int] = {}
    for (kind, _), count in _COUNTS.items():
        kinds[kind] = kinds.get(kind, 0) + count
    names = {"readiness": ("readiness request", "readiness requests"), "refusal probe": ("refusal probe", "refusal probes"),
             "logs probe": ("logs probe", "logs probes")}
    parts = []
    for kind, count in kinds.items():
        one, many = names.get(kind, (kind, kind))
        parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)


def reset() -> None:
    _COUNTS.clear()

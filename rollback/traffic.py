"""Traffic entries and revisions as plain frozen values.

They are what the plugin snapshots before the run, sends to xdist workers,
plans with and writes to the JSON record; :mod:`rollback.cloudrun` converts
them from and to the ``run_v2`` messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LATEST", "REVISION", "RevisionInfo", "TrafficEntry", "describe_traffic", "serving"]

REVISION = "REVISION"
LATEST = "LATEST"


@dataclass(frozen=True, kw_only=True)
class TrafficEntry:
    """One traffic target: a revision (short name), its percent, its tag ('' when none)."""

    revision: str
    percent: int
    tag: str = ""
    type: str = REVISION
    uri: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficEntry:
        return cls(**data)

    def __str__(self) -> str:
        tag = f" (tag {self.tag})" if self.tag else ""
        latest = " [LATEST]" if self.type == LATEST else ""
        return f"{self.revision}={self.percent}%{tag}{latest}"


@dataclass(frozen=True, kw_only=True)
class RevisionInfo:
    """A revision of the service: short name, creation time (epoch seconds), Ready or not and why."""

    name: str
    create_time: float
    ready: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RevisionInfo:
        return cls(**data)


def serving(entries: Iterable[TrafficEntry]) -> dict[str, int]:
    """Revision -> percent of the traffic it serves (revisions at 0 % left out)."""
    split: dict[str, int] = {}
    for entry in entries:
        if entry.percent > 0:
            split[entry.revision] = split.get(entry.revision, 0) + entry.percent
    return split


def describe_traffic(entries: Iterable[TrafficEntry]) -> str:
    """``'shop-00001=90%, shop-00002=10% (tag canary)'``."""
    return ", ".join(str(e) for e in entries) or "no traffic targets"

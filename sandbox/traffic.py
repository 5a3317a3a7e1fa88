"""Traffic rules of the sandbox, as Cloud Run applies them.

Pure functions over :class:`~sandbox.state.TrafficEntry` lists: validation (the
INVALID_ARGUMENT cases of ``UpdateService``), resolution of ``LATEST`` to the
latest Ready revision, the split the router uses, and the gcloud-style edits
(``deploy``, ``update-traffic --to-revisions / --to-latest / --to-tags``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sandbox.state import LATEST, REVISION, RevisionState, TrafficEntry

__all__ = [
    "TrafficError",
    "validate_tag",
    "validate_traffic",
    "resolve_traffic",
    "split",
    "traffic_after_deploy",
    "traffic_to_revisions",
    "traffic_to_latest",
    "traffic_to_tags",
    "parse_assignments",
]

_TAG = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_SERVICE = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
TAG_AND_SERVICE_MAX = 46
"""Cloud Run: "Combined traffic tag and service name cannot exceed 46 characters" (they form one DNS label)."""
SERVICE_NAME_MAX = 63


class TrafficError(ValueError):
    """A traffic specification Cloud Run would refuse (INVALID_ARGUMENT)."""


def _short(revision: str) -> str:
    return revision.rsplit("/", 1)[-1]


def validate_tag(tag: str, *, service: str | None = None) -> None:
    """Raise :class:`TrafficError` unless ``tag`` is a valid Cloud Run tag (for ``service``, when given)."""
    if not _TAG.match(tag):
        raise TrafficError(
            f"tag {tag!r} is invalid: lowercase letters, digits and dashes, starting with a letter "
            "and not ending with a dash"
        )
    if service is not None and len(tag) + len(service) > TAG_AND_SERVICE_MAX:
        raise TrafficError(
            f"traffic tag {tag!r} and service name {service!r} together are too long. "
            f"Combined traffic tag and service name cannot exceed {TAG_AND_SERVICE_MAX} characters."
        )


def validate_service_name(name: str) -> None:
    """Raise :class:`TrafficError` unless ``name`` is a valid Cloud Run service name."""
    if not _SERVICE.match(name) or len(name) > SERVICE_NAME_MAX:
        raise TrafficError(
            f"service name {name!r} is invalid: Service name must use only lowercase letters, numbers and '-'. "
            f"Must begin with a letter and cannot end with a '-'. Maximum length is {SERVICE_NAME_MAX} characters."
        )


def validate_traffic(
    entries: list[TrafficEntry], revisions: Mapping[str, RevisionState], *, service: str
) -> None:
    """Raise :class:`TrafficError` with Cloud Run's kind of message if ``entries`` is not acceptable."""
    if not entries:
        raise TrafficError(f"service {service!r}: traffic must list at least one target")
    total = 0
    tags: set[str] = set()
    has_ready = any(r.ready for r in revisions.values())
    for entry in entries:
        if entry.type not in (LATEST, REVISION):
            raise TrafficError(f"traffic target type {entry.type!r} is not LATEST or REVISION")
        if not 0 <= entry.percent <= 100:
            raise TrafficError(f"traffic percent {entry.percent} is not between 0 and 100")
        total += entry.percent
        if entry.type == REVISION:
            if not entry.revision:
                raise TrafficError("a REVISION traffic target must name a revision")
            rev = revisions.get(entry.revision)
            if rev is None:
                raise TrafficError(
                    f"revision {entry.revision!r} not found in service {service!r}: "
                    "name an existing revision (see ListRevisions)"
                )
            if entry.percent > 0 and not rev.ready:
                raise TrafficError(
                    f"revision {entry.revision!r} is not Ready ({rev.reason or 'no reason'}): "
                    "traffic can only go to Ready revisions"
                )
        elif entry.percent > 0 and not has_ready:
            raise TrafficError(f"service {service!r} has no Ready revision for the LATEST traffic target")
        if entry.tag:
            validate_tag(entry.tag, service=service)
            if entry.tag in tags:
                raise TrafficError(f"tag {entry.tag!r} is used by more than one traffic target")
            tags.add(entry.tag)
        # the same revision may be listed more than once (untagged and tagged, or twice): Cloud Run
        # accepts it and the revision serves the sum of its percents
    if total != 100:
        raise TrafficError(f"traffic percentages add up to {total}, not 100")


def resolve_traffic(entries: list[TrafficEntry], latest_ready: str) -> list[TrafficEntry]:
    """The traffic in force: ``LATEST`` entries carry the revision they resolve to."""
    return [
        TrafficEntry(type=e.type, revision=latest_ready if e.type == LATEST else e.revision, percent=e.percent, tag=e.tag)
        for e in entries
    ]


def split(status: list[TrafficEntry]) -> list[tuple[str, int]]:
    """``[(revision, percent), ...]`` with percent > 0, one row per revision, in first-seen order."""
    totals: dict[str, int] = {}
    for e in status:
        if e.percent > 0 and e.revision:
            totals[e.revision] = totals.get(e.revision, 0) + e.percent
    return list(totals.items())


def _tag_entries(entries: list[TrafficEntry], *, drop: frozenset[str] = frozenset()) -> list[TrafficEntry]:
    return [
        TrafficEntry(type=e.type, revision=e.revision, percent=0, tag=e.tag)
        for e in entries
        if e.tag and e.tag not in drop
    ]


def traffic_after_deploy(
    entries: list[TrafficEntry], *, revision: str, tag: str | None, route: bool, pinned_latest: str | None = None
) -> list[TrafficEntry]:
    """Like ``gcloud run deploy``: ``LATEST`` 100 % plus the tag entries.

    With ``route`` false (``--no-traffic``, or a revision that never became
    Ready) the split stays as it was; ``LATEST`` entries are pinned to
    ``pinned_latest`` (the previous latest Ready revision) so they do not follow
    the new revision, as gcloud does.
    """
    drop = frozenset([tag]) if tag else frozenset()
    if route:
        result = [TrafficEntry(type=LATEST, percent=100), *_tag_entries(entries, drop=drop)]
    else:
        result = []
        for e in entries:
            if e.tag and e.tag in drop:
                continue
            if e.type == LATEST and pinned_latest:
                e = TrafficEntry(type=REVISION, revision=pinned_latest, percent=e.percent, tag=e.tag)
            result.append(e)
    if tag:
        result.append(TrafficEntry(type=REVISION, revision=revision, percent=0, tag=tag))
    return result


def traffic_to_revisions(entries: list[TrafficEntry], assignments: Mapping[str, int]) -> list[TrafficEntry]:
    """``--to-revisions R=P,...``: the listed revisions (``LATEST`` allowed) and the tag entries at 0 %."""
    result = [
        TrafficEntry(type=LATEST, percent=p) if r == LATEST else TrafficEntry(type=REVISION, revision=_short(r), percent=p)
        for r, p in assignments.items()
    ]
    return result + _tag_entries(entries)


def traffic_to_latest(entries: list[TrafficEntry]) -> list[TrafficEntry]:
    """``--to-latest``: ``LATEST`` 100 % and the tag entries at 0 %."""
    return [TrafficEntry(type=LATEST, percent=100), *_tag_entries(entries)]


def traffic_to_tags(entries: list[TrafficEntry], assignments: Mapping[str, int]) -> list[TrafficEntry]:
    """``--to-tags TAG=P,...``: each tag's entry gets its percent; untagged entries go away."""
    known = {e.tag for e in entries if e.tag}
    unknown = sorted(set(assignments) - known)
    if unknown:
        raise TrafficError(f"tag(s) {', '.join(unknown)} not found; known tags: {', '.join(sorted(known)) or 'none'}")
    return [
        TrafficEntry(type=e.type, revision=e.revision, percent=assignments.get(e.tag, 0), tag=e.tag)
        for e in entries
        if e.tag
    ]


def parse_assignments(text: str) -> dict[str, int]:
    """``"a=10,b=90"`` → ``{"a": 10, "b": 90}``; raises :class:`TrafficError` on bad syntax."""
    result: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key or not value.strip().isdigit():
            raise TrafficError(f"expected NAME=PERCENT, got {part!r}")
        result[key.strip()] = int(value)
    if not result:
        raise TrafficError("expected NAME=PERCENT[,NAME=PERCENT...]")
    return result

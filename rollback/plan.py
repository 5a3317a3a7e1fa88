"""The traffic to restore when the revision under test fails: pure functions.

Which revision(s) get the traffic, in order:

1. ``--previous-revision NAME``: it gets 100 %;
2. otherwise the split that served users when the run started, without the
   revision(s) under test (and without any revision that is not Ready), scaled
   back to 100 % by the largest-remainder rule (:func:`scale_to_100`);
3. otherwise (the revision under test had all the traffic) the newest Ready
   revision created before it; revisions that are not Ready are skipped.

The planned traffic pins every revision (type REVISION, never LATEST) and keeps
every tagged entry: a tag is a traffic entry, and dropping it deletes its URL.
A tagged entry that carried traffic keeps its tag with its new percent (0 % for
the revision under test). Untagged entries left at 0 % are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from revgate.errors import RevgateError

from .traffic import REVISION, RevisionInfo, TrafficEntry, describe_traffic, serving

__all__ = ["NothingToShift", "Plan", "PlanError", "baseline_of", "choose_split", "plan_rollback", "scale_to_100"]


class PlanError(RevgateError):
    """No traffic can be planned: no Ready revision to restore, an unusable --previous-revision."""


class NothingToShift(PlanError):
    """The revision under test serves no traffic (a tag-only deploy): there is nothing to take away from it."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    traffic: tuple[TrafficEntry, ...]
    split: dict[str, int]
    """Revision -> percent after the rollback."""
    rule: str
    """How the revisions were chosen, in a sentence."""
    skipped: tuple[str, ...] = ()
    """Revisions passed over because they are not Ready."""

    def describe(self) -> str:
        return describe_traffic(self.traffic)


def scale_to_100(split: dict[str, int]) -> dict[str, int]:
    """Scale percentages to sum to exactly 100 by the largest-remainder rule.

    Each share is ``percent * 100 / total`` rounded down; the points still
    missing go one by one to the largest fractional parts (ties: the larger
    original share, then the order given). 70/20 -> 77.78/22.22 -> 78/22.
    """
    total = sum(split.values())
    if total <= 0:
        raise ValueError("cannot scale an empty split")
    floors = {rev: pct * 100 // total for rev, pct in split.items()}
    missing = 100 - sum(floors.values())
    order = sorted(
        enumerate(split.items()),
        key=lambda item: (-((item[1][1] * 100) % total), -item[1][1], item[0]),
    )
    for _, (rev, _pct) in order[:missing]:
        floors[rev] += 1
    return {rev: pct for rev, pct in floors.items() if pct > 0}


def _ready(revisions: Iterable[RevisionInfo]) -> dict[str, RevisionInfo]:
    return {r.name: r for r in revisions}


def choose_split(
    traffic: Sequence[TrafficEntry],
    *,
    under_test: Sequence[str],
    revisions: Sequence[RevisionInfo],
    previous: str | None,
) -> tuple[dict[str, int], str, tuple[str, ...]]:
    known = _ready(revisions)
    testing = ", ".join(under_test)
    if previous:
        info = known.get(previous)
        if info is None:
            raise PlanError(f"--previous-revision {previous} is not a revision of the service")
        if previous in under_test:
            raise PlanError(f"--previous-revision {previous} is the revision under test")
        if not info.ready:
            raise PlanError(f"--previous-revision {previous} is not Ready ({info.reason}): traffic cannot go there")
        return {previous: 100}, f"--previous-revision {previous}", ()
    others = {rev: pct for rev, pct in serving(traffic).items() if rev not in under_test}
    skipped = tuple(rev for rev in others if not (rev in known and known[rev].ready))
    others = {rev: pct for rev, pct in others.items() if rev not in skipped}
    if others:
        return scale_to_100(others), f"the pre-run split without {testing}, scaled to 100 %", skipped
    tested = [known[name].create_time for name in under_test if name in known]
    oldest = min(tested) if tested else float("inf")
    for info in revisions_newest_first(revisions):
        if info.name in under_test or info.create_time >= oldest:
            continue
        if info.ready:
            return {info.name: 100}, f"the newest Ready revision created before {testing}", skipped
        skipped += (info.name,)
    passed = f" (not Ready: {', '.join(skipped)})" if skipped else ""
    raise PlanError(
        f"no Ready revision older than {testing} to give the traffic to{passed}: "
        "name one with --previous-revision"
    )


def revisions_newest_first(revisions: Iterable[RevisionInfo]) -> list[RevisionInfo]:
    return sorted(revisions, key=lambda r: r.create_time, reverse=True)


def baseline_of(
    traffic: Sequence[TrafficEntry],
    *,
    under_test: Sequence[str],
    revisions: Sequence[RevisionInfo],
    previous: str | None = None,
) -> str | None:
    """The previous revision (the baseline): the one that would get the most traffic back; None if none."""
    try:
        split, _, _ = choose_split(traffic, under_test=under_test, revisions=revisions, previous=previous)
    except PlanError:
        return None
    return max(split.items(), key=lambda item: item[1])[0]


def plan_rollback(
    traffic: Sequence[TrafficEntry],
    *,
    under_test: Sequence[str],
    revisions: Sequence[RevisionInfo],
    previous: str | None = None,
) -> Plan:
    """The traffic that takes every percent away from ``under_test``; raises :class:`PlanError`."""
    if not any(e.percent > 0 and e.revision in under_test for e in traffic):
        raise NothingToShift(
            f"{', '.join(under_test)} serves no traffic ({describe_traffic(traffic)}): nothing to shift"
        )
    split, rule, skipped = choose_split(traffic, under_test=under_test, revisions=revisions, previous=previous)
    left = dict(split)
    planned: list[TrafficEntry] = []
    for entry in traffic:
        percent = left.pop(entry.revision, 0) if entry.percent > 0 else 0
        if percent == 0 and not entry.tag:
            continue
        planned.append(TrafficEntry(revision=entry.revision, percent=percent, tag=entry.tag, type=REVISION))
    untagged = [TrafficEntry(revision=rev, percent=pct, type=REVISION) for rev, pct in left.items()]
    return Plan(traffic=tuple(untagged + planned), split=split, rule=rule, skipped=skipped)

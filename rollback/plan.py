"""The traffic to restore when the revision under test fails: pure functions.

Which revision(s) get the traffic, in order:

1. ``--previous-revision NAME``: it gets 100 %;
2. otherwise the split that served users when the run started, without the
   revision(s) under test (and without any revision that is not Ready), scaled
   back to 100 % by the largest-remainder rule (:func:`scale_to_100`);
3. otherwise (the revision under test had all the traffic) the revisions that
   last held traffic before it, as revgate last wrote the split
   (``revgate.dev/last-serving``), else the newest Ready revision created
   before it.

A revision known to be bad (listed in ``revgate.dev/failed-revisions``, see
:mod:`rollback.marks`) is never a target: it is skipped like a revision that
is not Ready, and the plan says so; when nothing good is left, PlanError.

The planned traffic pins every revision (type REVISION, never LATEST) and keeps
every tagged entry: a tag is a traffic entry, and dropping it deletes its URL.
A tagged entry that carried traffic keeps its tag with its new percent (0 % for
the revision under test). Untagged entries left at 0 % are dropped.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from revgate.errors import RevgateError

from .marks import FAILED_KEY, LAST_SERVING_KEY
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
    skipped_failed: tuple[str, ...] = ()
    """Revisions passed over because they are known to be bad (``revgate.dev/failed-revisions``)."""

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
    failed: Collection[str] = (),
    last_serving: Mapping[str, int] | None = None,
) -> tuple[dict[str, int], str, tuple[str, ...], tuple[str, ...]]:
    """``(split, rule, skipped as not Ready, skipped as known bad)``; raises PlanError."""
    known = _ready(revisions)
    testing = ", ".join(under_test)
    bad = set(failed)
    if previous:
        info = known.get(previous)
        if info is None:
            raise PlanError(f"--previous-revision {previous} is not a revision of the service")
        if previous in under_test:
            raise PlanError(f"--previous-revision {previous} is the revision under test")
        if not info.ready:
            raise PlanError(f"--previous-revision {previous} is not Ready ({info.reason}): traffic cannot go there")
        if previous in bad:
            raise PlanError(
                f"--previous-revision {previous} is marked failed ({FAILED_KEY} on the service): "
                "traffic cannot go there; remove it from the annotation if it is good"
            )
        return {previous: 100}, f"--previous-revision {previous}", (), ()
    others = {rev: pct for rev, pct in serving(traffic).items() if rev not in under_test}
    skipped = tuple(rev for rev in others if not (rev in known and known[rev].ready))
    skipped_bad = tuple(rev for rev in others if rev not in skipped and rev in bad)
    others = {rev: pct for rev, pct in others.items() if rev not in skipped and rev not in skipped_bad}
    if others:
        return scale_to_100(others), f"the pre-run split without {testing}, scaled to 100 %", skipped, skipped_bad

    def usable(name: str) -> bool:
        nonlocal skipped, skipped_bad
        if name in under_test:
            return False
        info = known.get(name)
        if info is None or not info.ready:
            skipped += () if name in skipped else (name,)
            return False
        if name in bad:
            skipped_bad += () if name in skipped_bad else (name,)
            return False
        return True

    last = {rev: pct for rev, pct in (last_serving or {}).items() if usable(rev)}
    if last:
        return scale_to_100(last), f"the revisions that last held traffic before {testing} ({LAST_SERVING_KEY})", skipped, skipped_bad
    tested = [known[name].create_time for name in under_test if name in known]
    oldest = min(tested) if tested else float("inf")
    for info in revisions_newest_first(revisions):
        if info.create_time >= oldest:
            continue
        if usable(info.name):
            return {info.name: 100}, f"the newest Ready revision created before {testing}", skipped, skipped_bad
    passed = []
    if skipped:
        passed.append(f"not Ready: {', '.join(skipped)}")
    if skipped_bad:
        passed.append(f"marked failed in {FAILED_KEY}: {', '.join(skipped_bad)}")
    why = f" ({'; '.join(passed)})" if passed else ""
    raise PlanError(
        f"no good revision older than {testing} to give the traffic to{why}: "
        "name a good one with --previous-revision, or deploy one"
    )


def revisions_newest_first(revisions: Iterable[RevisionInfo]) -> list[RevisionInfo]:
    return sorted(revisions, key=lambda r: r.create_time, reverse=True)


def baseline_of(
    traffic: Sequence[TrafficEntry],
    *,
    under_test: Sequence[str],
    revisions: Sequence[RevisionInfo],
    previous: str | None = None,
    failed: Collection[str] = (),
    last_serving: Mapping[str, int] | None = None,
) -> str | None:
    """The previous revision (the baseline): the one that would get the most traffic back; None if none."""
    try:
        split, _, _, _ = choose_split(
            traffic, under_test=under_test, revisions=revisions, previous=previous, failed=failed, last_serving=last_serving
        )
    except PlanError:
        return None
    return max(split.items(), key=lambda item: item[1])[0]


def plan_rollback(
    traffic: Sequence[TrafficEntry],
    *,
    under_test: Sequence[str],
    revisions: Sequence[RevisionInfo],
    previous: str | None = None,
    failed: Collection[str] = (),
    last_serving: Mapping[str, int] | None = None,
) -> Plan:
    """The traffic that takes every percent away from ``under_test``; raises :class:`PlanError`."""
    if not any(e.percent > 0 and e.revision in under_test for e in traffic):
        raise NothingToShift(
            f"{', '.join(under_test)} serves no traffic ({describe_traffic(traffic)}): nothing to shift"
        )
    split, rule, skipped, skipped_bad = choose_split(
        traffic, under_test=under_test, revisions=revisions, previous=previous, failed=failed, last_serving=last_serving
    )
    left = dict(split)
    planned: list[TrafficEntry] = []
    for entry in traffic:
        percent = left.pop(entry.revision, 0) if entry.percent > 0 else 0
        if percent == 0 and not entry.tag:
            continue
        planned.append(TrafficEntry(revision=entry.revision, percent=percent, tag=entry.tag, type=REVISION))
    untagged = [TrafficEntry(revision=rev, percent=pct, type=REVISION) for rev, pct in left.items()]
    return Plan(traffic=tuple(untagged + planned), split=split, rule=rule, skipped=skipped, skipped_failed=skipped_bad)

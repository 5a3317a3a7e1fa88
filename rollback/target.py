"""The rollback target: what a rollback of this run would restore, known before any check.

Computed at session start from the snapshot (the same rules as the rollback's
plan, :func:`rollback.plan.choose_split`): the Ready revisions, not marked
failed, that would get the traffic back, and their shares. The report header
names it, the JSON records carry it, and ``[rollback] require_target = true``
makes "nothing to roll back to" a gating failure (``test_rollback_target``)
before any promotion.

Cloud Run keeps a service's revisions (at most 1000; beyond that the oldest are
deleted automatically) and lets a revision that serves no traffic be deleted
by hand (cloud.google.com/run/docs/managing/revisions): a team that prunes
revisions, or a revision that stopped being Ready, can leave a service with
nothing to go back to. A first deploy (no revision but the one under test)
has nothing to go back to by nature: the requirement does not apply.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .plan import PlanError, choose_split
from .traffic import RevisionInfo, TrafficEntry

__all__ = ["RollbackTarget", "older_ready", "rollback_target"]


@dataclass(frozen=True, kw_only=True)
class RollbackTarget:
    """``split`` is empty when there is no target; ``problem`` then says why."""

    split: dict[str, int] = field(default_factory=dict)
    rule: str = ""
    problem: str = ""
    first_deploy: bool = False
    """No revision of the service but the one(s) under test: nothing to go back to, by nature."""
    skipped_not_ready: tuple[str, ...] = ()
    skipped_failed: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.split)

    def describe(self) -> str:
        """One line for the report header."""
        if self.found:
            shares = ", ".join(f"{rev} {pct} %" for rev, pct in self.split.items())
            passed = ""
            if self.skipped_not_ready:
                passed += f"; passed over, not Ready: {', '.join(self.skipped_not_ready)}"
            if self.skipped_failed:
                passed += f"; passed over, known bad: {', '.join(self.skipped_failed)}"
            return f"{shares} (Ready; {self.rule}{passed})"
        if self.first_deploy:
            return "none: a first deploy (no older revision; not applicable)"
        return f"none: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "ready": self.found,  # a target is always a Ready revision: choose_split passes over the others
            "split": dict(self.split),
            "revisions": list(self.split),
            "rule": self.rule or None,
            "problem": self.problem or None,
            "first_deploy": self.first_deploy,
            "skipped_not_ready": list(self.skipped_not_ready),
            "skipped_failed": list(self.skipped_failed),
        }


def rollback_target(
    traffic: Sequence[TrafficEntry],
    *,
    under_test: Sequence[str],
    revisions: Sequence[RevisionInfo],
    previous: str | None = None,
    failed: Collection[str] = (),
    last_serving: Mapping[str, int] | None = None,
) -> RollbackTarget:
    """What a rollback would restore now (never raises)."""
    others = [r for r in revisions if r.name not in under_test]
    if not others and not previous:
        return RollbackTarget(first_deploy=True, problem="a first deploy: no revision but the one under test")
    try:
        split, rule, skipped, skipped_bad = choose_split(
            traffic, under_test=under_test, revisions=revisions, previous=previous, failed=failed, last_serving=last_serving
        )
    except PlanError as exc:
        return RollbackTarget(problem=str(exc))
    return RollbackTarget(split=split, rule=rule, skipped_not_ready=skipped, skipped_failed=skipped_bad)


def older_ready(revisions: Sequence[RevisionInfo], *, revision: str, failed: Collection[str] = ()) -> list[str]:
    """Ready revisions created before ``revision``, not marked failed, newest first."""
    by_name = {r.name: r for r in revisions}
    created = by_name[revision].create_time if revision in by_name else float("inf")
    older = [r for r in revisions if r.name != revision and r.create_time < created and r.ready and r.name not in failed]
    return [r.name for r in sorted(older, key=lambda r: r.create_time, reverse=True)]

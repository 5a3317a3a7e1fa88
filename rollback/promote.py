"""``--promote PERCENT``: give the revision under test PERCENT of the traffic when every gating check passed.

At session finish, in the controller, a run whose verdict is PASS sets the
revision under test to PERCENT and the pre-run split (without it, Ready
revisions only, as the rollback plans it: :func:`rollback.plan.choose_split`)
scaled to the rest, by the same largest-remainder rule
(:func:`rollback.plan.scale_to_100`). ``--promote 10`` then ``--promote 100``
is a canary rollout; a run with a gating failure never promotes.

The same safety as the rollback, with its code (:func:`rollback.apply.send_plan`):
the revision under test must be Ready; every tag is kept; revisions are pinned
(never LATEST); the request carries the etag read at session start; on an etag
conflict the service is re-read and the promotion re-planned from what it
serves now, at most :data:`rollback.apply.MAX_ATTEMPTS` times; after the
operation the service is re-read until ``traffic_statuses`` match the plan.
``--rollback dry-run`` makes the promotion a dry run too (``validate_only``).

The record (``config.stash[promotion_key]``, in the JSON report) holds the
percent, the status (``done``, ``validated``, ``not-promoted``, ``failed``), a
one-line message, the traffic before, planned and after, the etag, the
attempts and the errors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from revgate.errors import RevgateError

from .marks import FAILED_KEY, with_marks
from .plan import Plan, PlanError, choose_split, scale_to_100
from .target import older_ready
from .traffic import REVISION, RevisionInfo, TrafficEntry, describe_traffic

__all__ = ["ENV", "Promotion", "add_options", "plan_promotion", "promote", "promotion_key"]

ENV = "REVGATE_PROMOTE"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate rollback")
    group.addoption(
        "--promote",
        default=None,
        metavar="PERCENT",
        help=f"When every gating check passed, give the revision under test PERCENT (1-100) of the traffic, "
        f"the pre-run split the rest. Env: {ENV}.",
    )


def parse_percent(raw: str, source: str) -> int:
    try:
        value = int(str(raw).strip().rstrip("%"))
    except ValueError:
        raise RevgateError(f"{source} {raw!r} is not a whole percent (1-100)") from None
    if not 1 <= value <= 100:
        raise RevgateError(f"{source} {raw!r}: give a percent between 1 and 100")
    return value


def plan_promotion(
    traffic: Sequence[TrafficEntry],
    *,
    revision: str,
    revisions: Sequence[RevisionInfo],
    percent: int,
    failed: Sequence[str] = (),
    keep_target: bool = True,
) -> Plan:
    """``revision`` at ``percent``, the rest of the split scaled to ``100 - percent``; raises PlanError.

    A revision marked failed (``revgate.dev/failed-revisions``) is never promoted, and never keeps a share.
    ``keep_target``: 100 % is refused when no Ready older revision (not marked failed) would be left to roll
    back to, unless the service has no other revision at all."""
    info = {r.name: r for r in revisions}.get(revision)
    if info is None or not info.ready:
        why = info.reason if info else "not a revision of the service"
        raise PlanError(f"{revision} is not Ready ({why}): traffic cannot go there")
    if revision in failed:
        raise PlanError(
            f"{revision} is marked failed ({FAILED_KEY} on the service): it is never promoted; "
            "remove it from the annotation if it is good"
        )
    skipped: tuple[str, ...] = ()
    skipped_bad: tuple[str, ...] = ()
    if percent == 100 and keep_target:
        others = [r.name for r in revisions if r.name != revision]
        if others and not older_ready(revisions, revision=revision, failed=failed):
            raise PlanError(no_target_left(revision, revisions, failed))
    if percent == 100:
        split, rule = {revision: 100}, f"{revision} gets all the traffic"
    else:
        rest, how, skipped, skipped_bad = choose_split(
            traffic, under_test=[revision], revisions=revisions, previous=None, failed=failed
        )
        # scale_to_100 over weights whose total is 10000: the revision keeps exactly `percent`,
        # the others share 100 - percent by the largest remainder
        weights = {rev: pct * (100 - percent) for rev, pct in rest.items()}
        weights[revision] = percent * 100
        split = scale_to_100(weights)
        rule = f"{revision} at {percent} %, the rest: {how}"
    left = dict(split)
    planned: list[TrafficEntry] = []
    for entry in traffic:
        share = left.pop(entry.revision, 0)
        if share == 0 and not entry.tag:
            continue
        planned.append(TrafficEntry(revision=entry.revision, percent=share, tag=entry.tag, type=REVISION))
    untagged = [TrafficEntry(revision=rev, percent=pct, type=REVISION) for rev, pct in left.items()]
    return Plan(traffic=tuple(untagged + planned), split=split, rule=rule, skipped=skipped, skipped_failed=skipped_bad)


def no_target_left(revision: str, revisions: Sequence[RevisionInfo], failed: Sequence[str]) -> str:
    """Why ``--promote 100`` is refused: every other revision is newer, not Ready or marked failed."""
    created = {r.name: r.create_time for r in revisions}.get(revision, float("inf"))
    why = []
    for r in revisions:
        if r.name == revision:
            continue
        if r.create_time >= created:
            why.append(f"{r.name} is newer")
        elif not r.ready:
            why.append(f"{r.name} is not Ready")
        elif r.name in failed:
            why.append(f"{r.name} is marked failed")
    return (
        f"{revision} at 100 % would leave no Ready older revision to roll back to ({'; '.join(why)}): "
        "deploy a good revision first, or set [rollback] promote_without_target = true in the checklist"
    )


@dataclass(kw_only=True)
class Promotion:
    percent: int
    status: str = "not-promoted"
    message: str = ""
    traffic_before: tuple[TrafficEntry, ...] = ()
    plan: Plan | None = None
    traffic_after: tuple[TrafficEntry, ...] = ()
    etag: str = ""
    attempts: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "status": self.status,
            "message": self.message,
            "summary": self.message,
            "traffic": {
                "before": [e.to_dict() for e in self.traffic_before],
                "planned": [e.to_dict() for e in self.plan.traffic] if self.plan else None,
                "planned_split": self.plan.split if self.plan else None,
                "rule": self.plan.rule if self.plan else None,
                "skipped_failed": list(self.plan.skipped_failed) if self.plan else [],
                "after": [e.to_dict() for e in self.traffic_after] if self.traffic_after else None,
            },
            "etag": self.etag,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "errors": self.errors,
        }


promotion_key = pytest.StashKey[Promotion]()


def promote(
    deployment: Any,
    service: Any,
    *,
    percent: int,
    services: Any,
    revisions_api: Any,
    dry_run: bool,
    keep_target: bool = True,
    annotations: dict[str, str] | None = None,
) -> Promotion:
    """Plan from the snapshot ``service`` and send it; never raises for what Cloud Run answers.

    ``annotations``: more annotations written with the traffic (a rollout's state, :mod:`rollback.rollout`)."""
    from . import apply

    (revision,) = deployment.revisions_under_test
    start = time.monotonic()
    outcome = apply.send_plan(
        deployment,
        planner=lambda traffic, revisions, marks: plan_promotion(
            traffic, revision=revision, revisions=revisions, percent=percent, failed=marks.failed, keep_target=keep_target
        ),
        annotate=lambda read, plan: {**with_marks(read, last_serving=plan.split), **(annotations or {})},
        services=services,
        revisions_api=revisions_api,
        dry_run=dry_run,
    )
    result = Promotion(
        percent=percent,
        status=outcome.status,
        message=outcome.message,
        traffic_before=deployment.traffic_before,
        plan=outcome.plan,
        traffic_after=outcome.traffic_after,
        etag=outcome.etag,
        attempts=outcome.attempts,
        seconds=time.monotonic() - start,
        errors=outcome.errors,
    )
    if outcome.status == apply.DONE:
        result.message = f"promoted {revision} to {percent} %: {describe_traffic(outcome.traffic_after)}"
    elif outcome.status == apply.VALIDATED:
        result.message = (
            f"dry-run: Cloud Run accepted promoting {revision} to {percent} % ({outcome.plan.describe()}); nothing changed"
        )
    elif outcome.done_at is None:  # failed before the update operation completed
        result.message = f"not promoted: {outcome.message}"
    return result


class PromotePlugin:
    def __init__(self, config: pytest.Config, percent: int) -> None:
        self.config = config
        self.percent = percent

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from .deployment import deployment_key

        deployment = self.config.stash.get(deployment_key, None)
        if deployment is None:
            raise pytest.UsageError(f"--promote {self.percent} needs --service (or CLOUD_RUN_SERVICE)")
        if len(deployment.revisions_under_test) != 1:
            raise pytest.UsageError(
                f"--promote {self.percent}: {len(deployment.revisions_under_test)} revisions are under test "
                f"({', '.join(deployment.revisions_under_test)}): give the tag URL of one revision, or --revision NAME"
            )

    def _keep_target(self) -> bool:
        from revgate.settings import settings_key

        settings = self.config.stash.get(settings_key, None)
        section = settings.checklist.rollback if settings is not None else None
        return not (section is not None and section.promote_without_target)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from .deployment import deployment_key

        deployment = config.stash.get(deployment_key, None)
        if deployment is None or len(deployment.revisions_under_test) != 1:
            return []
        (revision,) = deployment.revisions_under_test
        line = f"revgate promote: {self.percent} % to {revision} if every gating check passes"
        if self.percent == 100 and self._keep_target():
            others = [r for r in deployment.revisions if r.name != revision]
            if others and not older_ready(deployment.revisions, revision=revision, failed=deployment.failed_marked):
                line += f" (it will be refused: {no_target_left(revision, deployment.revisions, deployment.failed_marked)})"
        return [line]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from revgate.google_clients import revisions_client, services_client
        from revgate.results import results_key

        from .deployment import deployment_key, service_snapshot_key

        deployment = self.config.stash.get(deployment_key, None)
        results = self.config.stash.get(results_key, None)
        if deployment is None or results is None:
            return
        if results.verdict != "PASS":
            record = Promotion(percent=self.percent, traffic_before=deployment.traffic_before)
            record.message = f"not promoted to {self.percent} %: the verdict is {results.verdict}"
        else:
            record = promote(
                deployment,
                self.config.stash[service_snapshot_key],
                percent=self.percent,
                services=services_client(),
                revisions_api=revisions_client(),
                dry_run=deployment.mode == "dry-run",
                keep_target=self._keep_target(),
            )
            if record.status == "failed":
                session.exitstatus = pytest.ExitCode.TESTS_FAILED  # CI must not go on to the next step
            if record.plan is not None and record.status == "done":
                # the traffic is now this gate's own: never "changed during the run, not by this gate"
                from .plugin import runner_key

                runner = self.config.stash.get(runner_key, None)
                if runner is not None:
                    runner.gate_split = dict(record.plan.split)
        self.config.stash[promotion_key] = record


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    raw = config.getoption("promote", None) or os.environ.get(ENV)
    if not raw:
        return
    try:
        percent = parse_percent(raw, "--promote" if config.getoption("promote", None) else ENV)
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(PromotePlugin(config, percent), "revgate-promote")

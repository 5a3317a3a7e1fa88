"""``--rollout 10,50,100 --soak 10m``: the gate stretched over time, from a tagged revision to 100 %.

The runbook's "route 10 %, watch errors and latency for 10-15 minutes, then 100 %; if KO, roll back
at once", as one command:

1. the whole checklist runs once against the revision as it is (usually 0 % behind its tag), as a
   plain gate does; its ``[metrics]`` checks wait for the steps, where the revision has traffic to
   judge;
2. for each step, the revision gets that percent through the promotion's path
   (:func:`rollback.promote.promote`: a fresh read, ``update_mask`` traffic (and annotations), every
   tag kept, pinned revisions, never a revision marked failed), and a soak watches it
   (:mod:`revgate.soak`): the request checks every probe interval, the metrics over the step's
   window at each new sample, the logs, the pages once at the start;
3. the first gating failure takes the rollback's path at once (the same runner, fail-fast, exactly
   once, marks and notification) back to the split from before the rollout;
4. missing evidence extends a soak up to its ``max_soak``; then the traffic is held where it is and
   the verdict is NOT VERIFIED (exit 6), with the two ``gcloud`` commands to go on or back by hand;
5. someone else's deploy or traffic change stops the rollout: nothing is touched, NOT VERIFIED;
6. SIGTERM or SIGINT holds the traffic where it is (exit 2). The rollout's state lives in the
   service annotation :data:`STATE_KEY`, written with each promotion, so rerunning the same command
   (or ``--resume``) continues from the step the service is at.

Each step is one check of the run (``rollout::step[1-10%]``): it passes, fails (the rollback
follows) or is NOT VERIFIED, in the terminal, JUnit and the JSON report, whose ``rollout`` record
holds every step's percent, times, probes, samples, requests seen and verdict.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from revgate.durations import describe_duration, parse_duration
from revgate.errors import ConfigError, RevgateError

__all__ = ["STATE_KEY", "RolloutPlan", "RolloutRecord", "StepRecord", "add_options", "resolve_rollout", "rollout_key"]

STATE_KEY = "revgate.dev/rollout"
"""The service annotation holding a rollout in progress: revision, steps and the current step (JSON)."""
ENV = {
    "rollout": "REVGATE_ROLLOUT",
    "soak": "REVGATE_SOAK",
    "probe_interval": "REVGATE_PROBE_INTERVAL",
    "max_soak": "REVGATE_MAX_SOAK",
}
DEFAULT_SOAK = "10m"
DEFAULT_PROBE_INTERVAL = "10s"
EXTENSION = 300.0
"""Seconds a soak may be extended past its end by default while evidence is missing (``--max-soak``):
room for one Cloud Monitoring sample (60 s) and its visibility delay (up to 180 s)."""
MIN_PROBE_INTERVAL = 1.0
MAX_STEPS = 20


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate rollout", "revgate rollout (steps and soaks)")
    group.addoption(
        "--rollout",
        default=None,
        metavar="STEPS",
        help="After the checklist passes, give the revision these percents in turn, watching it through each soak: "
        f"10,50,100. Needs --service. Env: {ENV['rollout']}; checklist: [rollout] steps.",
    )
    group.addoption(
        "--soak",
        default=None,
        metavar="DURATION",
        help=f"How long each step is watched: 10m, or one per step (5m,10m,5m). Env: {ENV['soak']}; default {DEFAULT_SOAK}.",
    )
    group.addoption(
        "--probe-interval",
        default=None,
        metavar="DURATION",
        help="How often the request checks run during a soak (at least 1s). "
        f"Env: {ENV['probe_interval']}; default {DEFAULT_PROBE_INTERVAL}.",
    )
    group.addoption(
        "--max-soak",
        default=None,
        metavar="DURATION",
        help="How long a step may last while evidence (Cloud Monitoring samples, logs) is missing; then the "
        f"traffic is held and the verdict is NOT VERIFIED. Env: {ENV['max_soak']}; default: the soak plus 5m.",
    )
    group.addoption(
        "--resume",
        action="store_true",
        default=None,
        help="Continue the rollout recorded on the service (rerunning the same command does too); "
        "refused when there is none for this revision and these steps.",
    )


@dataclass(frozen=True, kw_only=True)
class RolloutPlan:
    steps: tuple[int, ...]
    soaks: tuple[float, ...]
    max_soaks: tuple[float, ...]
    probe_interval: float

    def describe(self) -> str:
        path = " -> ".join(f"{p} %" for p in self.steps)
        if len(set(self.soaks)) == 1:
            soak = f"soak {describe_duration(self.soaks[0])} each (at most {describe_duration(self.max_soaks[0])})"
        else:
            soak = "soaks " + ", ".join(describe_duration(s) for s in self.soaks)
        return f"{path}, {soak}, probes every {describe_duration(self.probe_interval)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "soak_s": list(self.soaks),
            "max_soak_s": list(self.max_soaks),
            "probe_interval_s": self.probe_interval,
        }


def _first(*values: Any) -> tuple[Any, str]:
    for value, where in values:
        if value is not None and value != "":
            return value, where
    return None, ""


def _per_step(raw: Any, where: str, n: int, what: str, *, minimum: float) -> list[float]:
    items = raw if isinstance(raw, list) else [s for s in str(raw).split(",")]
    items = [s.strip() if isinstance(s, str) else s for s in items]
    try:
        values = [parse_duration(s, what=f"{where}", minimum=minimum) for s in items]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ConfigError(f"{where} gives {len(values)} {what}s for {n} steps: give one for every step, or one for all")
    return values


def parse_steps(raw: Any, where: str) -> tuple[int, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    steps: list[int] = []
    for item in items:
        text = str(item).strip().rstrip("%").strip()
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise ConfigError(f"{where} {raw!r}: each step is a whole percent from 1 to 100, as in 10,50,100")
        steps.append(int(text))
    if not steps or len(steps) > MAX_STEPS:
        raise ConfigError(f"{where} {raw!r}: give 1 to {MAX_STEPS} steps, as in 10,50,100")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ConfigError(f"{where} {raw!r}: the percents must increase, as in 10,50,100")
    return tuple(steps)


def resolve_rollout(config: pytest.Config, checklist: Any) -> RolloutPlan | None:
    """The rollout asked for (command line > environment > checklist ``[rollout]``), or None."""
    section = getattr(checklist, "rollout", None)
    env = os.environ
    raw_steps, where = _first(
        (config.getoption("rollout", None), "--rollout"),
        (env.get(ENV["rollout"]), ENV["rollout"]),
        (section.steps if section is not None else None, "[rollout] steps"),
    )
    if config.getoption("rollout", None) == "":  # an empty environment variable is unset (a CI input not given)
        raise ConfigError("--rollout is empty: give the percents of the steps, as in 10,50,100, or leave it out")
    if raw_steps is None:
        for option, name in (("soak", "--soak"), ("probe_interval", "--probe-interval"), ("max_soak", "--max-soak")):
            if config.getoption(option, None) is not None:
                raise ConfigError(f"{name} is for a rollout: give --rollout STEPS (or [rollout] steps) too")
        if config.getoption("resume", None):
            raise ConfigError("--resume continues a rollout: give the same --rollout STEPS (or [rollout] steps) as the run it continues")
        return None
    steps = parse_steps(raw_steps, where)
    n = len(steps)
    soak_raw, soak_where = _first(
        (config.getoption("soak", None), "--soak"),
        (env.get(ENV["soak"]), ENV["soak"]),
        (section.soak if section is not None else None, "[rollout] soak"),
        (DEFAULT_SOAK, "the default soak"),
    )
    soaks = _per_step(soak_raw, soak_where, n, "soak", minimum=0)
    interval_raw, interval_where = _first(
        (config.getoption("probe_interval", None), "--probe-interval"),
        (env.get(ENV["probe_interval"]), ENV["probe_interval"]),
        (section.probe_interval if section is not None else None, "[rollout] probe_interval"),
        (DEFAULT_PROBE_INTERVAL, "the default probe interval"),
    )
    try:
        interval = parse_duration(interval_raw, what=interval_where, minimum=MIN_PROBE_INTERVAL, maximum=3600)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    max_raw, max_where = _first(
        (config.getoption("max_soak", None), "--max-soak"),
        (env.get(ENV["max_soak"]), ENV["max_soak"]),
        (section.max_soak if section is not None else None, "[rollout] max_soak"),
    )
    max_soaks = [s + EXTENSION for s in soaks] if max_raw is None else _per_step(max_raw, max_where, n, "max soak", minimum=0)
    for i, (soak, longest) in enumerate(zip(soaks, max_soaks)):
        if longest < soak:
            raise ConfigError(
                f"{max_where or '--max-soak'} {describe_duration(longest)} is shorter than the soak of step {i + 1} "
                f"({describe_duration(soak)}): give at least the soak"
            )
    return RolloutPlan(steps=steps, soaks=tuple(soaks), max_soaks=tuple(max_soaks), probe_interval=interval)


# -- the record --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class StepRecord:
    index: int
    percent: int
    started: float = 0.0
    ended: float | None = None
    soak_s: float = 0.0
    probes: int = 0
    probes_failed: int = 0
    samples_judged: int = 0
    pages_run: int = 0
    logs_readings: int = 0
    requests_seen: int | None = None
    """Requests of the revision at this step in Cloud Monitoring, the gate's own taken out (None without [metrics])."""
    error_rate: float | None = None
    verdict: str = "running"
    """``PASS``, ``FAIL``, ``NOT VERIFIED``, ``INTERRUPTED``, ``STOPPED`` (someone else changed the service)."""
    message: str = ""
    promotion: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.index + 1,
            "percent": self.percent,
            "started": self.started,
            "ended": self.ended,
            "seconds": round((self.ended or time.time()) - self.started, 3) if self.started else 0.0,
            "soak_s": self.soak_s,
            "probes": self.probes,
            "probes_failed": self.probes_failed,
            "samples_judged": self.samples_judged,
            "pages_run": self.pages_run,
            "logs_readings": self.logs_readings,
            "requests_seen": self.requests_seen,
            "error_rate": self.error_rate,
            "verdict": self.verdict,
            "message": self.message,
            "promotion": self.promotion,
        }


@dataclass(kw_only=True)
class RolloutRecord:
    plan: RolloutPlan
    revision: str
    start_index: int = 0
    resumed: bool = False
    status: str = "not-started"
    """``not-started`` (the checklist did not pass), ``running``, ``completed``, ``rolled-back``,
    ``held`` (NOT VERIFIED: traffic left where it is), ``stopped`` (someone else changed the service),
    ``interrupted`` (a signal: traffic held)."""
    message: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    state_cleared: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "revision": self.revision,
            "resumed_at_step": self.start_index + 1 if self.resumed else None,
            "status": self.status,
            "summary": self.message,
            "message": self.message,
            "step_records": [s.to_dict() for s in self.steps],
            "state_annotation_cleared": self.state_cleared,
        }


rollout_key = pytest.StashKey[RolloutRecord]()


# -- the state on the service ------------------------------------------------------------------------


def read_state(annotations: Any) -> dict[str, Any] | None:
    raw = dict(annotations or {}).get(STATE_KEY)
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def state_text(revision: str, steps: tuple[int, ...], index: int) -> str:
    return json.dumps({"revision": revision, "steps": list(steps), "step": index, "since": int(time.time())},
                      separators=(",", ":"))


def start_index(plan: RolloutPlan, revision: str, current: int, state: dict[str, Any] | None) -> tuple[int, bool, bool]:
    """``(index of the first step to run, resumed from the recorded state, that step's percent is already served)``."""
    if state and state.get("revision") == revision and tuple(state.get("steps") or ()) == plan.steps:
        index = state.get("step")
        if isinstance(index, int) and 0 <= index < len(plan.steps) and plan.steps[index] == current:
            return index, True, True
    for i, percent in enumerate(plan.steps):
        if percent >= current:
            return i, False, percent == current
    return len(plan.steps) - 1, False, False


# -- the plugin --------------------------------------------------------------------------------------


class RolloutPlugin:
    """Registered in the controller; active when a rollout is asked for (:func:`resolve_rollout`)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.record: RolloutRecord | None = None
        self.already_at_first = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from revgate.settings import settings_key

        from .deployment import deployment_key, service_snapshot_key
        from .traffic import serving

        settings = self.config.stash.get(settings_key, None)
        if settings is None:
            return
        try:
            plan = resolve_rollout(self.config, settings.checklist)
        except RevgateError as exc:
            raise pytest.UsageError(str(exc)) from None
        if plan is None:
            return
        deployment = self.config.stash.get(deployment_key, None)
        if deployment is None:
            raise pytest.UsageError("--rollout moves traffic: give --service, --region and --project (or CLOUD_RUN_SERVICE ...)")
        if len(deployment.revisions_under_test) != 1:
            raise pytest.UsageError(
                f"--rollout: {len(deployment.revisions_under_test)} revisions are under test "
                f"({', '.join(deployment.revisions_under_test)}): give the tag URL of one revision, or --revision NAME"
            )
        if deployment.mode != "on-failure":
            raise pytest.UsageError(
                f"--rollout with --rollback {deployment.mode}: a rollout gives the revision traffic, so a failure must "
                "take it back; use --rollback on-failure (the default), or gate without --rollout"
            )
        if self.config.getoption("promote", None) or os.environ.get("REVGATE_PROMOTE"):
            raise pytest.UsageError("--rollout and --promote both move traffic: give the steps to --rollout alone (10,50,100)")
        if getattr(self.config.option, "numprocesses", None) or getattr(self.config.option, "dist", "no") != "no":
            raise pytest.UsageError("--rollout watches the revision from one process: drop -n/--dist")
        (revision,) = deployment.revisions_under_test
        snapshot = self.config.stash.get(service_snapshot_key, None)
        state = read_state(getattr(snapshot, "annotations", None))
        current = serving(deployment.traffic_before).get(revision, 0)
        index, resumed, already = start_index(plan, revision, current, state)
        if self.config.getoption("resume", None) and not resumed:
            seen = f"it records {json.dumps(state)}" if state else f"it has no {STATE_KEY} annotation"
            raise pytest.UsageError(
                f"--resume: no rollout of {revision} with steps {','.join(map(str, plan.steps))} at "
                f"{current} % to continue on {deployment.service} ({seen}); run without --resume to start one"
            )
        self.record = RolloutRecord(plan=plan, revision=revision, start_index=index, resumed=resumed)
        self.already_at_first = already
        self.config.stash[rollout_key] = self.record
        settings.extra["rollout"] = self.header()
        if settings.checklist.metrics is not None:
            settings.extra["rollout"] += "; [metrics] judged at each step, over the step's window"

    def header(self) -> str:
        assert self.record is not None
        text = f"{self.record.revision} {self.record.plan.describe()}"
        if self.record.resumed:
            step = self.record.start_index
            text += f" (resuming at step {step + 1}: {self.record.plan.steps[step]} %)"
        elif self.record.start_index:
            text += f" (starting at step {self.record.start_index + 1}: the revision already has traffic)"
        return text

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        option = self.config.option
        if self.record is None or option.collectonly or getattr(option, "setuponly", False) or getattr(option, "setupplan", False):
            return (yield)
        from revgate.soak import is_metric_item

        deferred = [item for item in session.items if is_metric_item(item)]
        items = list(session.items)
        session.items = [item for item in items if not is_metric_item(item)]
        # the progress counts the steps (one check each) instead of the metric checks they judge
        session.testscollected += len(self.record.plan.steps) - self.record.start_index - len(deferred)
        result = yield
        session.items = items
        from revgate.soak import Rollout

        Rollout(session=session, record=self.record, deferred=deferred, already_at_first=self.already_at_first).run()
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        record = self.record
        if record is None:
            return
        terminalreporter.section("revgate rollout", bold=True)
        terminalreporter.line(f"rollout ({record.status}): {record.message or record.plan.describe()}")
        for step in record.steps:
            requests = f", {step.requests_seen} requests seen" if step.requests_seen is not None else ""
            seconds = round((step.ended or time.time()) - step.started) if step.started else 0
            terminalreporter.line(
                f"  step {step.index + 1} ({step.percent} %): {step.verdict} after {seconds} s, "
                f"{step.probes} probes ({step.probes_failed} failed), {step.samples_judged} samples judged{requests}"
                + (f": {step.message}" if step.message and step.verdict != "PASS" else "")
            )


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    config.pluginmanager.register(RolloutPlugin(config), "revgate-rollout")

"""The run's results as the reports see them: one :class:`Check` per test, the
:class:`RunResults` of the run in ``config.stash[results_key]``, and the
deployment the rollback plugin resolved (:func:`deployment_of`).

A data module: the reports (:mod:`revgate.report`), the published metrics
(:mod:`revgate.publish`) and the notifications (:mod:`revgate.notify`) read
or fill it, and it imports none of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from .errors import NOT_VERIFIED_EXIT

__all__ = [
    "NOT_VERIFIED_PROPERTY",
    "Check",
    "RunResults",
    "deployment_of",
    "is_gating_failure",
    "is_not_verified",
    "notifications_key",
    "results_key",
]

NOT_VERIFIED_PROPERTY = ("revgate", "not-verified")
"""The user property of a check the gate could not verify (it travels with xdist workers' reports)."""


def is_gating_failure(report: pytest.TestReport) -> bool:
    """A failed or errored test that is not advisory (skips, and so NOT VERIFIED checks, never count)."""
    return report.failed and "advisory" not in report.keywords


def is_not_verified(report: pytest.TestReport) -> bool:
    return report.skipped and NOT_VERIFIED_PROPERTY in [tuple(p) for p in report.user_properties]


@dataclass(kw_only=True)
class Check:
    """One check (test) as the reports show it."""

    id: str
    name: str
    gating: bool
    outcome: str = "passed"
    """``passed``, ``failed`` (the check said no), ``error`` (setup/teardown broke), ``skipped``, or
    ``not-verified`` (the gate could not check: no data, an API or browser it cannot use, its own crash)."""
    duration: float = 0.0
    message: str = ""
    retries: int = 0
    first_failure: str = ""
    """The message of the first failed attempt, when the check was retried."""

    @property
    def bad(self) -> bool:
        return self.outcome in ("failed", "error")

    def summary(self) -> str:
        """The one-line text the reports show next to the outcome."""
        if self.outcome == "passed" and self.retries:
            text = f"passed after {self.retries} {'retry' if self.retries == 1 else 'retries'}"
            return f"{text} (first attempt: {self.first_failure})" if self.first_failure else text
        if self.bad and self.retries:
            return f"{self.message} (failed {self.retries + 1} attempts)"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "gating": self.gating,
            "outcome": self.outcome,
            "duration_s": round(self.duration, 3),
            "retries": self.retries,
            "message": self.summary(),
        }


@dataclass(kw_only=True)
class RunResults:
    checks: dict[str, Check] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    exitstatus: int | None = None

    @property
    def gating_failures(self) -> list[Check]:
        return [c for c in self.checks.values() if c.bad and c.gating]

    @property
    def not_verified(self) -> list[Check]:
        """Gating checks the gate could not verify."""
        return [c for c in self.checks.values() if c.outcome == "not-verified" and c.gating]

    @property
    def advisory_failures(self) -> list[Check]:
        return [c for c in self.checks.values() if c.bad and not c.gating]

    @property
    def retried_passes(self) -> list[Check]:
        return [c for c in self.checks.values() if c.outcome == "passed" and c.retries]

    @property
    def verdict(self) -> str:
        """``FAIL`` when a gating check failed; ``NOT VERIFIED`` when a gating check could not be
        verified, every check was skipped or none ran; ``INTERRUPTED`` when the run was stopped
        first; ``PASS`` when checks ran and none failed; ``ERROR`` otherwise."""
        if self.gating_failures:
            return "FAIL"
        if self.exitstatus == pytest.ExitCode.INTERRUPTED:
            return "INTERRUPTED"
        if self.exitstatus == pytest.ExitCode.USAGE_ERROR:
            return "ERROR"
        if self.not_verified or self.exitstatus == NOT_VERIFIED_EXIT:
            return "NOT VERIFIED"
        if not self.checks and self.exitstatus in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
            return "NOT VERIFIED"
        if self.checks and all(c.outcome in ("skipped", "not-verified") for c in self.checks.values()):
            return "NOT VERIFIED"
        if not self.checks or self.exitstatus in (
            pytest.ExitCode.INTERRUPTED,
            pytest.ExitCode.INTERNAL_ERROR,
            pytest.ExitCode.USAGE_ERROR,
        ):
            return "ERROR"
        if self.exitstatus == pytest.ExitCode.TESTS_FAILED and not self.advisory_failures:
            return "ERROR"  # the checks passed, and the gate still failed (a refused promotion): never PASS
        if self.exitstatus not in (None, pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return "ERROR"
        return "PASS"

    def counts(self) -> str:
        values = list(self.checks.values())
        parts = [f"{len(values)} checks"]
        for label, n in (
            ("passed", sum(c.outcome == "passed" for c in values)),
            ("failed", len(self.gating_failures)),
            ("advisory failed", len(self.advisory_failures)),
            ("not verified", sum(c.outcome == "not-verified" for c in values)),
            ("skipped", sum(c.outcome == "skipped" for c in values)),
            ("passed after retry", len(self.retried_passes)),
        ):
            if n:
                parts.append(f"{n} {label}")
        return ", ".join(parts)


results_key = pytest.StashKey[RunResults]()
notifications_key = pytest.StashKey[list[dict[str, Any]]]()
"""What :mod:`revgate.notify` sent, one entry per message and webhook; the JSON report's ``notifications``
(absent when no webhook was configured)."""


def deployment_of(config: pytest.Config) -> Any:
    try:
        from revgate.rollback.deployment import deployment_key
    except ImportError:  # pragma: no cover - the rollback package ships with revgate
        return None
    return config.stash.get(deployment_key, None)

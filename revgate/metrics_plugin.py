"""The metric checks' pytest plugin: options resolved once, progress shown, NOT VERIFIED listed.

- The ``revgate metrics`` options are resolved once, on the controller, at
  session start (a bad value is a usage error, one line) and sent to xdist
  workers through ``workerinput``; the report header shows them.
- :func:`progress_writer` writes the wait's progress to the terminal even
  under pytest's output capture, one line at a time (rewritten in place on a
  terminal).
- :func:`settle` turns a :class:`~revgate.metrics_judge.Verdict` into
  the test's outcome; "no data" is a failure or a NOT VERIFIED skip
  (:class:`~revgate.errors.NotVerified`: the run's verdict is NOT VERIFIED
  unless a gating check failed) per ``--metrics-no-data`` and, either way,
  listed as NOT VERIFIED in the
  terminal summary; a comparison that does not apply (no previous revision)
  is always a skip, listed the same way.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from .errors import NotVerified, RevgateError
from .judge import fail
from .metrics import MetricsOptions, Progress, resolve_metrics_options
from .metrics_judge import Verdict
from .settings import settings_key

__all__ = ["NOT_VERIFIED", "deployment_of", "metrics_options_of", "progress_writer", "settle"]

NOT_VERIFIED = "not verified"
WORKERINPUT_KEY = "revgate_metrics_options"
_options_key = pytest.StashKey[MetricsOptions | None]()
_not_verified_key = pytest.StashKey[list[tuple[str, str]]]()
_PROPERTY = ("revgate_metrics", NOT_VERIFIED)


def metrics_options_of(config: pytest.Config) -> MetricsOptions | None:
    return config.stash.get(_options_key, None)


def deployment_of(config: pytest.Config) -> Any:
    """The deployment the rollback plugin resolved (service, revisions under test, previous revision), or None."""
    try:
        from revgate.rollback.deployment import deployment_key
    except ImportError:
        return None
    return config.stash.get(deployment_key, None)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_not_verified_key] = []
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and WORKERINPUT_KEY in workerinput:
        data = workerinput[WORKERINPUT_KEY]
        config.stash[_options_key] = MetricsOptions.from_dict(data) if data else None
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "revgate-metrics-xdist")
    if workerinput is None:
        config.pluginmanager.register(_NotVerified(config), "revgate-metrics-not-verified")


def pytest_sessionstart(session: pytest.Session) -> None:
    # Runs after the suite plugin resolved the settings (tryfirst) and before
    # pytest-xdist starts its workers (trylast).
    config = session.config
    if hasattr(config, "workerinput"):
        return
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return
    try:
        options = resolve_metrics_options(config, settings.checklist)
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_options_key] = options
    if options is not None and settings.checklist.metrics is not None:
        settings.extra["metrics"] = options.describe(settings.checklist.metrics)


class _XdistHooks:
    """Registered only when pytest-xdist is active."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        options = metrics_options_of(node.config)
        node.workerinput[WORKERINPUT_KEY] = options.to_dict() if options else None


def progress_writer(config: pytest.Config) -> Progress:
    """``write(line, final)``: one progress line at a time, visible under capture; a no-op on xdist workers."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or hasattr(config, "workerinput"):
        return lambda line, final: None
    state = {"started": False}

    def write(line: str, final: bool) -> None:
        disabled = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        with disabled:
            if not state["started"]:
                reporter.ensure_newline()
                state["started"] = True
            if reporter.isatty:
                reporter.rewrite(line, erase=True)
                if final:
                    reporter.line("")
            else:
                reporter.line(line)
            if final:
                state["started"] = False

    return write


def settle(verdict: Verdict, *, item: pytest.Item, options: MetricsOptions) -> None:
    """Pass, fail with the verdict's message, or handle "no data" per ``--metrics-no-data``.

    A check that does not apply (``skip``: a baseline comparison without any previous revision) is skipped
    as not verified whatever ``--metrics-no-data`` says; it is listed as NOT VERIFIED too.
    """
    if verdict.outcome == "pass":
        return
    if verdict.outcome == "fail":
        fail(verdict.message)
    item.user_properties.append(_PROPERTY)
    message = verdict.message
    if verdict.outcome == "skip":  # does not apply (a first deploy): a plain skip, it does not make the run NOT VERIFIED
        pytest.skip(f"{NOT_VERIFIED}: {message}")
    if options.no_data == "skip":  # the gate could not check: the run's verdict is NOT VERIFIED unless a check failed
        raise NotVerified(message)
    fail(f"NOT VERIFIED (--metrics-no-data fail): {message}")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""


class _NotVerified:
    """Controller-side record of the metric checks that could not be verified (registered in pytest_configure)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        reason = ""
        if _PROPERTY in [tuple(p) for p in report.user_properties]:
            if report.when != "call":
                return
            text = report.longreprtext.splitlines()[0] if report.longreprtext else ""
            reason = text
            if report.skipped:  # a plain skip says "not verified: ..."; a NotVerified "NOT VERIFIED: ..."
                reason = _skip_reason(report).removeprefix("revgate.errors.NotVerified: ").removeprefix("NOT VERIFIED: ")
                reason = reason if reason.lower().startswith(NOT_VERIFIED) else f"{NOT_VERIFIED}: {reason}"
        elif report.skipped and _skip_reason(report).startswith(NOT_VERIFIED):
            reason = _skip_reason(report)
        if reason:
            self.config.stash[_not_verified_key].append((report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        entries = self.config.stash.get(_not_verified_key, [])
        if not entries:
            return
        terminalreporter.section("revgate: metrics NOT VERIFIED", yellow=True)
        for nodeid, reason in entries:
            terminalreporter.line(f"NOT VERIFIED {nodeid}: {reason}")

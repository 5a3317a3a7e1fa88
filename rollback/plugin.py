"""The rollback pytest plugin.

- At session start, in the controller, after the suite's settings are resolved
  (:mod:`revgate.plugin` resolves them in a ``tryfirst`` hook; this one
  is a plain hook, so it runs after it and before the terminal reporter's
  ``trylast`` hook prints the report header), the deployment is resolved
  (:func:`rollback.deployment.resolve_deployment`) and stored in
  ``config.stash[deployment_key]``. xdist workers receive it through
  ``workerinput``.
- The first failed or errored gating test reported to the controller starts
  the rollback in a background thread (:class:`rollback.runner.RollbackRunner`);
  the run goes on. The thread is joined at session finish, before the terminal
  summary reports what was done.
"""

from __future__ import annotations

from typing import Any

import pytest

from revgate.errors import RevgateError
from revgate.results import is_gating_failure
from revgate.settings import settings_key

from .deployment import AdminApiUnavailable, Deployment, deployment_key, resolve_deployment, resolve_mode, service_snapshot_key
from .runner import RollbackRunner

__all__ = ["deployment_of", "runner_key"]

WORKERINPUT_KEY = "revgate_deployment"
runner_key = pytest.StashKey[RollbackRunner]()


def deployment_of(config: pytest.Config) -> Deployment | None:
    return config.stash.get(deployment_key, None)


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        data = workerinput.get(WORKERINPUT_KEY)
        config.stash[deployment_key] = Deployment.from_workerinput(data) if data else None
        return
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "revgate-rollback-xdist")


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    settings = config.stash[settings_key]
    try:
        deployment, service = resolve_deployment(config, revision_url=settings.revision_url)
        if deployment is None:
            resolve_mode(config, service_known=False)
    except AdminApiUnavailable as exc:  # not bad input: the gate could not check (exit 6, one line)
        from revgate.errors import NOT_VERIFIED_EXIT

        pytest.exit(f"NOT VERIFIED: {exc}; nothing was checked and the traffic is unchanged", returncode=NOT_VERIFIED_EXIT)
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[deployment_key] = deployment
    config.stash[service_snapshot_key] = service
    if deployment is not None:
        runner = RollbackRunner(deployment=deployment, service=service)
        config.stash[runner_key] = runner
        config.pluginmanager.register(RollbackPlugin(runner), "revgate-rollback")


class _XdistHooks:
    """Registered only when pytest-xdist is active (its hooks are unknown otherwise)."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        deployment = deployment_of(node.config)
        node.workerinput[WORKERINPUT_KEY] = deployment.to_workerinput() if deployment else None


def pytest_report_header(config: pytest.Config) -> list[str]:
    if deployment_key not in config.stash:
        return []
    deployment = deployment_of(config)
    if deployment is None:
        return ["revgate rollback: off (no --service given: the checks run, nothing rolls back)"]
    return deployment.header()



def _reason(report: pytest.TestReport) -> str:
    """The failure in one line: the crash message, else the first line of the report."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else report.outcome
    return line if len(line) <= 300 else line[:297] + "..."


class RollbackPlugin:
    """Registered in the controller when a service is known: fail-fast trigger, finish, summary."""

    def __init__(self, runner: RollbackRunner) -> None:
        self.runner = runner

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Every report reaches the controller here, xdist workers' included (replayed)."""
        if is_gating_failure(report):
            self.runner.trigger(report.nodeid, _reason(report))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from revgate.interrupts import interrupt_grace, interrupted_by

        interrupted = interrupted_by(session.config)
        if interrupted:
            if not self.runner.triggered:  # the signal may have come while the failure was being reported
                reporter = session.config.pluginmanager.get_plugin("terminalreporter")
                stats = reporter.stats if reporter is not None else {}
                for report in stats.get("failed", []) + stats.get("error", []):
                    if isinstance(report, pytest.TestReport) and is_gating_failure(report):
                        self.runner.trigger(report.nodeid, _reason(report))
                        break
            self.runner.finish(interrupt_grace(), interrupted=interrupted)
        else:
            from revgate.interrupts import grace_left, wait_honouring_signals

            from .runner import JOIN_TIMEOUT

            # a signal while the rollback runs after the last check: the grace period, from the signal
            late = wait_honouring_signals(session.config, getattr(self.runner, "_thread", None), JOIN_TIMEOUT)
            if late:
                self.runner.finish(max(round(grace_left(session.config), 1), 0.1), interrupted=late)
            else:
                self.runner.finish()
        if self.runner.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        runner = self.runner
        failed = runner.failed
        terminalreporter.section("revgate rollback", red=failed, green=runner.status == "done", yellow=not failed)
        for line, markup in runner.summary():
            terminalreporter.line(line, **markup)

"""The suite's pytest plugin: options, settings, parametrization, verdict, redaction.

- Settings are resolved once, in the controller, at session start (a bad
  option or checklist is a usage error: exit 4, one line); xdist workers get
  them through ``workerinput``.
- Checklist sections parametrize the tests that ask for them
  (``api_check`` -> ``[[api]]`` ...), with the entry's ``id`` as test id and
  the ``advisory`` marker on advisory entries.
- Every report is scrubbed of secret values before anything prints it.
- Failures of advisory checks alone do not fail the run; a run whose every
  check was skipped fails (nothing was verified).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .errors import RevgateError
from .settings import Settings, resolve_settings, settings_key

__all__ = ["PARAMETRIZED", "settings_of", "is_gating_failure"]

PARAMETRIZED: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "health_check": ("health", lambda entry: True),
    "api_check": ("api", lambda entry: True),
    "api_auth_check": ("api", lambda entry: entry.auth),
    "ws_check": ("websocket", lambda entry: True),
    "latency_check": ("latency", lambda entry: True),
    "metric_limit": ("metric_limits", lambda entry: True),
    "baseline_limit": ("baseline_limits", lambda entry: True),
    "page_check": ("page", lambda entry: True),
}
"""Test argument -> (checklist section, which of its entries) that parametrize it."""

WORKERINPUT_KEY = "revgate_settings"
_advisory_failures_key = pytest.StashKey[list[str]]()
_nothing_verified_key = pytest.StashKey[bool]()


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[settings_key]


def is_gating_failure(report: pytest.TestReport) -> bool:
    """A failed or errored test that is not advisory (skips never count)."""
    return report.failed and "advisory" not in report.keywords


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Installed revgate registers its options early (entry point 'revgate');
    # an uninstalled checkout registers them here, from the conftest.
    if not pluginmanager.has_plugin("revgate"):
        from .options import add_all_options

        add_all_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "advisory: a failure is reported but does not fail the gate")
    config.stash[_advisory_failures_key] = []
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and WORKERINPUT_KEY in workerinput:
        config.stash[settings_key] = Settings.from_workerinput(workerinput[WORKERINPUT_KEY])
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "revgate-xdist")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    try:
        config.stash[settings_key] = resolve_settings(config)
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None


class _XdistHooks:
    """Registered only when pytest-xdist is active (its hooks are unknown otherwise)."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = settings_of(node.config).to_workerinput()


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return []
    token = f"*** (from {settings.token_source})" if settings.token else "none"
    lines = [
        f"revgate target: {settings.revision_url}",
        f"revgate checklist: {settings.checklist_path}, request timeout {settings.request_timeout:g} s",
        f"revgate auth: API token {token}, ID token {'***' if settings.id_token else 'no'}",
    ]
    lines += [f"revgate {key}: {value}" for key, value in settings.extra.items()]
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for argname, (section, wanted) in PARAMETRIZED.items():
        if argname not in metafunc.fixturenames:
            continue
        checklist = settings_of(metafunc.config).checklist
        entries = [entry for entry in checklist.entries(section) if wanted(entry)]
        params = [
            pytest.param(entry, id=entry.id, marks=[pytest.mark.advisory] if entry.advisory else [])
            for entry in entries
        ]
        metafunc.parametrize(argname, params)


def _from_absent_section(item: pytest.Item) -> bool:
    """A test parametrized by a checklist section that has no entries: pytest made it a skip
    ("got empty parameter set"); an absent section is not a check, so it is dropped."""
    return any(
        mark.name == "skip" and str(mark.kwargs.get("reason", "")).startswith("got empty parameter set")
        for mark in item.iter_markers()
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    """No test at all for a check whose checklist section is absent or empty (not even a skip)."""
    if not (collector.funcnamefilter(name) and callable(obj)):
        return None
    settings = collector.config.stash.get(settings_key, None)
    if settings is None:
        return None
    import inspect

    try:
        argnames = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return None
    for argname, (section, wanted) in PARAMETRIZED.items():
        if argname in argnames and not any(wanted(e) for e in settings.checklist.entries(section)):
            return []
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = [item for item in items if not _from_absent_section(item)]


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    settings = item.config.stash.get(settings_key, None)
    secrets = settings.secrets() if settings else []
    if secrets:
        if report.longrepr is not None:
            text = str(report.longrepr)
            if any(s in text for s in secrets):
                report.longrepr = _scrub(text, secrets)
        report.sections = [(title, _scrub(body, secrets)) for title, body in report.sections]
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and settings_key in session.config.stash:
        # no check at all (an empty checklist, a -k that matches nothing): a gate never exits 5
        session.config.stash[_nothing_verified_key] = True
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if exitstatus == pytest.ExitCode.OK and reporter.stats.get("skipped") and not reporter.stats.get("passed"):
        # every check skipped: nothing was verified, and a gate must not pass silently
        session.config.stash[_nothing_verified_key] = True
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if exitstatus != pytest.ExitCode.TESTS_FAILED:
        return
    failed = reporter.stats.get("failed", []) + reporter.stats.get("error", [])
    if failed and not any(is_gating_failure(r) for r in failed):
        session.config.stash[_advisory_failures_key] = [r.nodeid for r in failed]
        session.exitstatus = pytest.ExitCode.OK


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(_nothing_verified_key, False):
        terminalreporter.section("revgate: nothing verified", red=True)
        if terminalreporter.stats.get("skipped"):
            terminalreporter.line("every check was skipped: the gate fails rather than pass without evidence")
        else:
            terminalreporter.line("no check ran (the checklist, --sections or -k selected none): the gate fails rather than pass without evidence")
    advisory = config.stash.get(_advisory_failures_key, [])
    if advisory:
        terminalreporter.section("revgate: advisory failures (not gating)", yellow=True)
        for nodeid in advisory:
            terminalreporter.line(f"ADVISORY {nodeid}")

"""The suite's pytest plugin: options, settings, parametrization, verdict, redaction.

- Settings are resolved once, in the controller, at session start (a bad
  option or checklist is a usage error: exit 4, one line); xdist workers get
  them through ``workerinput``.
- Checklist sections parametrize the tests that ask for them
  (``api_check`` -> ``[[api]]`` ...), with the entry's ``id`` as test id and
  the ``advisory`` marker on advisory entries.
- Every report is scrubbed of secret values before anything prints it.
- Three verdicts. FAIL: a gating check found the revision wrong (only this
  rolls back). NOT VERIFIED: the gate could not check (a check raised
  :class:`~revgate.errors.NotVerified`: no metric data, an inconclusive
  baseline, logs not shown complete; or a check failed because Cloud Monitoring
  or Cloud Logging did not answer, or the browser could not be set up; or revgate's own code crashed, see
  :data:`CRASHES`; or its own HTTP client could not form a request, or pytest-timeout ended the check
  (the gate's own timing); or every check was skipped, or none ran):
  exit :data:`~revgate.errors.NOT_VERIFIED_EXIT`, no rollback, no promotion.
  PASS otherwise. Failures of advisory checks alone do not fail the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .errors import NOT_VERIFIED_EXIT, NotVerified, RevgateError
from .interrupts import Finishing, SignalExit, install_signal_handlers, interrupt_grace
from .results import NOT_VERIFIED_PROPERTY, is_gating_failure, is_not_verified
from .settings import Settings, resolve_settings, settings_key

__all__ = ["CRASHES", "PARAMETRIZED", "settings_of"]

CRASHES: tuple[type[BaseException], ...] = (
    TypeError,
    AttributeError,
    NameError,
    ImportError,
    NotImplementedError,
    RecursionError,
    SyntaxError,
    MemoryError,
)
"""Exceptions that are revgate's own bugs, never the revision's answer: the check is NOT VERIFIED."""

PARAMETRIZED: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "health_check": ("health", lambda entry: True),
    "api_check": ("api", lambda entry: True),
    "api_auth_check": ("api", lambda entry: entry.auth and entry.refuse_without_token),
    "ws_check": ("websocket", lambda entry: True),
    "latency_check": ("latency", lambda entry: True),
    "metric_limit": ("metric_limits", lambda entry: True),
    "baseline_limit": ("baseline_limits", lambda entry: True),
    "page_check": ("page", lambda entry: True),
    "logs_check": ("logs", lambda entry: True),
    "revision_key": ("revision_keys", lambda entry: True),
    "rollback_requirement": ("rollback", lambda entry: entry.require_target),
}
"""Test argument -> (checklist section, which of its entries) that parametrize it."""

WORKERINPUT_KEY = "revgate_settings"
_advisory_failures_key = pytest.StashKey[list[str]]()
_nothing_verified_key = pytest.StashKey[bool]()


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[settings_key]


def _causes(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and len(seen) < 5 and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _gate_could_not_check(excinfo: pytest.ExceptionInfo[BaseException], when: str) -> str | None:
    """Why a failure is the gate's, not the revision's: Cloud Monitoring unavailable (any phase), or a
    browser error while setting up a page check (before the revision's page is opened); else None."""
    causes = _causes(excinfo.value)
    names = {f"{type(c).__module__}.{type(c).__name__}" for c in causes}
    first = str(excinfo.value).splitlines()[0] if str(excinfo.value) else excinfo.typename
    first = first.removeprefix("Failed: ")
    if "revgate.metrics_query.MonitoringUnavailable" in names:
        return first
    if "revgate.logs_query.LoggingUnavailable" in names:
        return first
    if when == "setup" and any(type(c).__module__.startswith("playwright.") for c in causes):
        return f"the browser could not be used: {first}"
    if first.startswith("Timeout (>") and first.endswith("from pytest-timeout."):
        return f"the gate's own time limit ended the check ({first}): raise --timeout"
    own = _own_request_error(causes)
    if own is not None:
        return own
    return None


def _own_request_error(causes: list[BaseException]) -> str | None:
    """An exception of the gate's own HTTP client before anything was sent (a value it cannot encode, a
    request it cannot form): the revision was not asked, so it is not judged."""
    for cause in causes:
        name = f"{type(cause).__module__}.{type(cause).__name__}"
        if isinstance(cause, UnicodeError) or name in (
            "httpx.LocalProtocolError",
            "httpx.InvalidURL",
            "httpx.UnsupportedProtocol",
            "h11._util.LocalProtocolError",
            "httpcore.LocalProtocolError",
            "websockets.exceptions.InvalidURI",
        ):
            text = str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__
            return f"the gate could not send its request ({type(cause).__name__}: {text})"
    return None


def _marked_not_verified(report: pytest.TestReport) -> bool:
    """A revgate plugin marked the check as not verified (a user property ``(revgate..., "not verified")``)."""
    return any(
        len(p) == 2 and str(p[0]).startswith("revgate") and str(p[1]).lower().replace("-", " ") == "not verified"
        for p in report.user_properties
    )


def _skip_longrepr(item: pytest.Item, reason: str) -> tuple[str, int, str]:
    path, lineno, _ = item.reportinfo()
    return (str(path), (lineno or 0) + 1, f"Skipped: {reason}")


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
    if workerinput is None:
        config.pluginmanager.register(Finishing(), "revgate-finishing")
        config.pluginmanager.register(SignalExit(), "revgate-signal-exit")
        # before anything slow (the settings, the ID token, the Admin API at session start): a
        # signal from the first moment stops the gate the same way, with its reports
        install_signal_handlers(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    from . import start_checks

    try:
        start_checks.refuse_modes_that_run_nothing(config, collect_only=False)
        start_checks.refuse_disabled_plugins(config)
        start_checks.refuse_empty_options(config)
        settings = resolve_settings(config)
        config.stash[settings_key] = settings
        start_checks.check_pytest_timeout(config, settings)
        start_checks.check_output_paths(config, settings)
        interrupt_grace()
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None


_deselected_key = pytest.StashKey[int]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_deselected_key] = config.stash.get(_deselected_key, 0) + len(items)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """After collection (and its listing, with --collect-only), before any check: what needs the
    selected checks (:func:`revgate.start_checks.check_selected`). Not under xdist, whose controller
    collects nothing (its workers do)."""
    config = session.config
    if hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None) or settings_key not in config.stash:
        return
    from . import start_checks

    try:
        start_checks.refuse_modes_that_run_nothing(config, collect_only=True)
        start_checks.check_selected(session, deselected=config.stash.get(_deselected_key, 0))
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None


class _XdistHooks:
    """Registered only when pytest-xdist is active (its hooks are unknown otherwise)."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = settings_of(node.config).to_workerinput()

    @staticmethod
    def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
        """The controller collects nothing under xdist: the token rule (a check that needs the API token
        and none given is exit 4 before any check) is applied to the first worker's collected ids."""
        from . import start_checks

        try:
            start_checks.check_token_for_ids(node.config, ids)
        except RevgateError as exc:
            raise pytest.UsageError(str(exc)) from None


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
    excinfo = call.excinfo
    if excinfo is not None and excinfo.errisinstance(NotVerified):
        report.user_properties.append(NOT_VERIFIED_PROPERTY)
    elif report.failed and excinfo is not None and _gate_could_not_check(excinfo, report.when) is not None:
        # the failure came from a service the gate uses (Cloud Monitoring) or from the browser it
        # starts, before any page of the revision was opened: the revision was not judged
        reason = _gate_could_not_check(excinfo, report.when) or "not verified"
        report.outcome = "skipped"
        report.longrepr = _skip_longrepr(item, f"NOT VERIFIED: {reason}"[:400])
        report.user_properties.append(NOT_VERIFIED_PROPERTY)
    elif report.failed and _marked_not_verified(report):
        # a check that said "not verified" and then failed (e.g. no metric data under --metrics-no-data fail):
        # the gate could not check, the revision is not judged: never a rollback
        crash = getattr(report.longrepr, "reprcrash", None)
        text = (crash.message if crash is not None else str(report.longrepr)).splitlines()
        reason = (text[0] if text else "not verified").removeprefix("Failed: ")
        report.outcome = "skipped"
        report.longrepr = _skip_longrepr(item, reason if reason.upper().startswith("NOT VERIFIED") else f"NOT VERIFIED: {reason}")
        report.user_properties.append(NOT_VERIFIED_PROPERTY)
    elif excinfo is not None and report.failed and excinfo.errisinstance(CRASHES) and report.when in ("setup", "call"):
        # revgate's own bug: the revision was not judged; never a rollback
        first = str(excinfo.value).splitlines()[0] if str(excinfo.value) else ""
        where = excinfo.traceback[-1] if excinfo.traceback else None
        at = f" at {Path(str(where.path)).name}:{where.lineno + 1}" if where is not None else ""
        reason = f"NOT VERIFIED: revgate crashed: {excinfo.typename}: {first}{at}"[:300]
        report.outcome = "skipped"
        report.longrepr = _skip_longrepr(item, reason)
        report.user_properties.append(NOT_VERIFIED_PROPERTY)
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
        session.exitstatus = NOT_VERIFIED_EXIT
        return
    if exitstatus == pytest.ExitCode.OK and reporter.stats.get("skipped") and not reporter.stats.get("passed"):
        # every check skipped: nothing was verified, and a gate must not pass silently
        session.config.stash[_nothing_verified_key] = True
        session.exitstatus = NOT_VERIFIED_EXIT
        return
    if exitstatus == pytest.ExitCode.OK and any(
        is_not_verified(r) and "advisory" not in r.keywords for r in reporter.stats.get("skipped", [])
    ):
        session.exitstatus = NOT_VERIFIED_EXIT  # the gate could not check: neither PASS nor FAIL
        return
    if exitstatus != pytest.ExitCode.TESTS_FAILED:
        return
    failed = reporter.stats.get("failed", []) + reporter.stats.get("error", [])
    if failed and not any(is_gating_failure(r) for r in failed):
        session.config.stash[_advisory_failures_key] = [r.nodeid for r in failed]
        not_verified = any(is_not_verified(r) and "advisory" not in r.keywords for r in reporter.stats.get("skipped", []))
        session.exitstatus = NOT_VERIFIED_EXIT if not_verified else pytest.ExitCode.OK


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    ready = config.stash.get(readiness_key, None)
    if ready is not None and ready["attempts"] > 1:
        if ready["ready"]:
            text = f"ready after {ready['attempts']} attempts, {ready['seconds']:g} s"
        else:
            text = f"still answering {ready['status']} after {ready['seconds']:g} s: the checks judged it as it was"
        terminalreporter.line(f"revgate readiness ([health] budget {ready['budget']:g} s, once before every check): {text}")
    if config.stash.get(_nothing_verified_key, False):
        terminalreporter.section("revgate: nothing verified", red=True)
        if terminalreporter.stats.get("skipped"):
            terminalreporter.line("every check was skipped: the gate does not pass without evidence (NOT VERIFIED)")
        else:
            terminalreporter.line("no check ran (the checklist, --sections or -k selected none): the gate does not pass without evidence (NOT VERIFIED)")
    advisory = config.stash.get(_advisory_failures_key, [])
    if advisory:
        terminalreporter.section("revgate: advisory failures (not gating)", yellow=True)
        for nodeid in advisory:
            terminalreporter.line(f"ADVISORY {nodeid}")


readiness_key = pytest.StashKey[dict[str, Any]]()
"""How the session's readiness wait ended: ``{ready, attempts, seconds, status}``."""


@pytest.fixture(scope="session", autouse=True)
def revgate_readiness(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """Readiness once, before every check: the ``[health]`` readiness budget is spent here, at the
    start of the session, retrying the answers in ``retry_statuses`` (429, 502, 503, 504 by
    default), so that no API, page or WebSocket check judges a revision that is still starting
    (Cloud Run's default TCP startup probe marks a revision Ready before its app answers).
    A revision still not ready when the budget is spent is judged as it is: its checks fail."""
    config = request.config
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return None
    if readiness_key in config.stash:
        return config.stash[readiness_key]
    entries = settings.checklist.entries("health")
    if not entries:
        return None
    check = entries[0]
    target = request.getfixturevalue("target")
    import time

    from . import own_requests

    started = time.monotonic()
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        probe = target.request("GET", check.path, auth=bool(check.auth and target.has_token), check=check)
        own_requests.record("readiness", probe.status)  # left out of the metric checks
        spent = time.monotonic() - started
        if probe.status not in check.retry_statuses or spent + delay > check.ready_budget:
            break
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    result = {
        "ready": probe.status not in check.retry_statuses,
        "attempts": attempts,
        "seconds": round(time.monotonic() - started, 3),
        "status": probe.status,
        "budget": check.ready_budget,
    }
    config.stash[readiness_key] = result
    return result


def readiness_of(config: pytest.Config) -> dict[str, Any] | None:
    """The session's readiness wait (None before it ran, or without a ``[health]`` section)."""
    return config.stash.get(readiness_key, None)

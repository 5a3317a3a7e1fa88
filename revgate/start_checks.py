"""What is checked at start, before any check runs: the gate's own input that would make checks fail.

The rule: anything that would make checks fail because of the gate's own input, requests or timing
is a usage error (exit 4, one line naming what and what to do) before any check, or NOT VERIFIED;
never a FAIL, and never a traffic change. The checklist's own values are checked where they are
parsed (:mod:`revgate.checklist`), the options in :func:`revgate.settings.resolve_settings`; this
module holds what needs the whole command line or the collected checks:

- :func:`refuse_modes_that_run_nothing`: ``--collect-only``, ``--setup-only``, ``--setup-plan``,
  ``--fixtures`` and ``--fixtures-per-test`` give no verdict, and their exit 0 would read as PASS;
- :func:`refuse_empty_options`: ``--promote ""`` and every other revgate option given empty;
- :func:`check_pytest_timeout`: pytest-timeout's ``--timeout`` below what one check may take;
- :func:`check_output_paths`: report paths distinct from each other and from every input, writable;
- :func:`check_selected`: a ``-k``/``-m`` that selects no check; a check that needs the API token
  when none (or an empty one) was given; page selectors the browser's engine cannot parse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .errors import ConfigError

__all__ = [
    "TIMEOUT_FLOOR",
    "check_output_paths",
    "check_pytest_timeout",
    "check_selected",
    "refuse_empty_options",
    "refuse_modes_that_run_nothing",
]

TIMEOUT_FLOOR = 30.0
"""Seconds: the least pytest-timeout's ``--timeout`` may give a check (a readiness wait, a page load
and a request each take seconds; a timeout that ends a healthy check is the gate's own setting)."""

_MODES = (
    ("collectonly", "--collect-only"),
    ("setupplan", "--setup-plan"),  # before --setup-only, which pytest also sets for it
    ("setuponly", "--setup-only"),
    ("showfixtures", "--fixtures"),
    ("show_fixtures_per_test", "--fixtures-per-test"),
)


def _revgate_options(config: pytest.Config) -> list[Any]:
    parser = getattr(config, "_parser", None)
    options: list[Any] = []
    for group in getattr(parser, "_groups", []):
        if str(getattr(group, "name", "")).startswith("revgate"):
            options += list(getattr(group, "options", []))
    return options


def refuse_modes_that_run_nothing(config: pytest.Config, *, collect_only: bool) -> None:
    """A pytest mode that runs no check gives no verdict: exit 4 with one line, never 0 (a CI step
    reads 0 as PASS). ``collect_only``: the check for ``--collect-only`` (made after the listing,
    so that it still shows what would run); the other modes are refused before anything runs."""
    for dest, flag in _MODES:
        if (dest == "collectonly") != collect_only:
            continue
        if getattr(config.option, dest, False):
            raise ConfigError(
                f"{flag} runs no check, so the gate gives no verdict (exit 4, never 0, which would read as PASS): "
                f"run without {flag} to check the revision"
            )


def refuse_disabled_plugins(config: pytest.Config) -> None:
    """``-p no:revgate`` (or any of revgate's plugins): the gate would run without its verdict, its
    rollback or its reports, and say nothing of it. ``--maxfail`` below 0: pytest would stop at the
    first failure while the user asked for no limit (0 is pytest's "no limit")."""
    blocked = sorted(
        name for name in getattr(config.pluginmanager, "_name2plugin", {})
        if name.startswith("revgate") and config.pluginmanager.is_blocked(name)
    )
    if blocked:
        raise ConfigError(
            f"-p no:{blocked[0]} disables revgate's own plugin: the gate cannot give a verdict without it; leave it out"
        )
    maxfail = getattr(config.option, "maxfail", 0)
    if isinstance(maxfail, int) and maxfail < 0:
        raise ConfigError(f"--maxfail {maxfail}: give 0 (no limit, the default) or a number of failures to stop after")


def refuse_empty_options(config: pytest.Config) -> None:
    """A revgate option given as an empty value (``--promote ""``, ``--service=``): a CI variable
    that expanded to nothing; the gate never reads it as "not given"."""
    for option in _revgate_options(config):
        dest = getattr(option, "dest", None)
        if not dest:
            continue
        value = config.getoption(dest, None)
        empty = value == "" or (isinstance(value, list) and any(v == "" for v in value))
        if isinstance(value, str) and value and not value.strip():
            empty = True
        if empty:
            name = max(option.names(), key=len)
            raise ConfigError(
                f"{name} is empty (a CI variable that expanded to nothing?): give a value, or leave {name} out"
            )


def _timeout_settings(config: pytest.Config) -> tuple[float, str]:
    timeout = getattr(config, "_env_timeout", None)
    method = getattr(config, "_env_timeout_method", None) or "signal"
    return (float(timeout) if timeout else 0.0), str(method)


def check_pytest_timeout(config: pytest.Config, settings: Any) -> None:
    """pytest-timeout's ``--timeout`` (or ini ``timeout``, or ``PYTEST_TIMEOUT``) ends a check from the
    outside: below what a healthy check takes, it fails the revision for the gate's own setting."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    timeout, method = _timeout_settings(config)
    if timeout <= 0:
        return
    checklist = settings.checklist
    health = checklist.health
    floor = max(
        TIMEOUT_FLOOR,
        3 * settings.request_timeout,
        (health.ready_budget if health else 0) + settings.request_timeout,
        *(ws.timeout * (len(ws.exchanges()) + 1) for ws in checklist.websocket),
        *(2 * (page.timeout or settings.request_timeout) for page in checklist.page),
    )
    if timeout < floor:
        raise ConfigError(
            f"pytest-timeout's --timeout {timeout:g} s is shorter than a healthy check may take "
            f"(at least {floor:g} s here: the [health] readiness budget, the request, WebSocket and page timeouts): "
            f"give --timeout {floor:g} or more, or 0 for none"
        )
    if method == "thread":
        raise ConfigError(
            "pytest-timeout's thread method ends the whole gate at the first timeout (no rollback, no report): "
            "use --timeout-method signal, or no --timeout"
        )


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _outputs(config: pytest.Config) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for flag, dest, env in (
        ("--report-json", "report_json", "REVGATE_REPORT_JSON"),
        ("--rollback-report", "rollback_report", "REVGATE_ROLLBACK_REPORT"),
    ):
        value = config.getoption(dest, None)
        if value:
            found.append((flag, Path(value)))
        elif os.environ.get(env):
            found.append((env, Path(os.environ[env])))
    junit = getattr(config.option, "xmlpath", None)
    if junit:
        found.append(("--junitxml", Path(os.path.expanduser(os.path.expandvars(junit)))))
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        found.append(("GITHUB_STEP_SUMMARY", Path(os.environ["GITHUB_STEP_SUMMARY"])))
    return found


def _inputs(config: pytest.Config, settings: Any) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = [("the checklist", Path(settings.checklist_path))]
    token_file = config.getoption("auth_token_file", None)
    if token_file:
        found.append(("--auth-token-file", Path(token_file)))
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        found.append(("GOOGLE_APPLICATION_CREDENTIALS", Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])))
    if config.inipath is not None:
        found.append(("the pytest configuration", Path(config.inipath)))
    return found


def check_output_paths(config: pytest.Config, settings: Any) -> None:
    """Every report path names its own file: not another report's, not an input's (the checklist,
    the token file, the credentials, pytest's ini), and it can be written (checked now, not at the end)."""
    from .settings import check_report_path

    outputs = _outputs(config)
    for index, (flag, path) in enumerate(outputs):
        if flag != "GITHUB_STEP_SUMMARY":  # appended to, as GitHub gives it
            check_report_path(str(path), flag)
        for other_flag, other in outputs[:index]:
            if _same(path, other):
                raise ConfigError(
                    f"{flag} {path} is also {other_flag}: each report needs a file of its own (one would replace the other)"
                )
        for what, source in _inputs(config, settings):
            if _same(path, source):
                raise ConfigError(
                    f"{flag} {path} is {what}: a report would replace it; write the report to another file"
                )


def _needs_token(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return False
    for argname, value in callspec.params.items():
        if argname == "api_auth_check":  # the refusal probes send no token, or a wrong one
            continue
        if getattr(value, "auth", False) is True and hasattr(value, "auth_header"):
            return True
    return False


def check_selected(session: pytest.Session, *, deselected: int) -> None:
    """After collection, before any check: what the selection makes of the input."""
    config = session.config
    from .settings import settings_key

    settings = config.stash.get(settings_key, None)
    if settings is None:
        return
    items = session.items
    if not items and deselected:
        chosen = " and ".join(
            f"{flag} {value!r}" for flag, value in (("-k", config.option.keyword), ("-m", config.option.markexpr)) if value
        ) or "the selection"
        raise ConfigError(
            f"{chosen} selects none of the {deselected} checks: nothing would be verified; "
            "fix the expression (--collect-only lists the checks' ids) or leave it out"
        )
    if settings.token is None:
        needing = [item.name for item in items if _needs_token(item)]
        if needing:
            _refuse_missing_token(settings, needing)
    selectors = sorted({s for item in items for s in _selectors_of(item)})
    if selectors:
        from .selector_check import unusable_selector

        problem = unusable_selector(config, selectors)
        if problem:
            raise ConfigError(problem)


def _selectors_of(item: pytest.Item) -> list[str]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return []
    page = callspec.params.get("page_check")
    return [*(getattr(page, "selectors", []) or []), *(getattr(page, "absent", []) or [])]  # absent: selectors too


_SECTION_OF_TEST = {"test_api": "api", "test_health": "health", "test_websocket": "websocket", "test_latency": "latency", "test_page": "page"}
"""The suite's tests whose checklist entry may need the API token, by function name."""


def check_token_for_ids(config: pytest.Config, ids: list[str]) -> None:
    """The token rule of :func:`check_selected` on collected test ids (``path::test_api[ID]``), for
    pytest-xdist's controller, which has ids and no items."""
    from .settings import settings_key

    settings = config.stash.get(settings_key, None)
    if settings is None or settings.token is not None:
        return
    needing = []
    for nodeid in ids:
        name, _, param = nodeid.rsplit("::", 1)[-1].partition("[")
        section = _SECTION_OF_TEST.get(name)
        if section is None:
            continue
        param = param.rstrip("]")
        for entry in settings.checklist.entries(section):
            if getattr(entry, "auth", False) is True and (param == entry.id or param.startswith(f"{entry.id}-")):
                needing.append(nodeid.rsplit("::", 1)[-1])
                break
    if needing:
        _refuse_missing_token(settings, needing)


def _refuse_missing_token(settings: Any, needing: list[str]) -> None:
    if settings.token_source == "empty":
        why = "REVGATE_AUTH_TOKEN is set but empty (a CI secret's name misspelled?)"
    else:
        why = "none was given"
    more = f" (and {len(needing) - 1} more)" if len(needing) > 1 else ""
    raise ConfigError(
        f"{needing[0]}{more} needs the API token (auth = true), and {why}: set REVGATE_AUTH_TOKEN "
        "or pass --auth-token-file FILE, or leave those checks out (--sections, -k)"
    )

"""revgate's command-line options, registered through the ``pytest11`` entry point.

Only the options live here, with the two rules that decide what a run collects,
so that installing revgate changes nothing in other pytest runs; the suite's
behaviour comes from :mod:`revgate.plugin`, which the suite's ``conftest.py``
loads.

- ``pytest --revision-url URL`` outside the suite, with no test path, is the
  ``revgate`` command: the process becomes ``python -m revgate ARGS`` (same
  PID, same exit code), which runs the installed suite and never the tests of
  the current directory. A ``pytest`` without ``--revision-url`` is left alone.
- ``pytest PATHS --revision-url URL`` outside the suite is refused (exit 4, one
  line): the URL would be ignored and a broken revision left unchecked; the
  team's own tests run against a revision with ``--checks DIR``.
- ``--sections smoke,frontend`` runs only those folders of the suite (the
  team's ``--checks`` folders always run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from . import metrics, notify, publish, report, retries, settings, team_checks
from .suite import SECTIONS, suite_dir

__all__ = ["add_all_options"]


def add_all_options(parser: pytest.Parser) -> None:
    """Every revgate option group: the suite's, then each plugin's."""
    from revgate.rollback import options as rollback_options
    from revgate.rollback import promote

    settings.add_options(parser)
    parser.getgroup("revgate").addoption(
        "--sections",
        default=None,
        metavar="LIST",
        help=f"Run only these sections of the suite, comma-separated: {', '.join(SECTIONS)} (default: all).",
    )
    rollback_options.add_options(parser)
    report.add_options(parser)
    reports_group = parser.getgroup("revgate reports")
    retries.add_options(reports_group, parser)
    publish.add_options(reports_group, parser)
    promote.add_options(parser)
    from revgate.rollback import rollout

    rollout.add_options(parser)
    metrics.add_metrics_options(parser)
    from . import logs

    logs.add_logs_options(parser)
    notify.add_options(parser)
    team_checks.add_options(parser)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_all_options(parser)


def _in_suite(config: pytest.Config) -> bool:
    return config.inipath is not None and config.inipath.resolve() == (suite_dir() / "pytest.ini").resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("revision_url") or _in_suite(config):
        return None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        # the user's own test paths with a revision URL: pytest would run them and ignore the URL
        shown = " ".join(config.args[:3]) + (" ..." if len(config.args) > 3 else "")
        raise pytest.UsageError(
            f"{shown}: --revision-url runs revgate's suite, not these tests (they would ignore the URL); "
            "run your own tests against the revision with revgate --revision-url URL --checks DIR"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "revgate", *config.invocation_params.args])
    return None  # pragma: no cover - execv does not return


def selected_sections(config: pytest.Config) -> list[str]:
    """The suite folders ``--sections`` asks for (all when not given); a bad name is a usage error."""
    raw = config.getoption("sections", None)
    if raw is None:
        return list(SECTIONS.values())
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise pytest.UsageError(
            f"--sections {raw!r}: unknown section {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SECTIONS)}, comma-separated"
        )
    return [SECTIONS[name] for name in names]


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("revision_url") or not _in_suite(config):
        return
    selected_sections(config)  # a bad --sections fails before any check
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return
    root = config.rootpath.resolve()
    here = config.invocation_params.dir
    teams = [(here / Path(d).expanduser()).resolve() for d in config.getoption("checks", None) or []]
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if any(path == d or d in path.parents for d in teams):
            continue  # a file of the team's --checks folder
        if path != root and root not in path.parents:
            raise pytest.UsageError(
                f"{arg}: not part of the revgate suite ({root}); revgate runs only its own checks: "
                f"choose them with --sections {','.join(SECTIONS)} or -k EXPRESSION"
            )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("sections", None) or not _in_suite(config):
        return
    root = config.rootpath.resolve()
    wanted = {root / folder for folder in selected_sections(config)}
    keep, drop = [], []
    for item in items:
        chosen = any(folder in item.path.resolve().parents for folder in wanted)
        (keep if chosen or team_checks.in_checks_dirs(config, item.path) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

"""revgate's command-line options, registered through the ``pytest11`` entry point.

Only the options live here, with the two rules that decide what a run collects,
so that installing revgate changes nothing in other pytest runs; the suite's
behaviour comes from :mod:`revgate.plugin`, which the suite's ``conftest.py``
loads.

- ``pytest --revision-url URL`` outside the suite, with no test path, is the
  ``revgate`` command: the process becomes ``python -m revgate ARGS`` (same
  PID, same exit code), which runs the installed suite and never the tests of
  the current directory. A ``pytest`` without ``--revision-url`` is left alone.
- ``--sections smoke,frontend`` runs only those folders of the suite.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from . import metrics, notify, publish, report, retries, settings
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
    metrics.add_metrics_options(parser)
    from . import logs

    logs.add_logs_options(parser)
    notify.add_options(parser)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_all_options(parser)


def _in_suite(config: pytest.Config) -> bool:
    return config.inipath is not None and config.inipath.resolve() == (suite_dir() / "pytest.ini").resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("revision_url") or _in_suite(config):
        return None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return None  # the user's own test paths: their run, not the gate's
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
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
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
        (keep if any(folder in item.path.resolve().parents for folder in wanted) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

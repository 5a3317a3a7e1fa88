"""revgate's command-line options, registered through the ``pytest11`` entry point.

Only the options live here, so that installing revgate changes nothing in other
pytest runs; the suite's behaviour comes from :mod:`revgate.plugin`,
which the suite's ``conftest.py`` loads.

pytest looks for its ini file before any plugin is loaded, so in
``--checklist /elsewhere/file.toml`` it takes the file for a test path, roots
the run in ``/elsewhere`` finds no pytest.ini and collects whatever is under the current directory. :func:`pytest_configure`
turns that into a usage error that says what to write instead.
"""

from __future__ import annotations

import pytest

from . import metrics, publish, report, retries, settings


def add_all_options(parser: pytest.Parser) -> None:
    """Every revgate option group: the suite's, then each plugin's."""
    from rollback import options as rollback_options
    from rollback import promote

    settings.add_options(parser)
    rollback_options.add_options(parser)
    report.add_options(parser)
    reports_group = parser.getgroup("revgate reports")
    retries.add_options(reports_group, parser)
    publish.add_options(reports_group, parser)
    promote.add_options(parser)
    metrics.add_metrics_options(parser)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_all_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("revision_url") and config.inipath is None:
        raise pytest.UsageError(
            f"pytest found no pytest.ini: it rooted this run in {config.rootpath}, outside the revgate suite. Run pytest from the revgate directory, and write path options with '=' "
            "(--checklist=FILE, --auth-token-file=FILE) so pytest does not take a path for a test path"
        )

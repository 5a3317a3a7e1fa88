"""The suite's fixtures: the revision under test (``target``) and the checklist.

Options, settings and parametrization live in :mod:`revgate.plugin`;
this file registers the plugins and holds the fixtures every test folder uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from revgate.browser import empty_output_dir
from revgate.checklist import Checklist
from revgate.settings import Settings, settings_key
from revgate.target import Target

pytest_plugins = [
    "revgate.plugin",
    "revgate.rollback.plugin",
    "revgate.rollback.promote",
    "revgate.rollback.rollout",
    "revgate.metrics_plugin",
    "revgate.report",
    "revgate.retries",
    "revgate.publish",
    "revgate.notify",
    "revgate.browser_plugin",
    "revgate.team_checks",
]


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[settings_key]


@pytest.fixture(scope="session")
def checklist(settings: Settings) -> Checklist:
    return settings.checklist


@pytest.fixture(scope="session")
def target(settings: Settings) -> Iterator[Target]:
    """The revision under test: URL, auth headers, and one HTTP client for the session."""
    tgt = Target(settings=settings)
    yield tgt
    tgt.close()


@pytest.fixture(scope="session", autouse=True)
def delete_output_dir(pytestconfig: pytest.Config) -> None:
    """Replaces pytest-playwright's: under xdist every worker would empty ``--output``, deleting
    artifacts other workers already wrote; the controller empties it once instead
    (tests_frontend/conftest.py does so at session start when xdist runs)."""
    if not hasattr(pytestconfig, "workerinput"):
        empty_output_dir(pytestconfig)

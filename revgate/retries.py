"""``--retries N``: retry a failed check up to N times, for monitoring runs.

The retrying itself is pytest-rerunfailures' (``--reruns``): ``--retries``
only gives it revgate's precedence (command line > ``REVGATE_RETRIES`` >
ini ``revgate_retries``, default 0). A retried attempt is reported with the
outcome ``rerun``, never ``failed``, so it does not start a rollback; a check
that passes on a retry is shown as "passed after N retries" in the terminal,
the JSON and the Markdown reports (:mod:`revgate.report`).

In a CI gate, keep retries at 0: a flaky check is a finding there.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

__all__ = ["ENV", "add_options", "resolve_retries"]

ENV = "REVGATE_RETRIES"
RETRY_DELAY = 1.0
"""Seconds between two attempts of a check: a retry at once would meet the same passing blip."""
WORKERINPUT_KEY = "revgate_retries"


def add_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption(
        "--retries",
        default=None,
        metavar="N",
        help=f"Retry a failed check up to N times, {RETRY_DELAY:g} s apart (pytest-rerunfailures; --reruns-delay "
        "overrides the pause); a retried pass is reported as such. "
        f"Env: {ENV}; ini: revgate_retries; default 0.",
    )
    parser.addini("revgate_retries", "Retries of a failed check (monitoring runs).", default=None)


def resolve_retries(config: pytest.Config) -> int:
    """N from the command line, the environment or the ini file; a usage error when it is not a count."""
    for source, raw in (
        ("--retries", config.getoption("retries", None)),
        (ENV, os.environ.get(ENV)),
        ("ini revgate_retries", config.getini("revgate_retries")),
    ):
        if raw in (None, ""):
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise pytest.UsageError(f"{source} {raw!r} is not a whole number of retries") from None
        if not 0 <= value <= 10:
            raise pytest.UsageError(f"{source} {raw!r}: give between 0 and 10 retries")
        return value
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        retries = int(workerinput.get(WORKERINPUT_KEY, 0))
    else:
        retries = resolve_retries(config)
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_XdistHooks(retries), "revgate-retries-xdist")
    if not retries:
        return
    if not config.pluginmanager.hasplugin("rerunfailures"):
        raise pytest.UsageError(
            f"--retries {retries} needs pytest-rerunfailures: pip install revgate (it depends on it)"
        )
    if config.getoption("reruns", None) is None:  # an explicit --reruns wins
        config.option.reruns = retries
    if config.getoption("reruns_delay", None) is None:  # and an explicit --reruns-delay
        config.option.reruns_delay = RETRY_DELAY


class _XdistHooks:
    def __init__(self, retries: int) -> None:
        self.retries = retries

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = self.retries

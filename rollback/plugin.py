"""The rollback pytest plugin.

- At session start, in the controller, after the suite's settings are resolved
  (:mod:`revgate_support.plugin` resolves them in a ``tryfirst`` hook; this one
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

from revgate_support.errors import RevgateError
from revgate_support.settings import settings_key

from .deployment import Deployment, deployment_key, resolve_deployment, resolve_mode, service_snapshot_key

__all__ = ["deployment_of"]

WORKERINPUT_KEY = "revgate_deployment"


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
    except RevgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[deployment_key] = deployment
    config.stash[service_snapshot_key] = service


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

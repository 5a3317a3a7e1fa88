"""The "revgate rollback" option group.

Options with an environment fallback default to ``None`` ("unset"); they are
resolved once, in the controller, by :func:`rollback.deployment.resolve_deployment`.
"""

from __future__ import annotations

import pytest

__all__ = ["MODES", "add_options"]

MODES = ("on-failure", "dry-run", "off")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate rollback", "revgate rollback: shift traffic back when a gating check fails")
    group.addoption(
        "--service",
        default=None,
        help="Cloud Run service of the revision under test. Env: CLOUD_RUN_SERVICE. Unset: no rollback.",
    )
    group.addoption(
        "--region",
        default=None,
        help="Cloud Run region of the service. Env: CLOUD_RUN_REGION, CLOUDSDK_RUN_REGION.",
    )
    group.addoption(
        "--project",
        default=None,
        help="Google Cloud project of the service. Env: GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT.",
    )
    group.addoption(
        "--revision",
        default=None,
        metavar="NAME",
        help="Name of the revision under test (comma-separated for several); default: found from --revision-url.",
    )
    group.addoption(
        "--previous-revision",
        default=None,
        metavar="NAME",
        help="Revision to give all the traffic to on rollback; default: the pre-run split without the revision under test.",
    )
    group.addoption(
        "--rollback",
        default=None,
        choices=list(MODES),
        help="What to do when a gating check fails. Env: REVGATE_ROLLBACK; ini: revgate_rollback; "
        "default: on-failure when the service is known.",
    )
    group.addoption(
        "--rollback-report",
        default=None,
        metavar="PATH",
        help="Write the JSON rollback record there (write it as --rollback-report=PATH). Env: REVGATE_ROLLBACK_REPORT.",
    )
    parser.addini("revgate_rollback", "Rollback mode: on-failure, dry-run or off.", default=None)

"""``[rollback] require_target = true``: the service keeps a Ready revision to roll back to.

The target is what a rollback would restore, planned from the service as the
run found it (:mod:`rollback.target`: Ready revisions, not marked failed, by
the rollback's own rules). None is a gating failure: the run is FAIL and never
promotes. A first deploy, with no revision but the one under test, has nothing
to go back to by nature: skipped as not applicable.
"""

from __future__ import annotations

import pytest

from revgate.checklist import Rollback
from revgate.errors import NotVerified
from revgate.judge import fail
from revgate.results import deployment_of


def test_rollback_target(rollback_requirement: Rollback, pytestconfig: pytest.Config) -> None:
    deployment = deployment_of(pytestconfig)
    if deployment is None:
        raise NotVerified(
            "the rollback target needs the Cloud Run service (--service, --region, --project or their environment variables)"
        )
    target = deployment.rollback_target
    testing = ", ".join(deployment.revisions_under_test)
    if target.first_deploy:
        pytest.skip(f"not applicable: a first deploy of {deployment.service} ({testing} is its only revision)")
    if not target.found:
        fail(
            f"no Ready revision of {deployment.service} to roll back to from {testing} ([rollback] require_target): "
            f"{target.problem}"
        )

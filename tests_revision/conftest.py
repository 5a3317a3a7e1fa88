"""Fixtures of the revision checks: the revision's configuration, read once from the Admin API.

``revision_configuration`` is session-scoped: ``GetRevision`` of each revision under test (and,
only when a selected check needs them, ``GetService`` and ``GetIamPolicy``) happen once, before
the first check; every check then judges the same answers. Without a known service
(``--service``) the checks are NOT VERIFIED; an Admin API that does not answer is NOT VERIFIED
too (one line), never a rollback.
"""

from __future__ import annotations

import pytest

from revgate.checklist import Checklist, RevisionConfig
from revgate.errors import NotVerified
from revgate.metrics_plugin import deployment_of
from revgate.revision_config import Configuration, read_configuration


@pytest.fixture(scope="session")
def revision_section(checklist: Checklist) -> RevisionConfig:
    assert checklist.revision is not None  # the tests are parametrized only from a [revision] section
    return checklist.revision


@pytest.fixture(scope="session")
def revision_configuration(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Configuration:
    deployment = deployment_of(pytestconfig)
    if deployment is None:
        raise NotVerified(
            "the [revision] checks need --service (with --region and --project, or CLOUD_RUN_SERVICE, "
            "CLOUD_RUN_REGION, GOOGLE_CLOUD_PROJECT) to read the revision from the Cloud Run Admin API"
        )
    selected = {
        item.callspec.params["revision_key"].id
        for item in request.session.items
        if "revision_key" in getattr(getattr(item, "callspec", None), "params", {})
    }
    return read_configuration(
        deployment,
        need_service=bool(selected & {"image", "min_instances", "max_instances", "allow_unauthenticated"}),
        need_iam="allow_unauthenticated" in selected,
    )

"""The revision's own configuration against the checklist: one test per ``[revision]`` key.

``test_revision[memory]`` passes when every revision under test has the memory limit the
checklist states, fails (a gating failure: the canary is rolled back) when one differs, and is
NOT VERIFIED when the Admin API could not say. ``--expect-image`` makes ``test_revision[image]``
even without a ``[revision]`` section.
"""

from __future__ import annotations

from revgate.checklist import RevisionConfig, RevisionKey
from revgate.errors import NotVerified
from revgate.judge import fail
from revgate.revision_config import Configuration, judge


def test_revision(revision_key: RevisionKey, revision_section: RevisionConfig, revision_configuration: Configuration) -> None:
    verdict = judge(revision_key.id, revision_section, revision_configuration)
    if verdict.outcome == "fail":
        fail(verdict.message)
    if verdict.outcome == "not verified":
        raise NotVerified(verdict.message)

"""The JSON rollback record (``--rollback-report=PATH``) and the command to finish by hand.

Record fields::

    service, region, project, mode, revisions_under_test, previous_revision
    rollback_target  what a rollback would restore, planned at session start:
                 {found, ready, split, revisions, rule, problem, first_deploy, skipped_not_ready, skipped_failed}
    status       not-needed | done | validated | nothing-to-shift | already-acted | failed | off
    message      one line: what happened
    trigger      {test, reason} of the first failed gating test, or null
    traffic      {before, planned, after}: lists of {revision, percent, tag, type, uri}
    etag         the etag sent with the last UpdateService request (the snapshot's when none was sent)
    attempts     UpdateService attempts (more than one after etag conflicts)
    timings      {first_failure_at: ISO time, request_sent_s, operation_done_s}: seconds after the first failure
    marks_written  revgate's annotations on the service after the run ({} when none were written)
    marks_error  why the known-bad mark could not be written, or null
    errors       every error met, one line each
    manual_command  the gcloud command that finishes a rollback that could not be completed, or null
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .deployment import Deployment
from .traffic import TrafficEntry

__all__ = ["gcloud_command", "write_record"]


def gcloud_command(deployment: Deployment, split: dict[str, int]) -> str:
    """``gcloud run services update-traffic SERVICE --region R --project P --to-revisions A=P1,B=P2``."""
    to = ",".join(f"{rev}={pct}" for rev, pct in split.items())
    return (
        f"gcloud run services update-traffic {deployment.service} --region {deployment.region} "
        f"--project {deployment.project} --to-revisions {to}"
    )


def entries(traffic: tuple[TrafficEntry, ...] | None) -> list[dict[str, Any]] | None:
    return None if traffic is None else [e.to_dict() for e in traffic]


def write_record(path: str | Path, record: dict[str, Any]) -> str | None:
    """Write the record as a regular file (the path was checked at session start); the one-line
    reason when it could not be written, else None."""
    from revgate.settings import write_report_file

    return write_report_file(path, json.dumps(record, indent=2, sort_keys=False) + "\n")

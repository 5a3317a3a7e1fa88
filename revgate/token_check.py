"""A refused token is checked against the serving revision before it counts as the revision's failure.

A wrong token (a rotated secret, the staging token in production) and a revision that broke its auth
look the same from the revision under test: 401 or 403 to an ``auth = true`` check. The revision the
rollback would restore tells them apart: the same request, with the same token, goes to it. Refused
there too, the token is wrong: the check is NOT VERIFIED and the traffic stays as it is. Accepted
there, the revision under test broke its auth: the check fails (and rolls back).

The rollback target is reached through its tag URL when it has one (exactly that revision); else,
when the revision under test serves part of the service URL's traffic, through the service URL,
asked up to :data:`SERVICE_URL_ATTEMPTS` times (Cloud Run splits requests by percent, so an answer
may come from the revision under test; one acceptance is enough to show the token is good).
Without ``--service`` there is no rollback target and no rollback: the refusal is reported as is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

__all__ = ["REFUSED", "SERVICE_URL_ATTEMPTS", "serving_revision_refuses", "serving_urls"]

REFUSED = (401, 403)
SERVICE_URL_ATTEMPTS = 3


def serving_urls(config: pytest.Config) -> list[tuple[str, str, int]]:
    """``(base URL, what it is, attempts)`` reaching the rollback target, best first."""
    from .results import deployment_of

    deployment = deployment_of(config)
    if deployment is None:
        return []
    target = deployment.rollback_target
    if not target.found:
        return []
    under_test = set(deployment.revisions_under_test)
    urls: list[tuple[str, str, int]] = []
    for entry in deployment.traffic_before:
        if entry.revision in target.split and entry.revision not in under_test and entry.tag and entry.uri:
            urls.append((entry.uri.rstrip("/"), f"revision {entry.revision} (tag {entry.tag})", 1))
            break
    if not urls:
        try:
            from revgate.rollback.deployment import service_snapshot_key
        except ImportError:  # pragma: no cover - shipped with revgate
            return []
        service = config.stash.get(service_snapshot_key, None)
        uri = str(getattr(service, "uri", "") or "")
        serving = {e.revision for e in deployment.traffic_before if e.percent}
        if uri and serving - under_test:
            names = ", ".join(sorted(serving - under_test))
            urls.append((uri.rstrip("/"), f"the service URL (serving {names})", SERVICE_URL_ATTEMPTS))
    return urls


def serving_revision_refuses(
    config: pytest.Config, settings: Any, check: Any, refused: Any, *, auth: bool = True
) -> str | None:
    """When the rollback target refuses the same request too: the NOT VERIFIED reason, else None (the
    reason names what was asked and what it answered; an acceptance there leaves the failure as it is).

    ``auth``: the request carried the API token (else only what every request carries: the ID token
    of an IAM-protected service, when given). Refused without the token as well, the gate's own
    credentials or the checklist are wrong (a missing ID token, an endpoint the checklist calls public
    that every revision protects), never this revision."""
    from .target import Target

    method = getattr(check, "method", "GET")  # [[api]] has one; [health] is a GET
    for base, what, attempts in serving_urls(config):
        other = Target(settings=dataclasses.replace(settings, revision_url=base))
        try:
            answers = []
            for _ in range(attempts):
                probe = other.request(
                    method, check.path, auth=auth, body=getattr(check, "body", None), check=check,
                    headers=getattr(check, "headers", None) or {}, fresh=True,
                )
                answers.append(probe.status)
                if probe.status not in REFUSED:
                    return None  # accepted (or another answer): the token is not what is refused
        finally:
            other.close()
        seen = ", ".join(str(s) for s in answers)
        if not auth:
            return (
                f"the serving revision refuses the same request as well: {method} {refused.url} answered "
                f"{refused.status} without the API token, and {what} answered {seen}; the gate's credentials "
                "(an IAM-protected service needs --id-token or REVGATE_ID_TOKEN) or the checklist (auth = false "
                "for an endpoint that needs the token) are wrong, the revision is not judged, traffic unchanged"
            )
        return (
            f"the token is refused by the serving revision as well: {method} {refused.url} answered "
            f"{refused.status}, and {what} answered {seen} to the same request; the token is wrong or was "
            "rotated (check REVGATE_AUTH_TOKEN or --auth-token-file), the revision is not judged, traffic unchanged"
        )
    return None

"""The revision's JSON API: each endpoint answers with the expected status, headers and shape,
and endpoints that need the token refuse requests without it (or with a wrong one).

The refusal probes run on a client of their own: no cookie and no connection from
earlier requests, so a session cookie the app set for the token cannot authenticate them.
"""

from __future__ import annotations

import pytest

from revgate import own_requests
from revgate.checklist import Api, body_pattern, statuses
from revgate.errors import not_verified
from revgate.settings import settings_key
from revgate.token_check import serving_revision_refuses
from revgate.judge import fail, json_type_of, shape_problems
from revgate.target import Probe, Target

REFUSED = (401, 403)
WRONG_TOKEN = "revgate-deliberately-invalid-token"


def _expected(check: Api) -> str:
    codes = statuses(check.status)
    return str(codes[0]) if len(codes) == 1 else "one of " + ", ".join(map(str, codes))


def body_problems(check: Api, probe: Probe) -> list[str]:
    """``content_type``, ``contains`` and ``matches`` (RE2) on the answer, whatever its content type."""
    problems = []
    if check.content_type is not None:
        seen = probe.content_type.split(";", 1)[0].strip().lower()
        if seen != check.content_type:
            problems.append(f"content type {seen or 'missing'!r}, expected {check.content_type!r}")
    text = probe.body.decode("utf-8", errors="replace")
    if check.contains is not None and check.contains not in text:
        problems.append(f"the body does not contain {check.contains!r}")
    if check.matches is not None and not body_pattern(check.matches).search(text):
        problems.append(f"the body does not match {check.matches!r}")
    return problems


def test_api(target: Target, api_check: Api, pytestconfig: pytest.Config) -> None:
    check = api_check
    if check.auth and not target.has_token:
        fail(
            f"{check.method} {target.url(check.path)} needs the API token, and none was given: "
            "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE"
        )
    probe = target.request(
        check.method,
        check.path,
        auth=check.auth,
        body=check.body,
        check=check,
        headers=check.headers,
        follow_redirects=check.follow_redirects,
        session=check.session,
    )
    if probe.status not in statuses(check.status) or not probe.answered:
        if probe.status in REFUSED:
            # wrong credentials, or a revision that broke its auth? the serving revision tells them apart
            reason = serving_revision_refuses(pytestconfig, pytestconfig.stash[settings_key], check, probe,
                                              auth=bool(check.auth and target.has_token))
            if reason is not None:
                not_verified(reason)
        fail(probe.describe(_expected(check)))
    problems = []
    for name, want in check.response_headers.items():
        seen = probe.response_headers.get(name.lower())
        if seen is None:
            problems.append(f"response header {name!r} missing (want it to contain {want!r})")
        elif want.lower() not in seen.lower():
            problems.append(f"response header {name!r}: want it to contain {want!r}, got {seen[:100]!r}")
    problems += body_problems(check, probe)
    if check.keys or check.equals or check.min_items:
        value, why = probe.json()
        if why:
            fail(f"{'; '.join(problems + [why])}; {probe.describe()}")
        problems += shape_problems(value, keys=check.keys, equals=check.equals, min_items=check.min_items)
        if problems and not isinstance(value, (dict, list)):
            problems.append(f"the body is a JSON {json_type_of(value)}")
    if problems:
        what = "answer" if check.response_headers or check.contains or check.matches or check.content_type else "JSON shape"
        fail(f"unexpected {what}: {'; '.join(problems)}; {probe.describe()}")


def test_api_requires_auth(target: Target, api_auth_check: Api) -> None:
    check = api_auth_check
    common = {"body": check.body, "check": check, "headers": check.headers, "fresh": True}
    anonymous = target.request(check.method, check.path, auth=False, **common)
    own_requests.record("refusal probe", anonymous.status)  # left out of the metric checks
    if anonymous.status not in REFUSED:
        fail(anonymous.describe("401 or 403 without a token (the endpoint must not be open)"))
    forged = target.request(check.method, check.path, auth=False, bearer=WRONG_TOKEN, **common)
    own_requests.record("refusal probe", forged.status)
    if forged.status not in REFUSED:
        fail(forged.describe("401 or 403 with an invalid token"))

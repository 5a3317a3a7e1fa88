"""The revision's JSON API: each endpoint answers with the expected status and shape,
and endpoints that need the token refuse requests without it (or with a wrong one)."""

from __future__ import annotations

from revgate.checklist import Api
from revgate.judge import fail, is_json_type, json_type_of
from revgate.target import Target

REFUSED = (401, 403)
WRONG_TOKEN = "revgate-deliberately-invalid-token"


def test_api(target: Target, api_check: Api) -> None:
    if api_check.auth and not target.has_token:
        fail(
            f"{api_check.method} {target.url(api_check.path)} needs the API token, and none was given: "
            "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE"
        )
    probe = target.request(api_check.method, api_check.path, auth=api_check.auth, body=api_check.body)
    if probe.status != api_check.status or not probe.answered:
        fail(probe.describe(f"{api_check.status}"))
    if not api_check.keys:
        return
    value, why = probe.json()
    if why:
        fail(f"{why}; {probe.describe()}")
    if not isinstance(value, dict):
        fail(f"expected a JSON object with keys {sorted(api_check.keys)}, got {json_type_of(value)}; {probe.describe()}")
    problems = [
        f"{key!r} missing" if key not in value else f"{key!r} is {json_type_of(value[key])}, expected {kind}"
        for key, kind in api_check.keys.items()
        if key not in value or not is_json_type(value[key], kind)
    ]
    if problems:
        fail(f"unexpected JSON shape: {'; '.join(problems)}; {probe.describe()}")


def test_api_requires_auth(target: Target, api_auth_check: Api) -> None:
    check = api_auth_check
    anonymous = target.request(check.method, check.path, auth=False, body=check.body)
    if anonymous.status not in REFUSED:
        fail(anonymous.describe("401 or 403 without a token (the endpoint must not be open)"))
    forged = target.request(check.method, check.path, auth=False, body=check.body, bearer=WRONG_TOKEN)
    if forged.status not in REFUSED:
        fail(forged.describe("401 or 403 with an invalid token"))

"""``revgate init --checks [DIR]``: a starter folder for the team's own post-deploy tests.

It writes ``DIR/test_deploy.py`` (``deploy_checks/`` by default): one test that
passes against any service that answers, and a login flow and a page
interaction, commented, to adapt. It never overwrites a file; the next step,
said once, is to give the folder to revgate (``--checks DIR`` or
``[suite] checks = ["DIR"]`` in the checklist).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["STARTER", "init_checks"]

STARTER = '''\
"""The team's own post-deploy checks: pytest tests revgate runs with its checklist.

revgate runs this folder against the revision under test when it is given
`--checks deploy_checks` (or `[suite] checks = ["deploy_checks"]` in
checklist.toml). A failing test here fails the gate and rolls the traffic back,
like any check of the checklist; mark a test `@pytest.mark.advisory` to report
it only.

revgate's fixtures:
- revision_url: the URL under test (str);
- api: an httpx.Client with base_url = revision_url and the API token (or the
  ID token) in its headers, which go to that origin only;
- page: a Playwright page whose requests to the revision, and only those, carry
  the token (relative URLs resolve against revision_url);
- revision: the Cloud Run Admin API's Revision under test (needs --service).
"""

import os

import pytest


def test_the_revision_answers(api):
    answer = api.get("/")
    assert answer.status_code < 500, f"GET / answered {answer.status_code}"


# A login flow: edit the paths, the fields and the secret's variable to your service's.
#
# def test_login_then_profile(api):
#     login = api.post("/login", json={"user": "gate", "password": os.environ["GATE_USER_PASSWORD"]})
#     assert login.status_code == 200, login.text
#     profile = api.get("/api/me")  # the session cookie of the login is kept for this test
#     assert profile.status_code == 200 and profile.json()["user"] == "gate"
#
#
# def test_sign_in_page(page):
#     page.goto("/login")
#     page.get_by_label("User").fill("gate")
#     page.get_by_label("Password").fill(os.environ["GATE_USER_PASSWORD"])
#     page.get_by_role("button", name="Sign in").click()
#     page.get_by_text("Welcome back").wait_for()
'''


def init_checks(folder: Path) -> int:
    """Write ``folder/test_deploy.py``; 4 (one line) when it exists or cannot be written."""
    target = folder / "test_deploy.py"
    if target.exists():
        print(f"revgate init: {target} already exists and is kept; edit it, or give another folder (--checks DIR)", file=sys.stderr)
        return 4
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(STARTER)
    except OSError as exc:
        print(f"revgate init: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 4
    print(f"wrote {target}: the team's own post-deploy tests")
    print(
        f'next: revgate --revision-url URL --checks {folder}, or add [suite] checks = ["{folder.as_posix()}"] '
        "to checklist.toml"
    )
    return 0

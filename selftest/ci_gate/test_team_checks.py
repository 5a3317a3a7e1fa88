"""The team's own post-deploy tests (``--checks DIR``, ``[suite] checks``) gate like the suite's checks.

Each test lays out a team's repository: a ``deploy_checks/`` folder with the
team's pytest files (one named ``test_api.py``, as the suite's own file is),
and, beside it, a unit test that always fails and a ``conftest.py`` that raises,
which the gate must never collect. The gate runs in a subprocess against a 10 %
canary of the sandbox; what is asserted is the exit code, the verdict line and
the traffic afterwards.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.control import Sandbox

from .conftest import split_of

HEALTH_ONLY = "[health]\nready_budget = 5\n"

TEAM_API = '''
import http.server
import threading

import httpx


def test_stats_flow(api, revision_url):
    assert isinstance(api, httpx.Client) and str(api.base_url).rstrip("/") == revision_url
    answer = api.get("/api/memory/user/stats")
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) >= {"preferences", "concepts", "stats"}, answer.json()


def test_the_token_never_leaves_the_revision(api):
    seen = {}

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert api.get(f"http://127.0.0.1:{server.server_port}/elsewhere").status_code == 204
    finally:
        server.shutdown()
    assert seen and "authorization" not in seen, sorted(seen)
'''

TEAM_REVISION = '''
def test_revision_is_the_canary(revision, revision_url):
    assert revision.name.rsplit("/", 1)[-1] == "{canary}"
'''

TEAM_ADVISORY = '''
import pytest


@pytest.mark.advisory
def test_stats_schema_is_advisory(api):
    assert "concepts" in api.get("/api/memory/user/stats").json()
'''


def team_repo(root: Path, files: dict[str, str]) -> Path:
    """A team's repository: ``deploy_checks/`` with ``files``, and things around it the gate must not collect."""
    checks = root / "deploy_checks"
    checks.mkdir(parents=True)
    for name, text in files.items():
        (checks / name).write_text(textwrap.dedent(text))
    (root / "tests").mkdir()
    (root / "tests" / "test_unit.py").write_text("def test_unit_test_of_the_team():\n    assert False, 'collected'\n")
    (root / "conftest.py").write_text("raise RuntimeError('the team repository conftest was loaded')\n")
    return checks


@pytest.fixture
def canary_10(sandbox: Sandbox, service: str) -> Callable[..., tuple[str, str, str]]:
    """``canary_10(faults)``: a stable revision and a canary at 10 % (its tag URL)."""

    def make(faults: list[str] | None = None) -> tuple[str, str, str]:
        stable = sandbox.deploy(service, tag="stable")
        canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=faults or [])
        sandbox.update_traffic(service, to_revisions={stable: 90, canary: 10})
        return stable, canary, sandbox.tag_url(service, "canary")

    return make


def test_a_passing_team_test_passes_the_gate(
    sandbox: Sandbox, service: str, gate: Callable[..., Any], checklist: Path, tmp_path: Path, canary_10
) -> None:
    stable, canary, url = canary_10()
    checks = team_repo(
        tmp_path / "repo", {"test_api.py": TEAM_API, "test_revision.py": TEAM_REVISION.format(canary=canary)}
    )
    # [suite] checks, relative to the checklist's folder
    checklist.write_text(f'[suite]\nchecks = ["{checks.relative_to(checklist.parent)}"]\n\n{HEALTH_ONLY}')

    g = gate(url, f"--service={service}")

    assert g.run.returncode == 0, g.run
    assert g.run.passed() == {
        "test_health[health]",
        "test_stats_flow",
        "test_the_token_never_leaves_the_revision",
        "test_revision_is_the_canary",
    }, g.run
    assert "test_unit_test_of_the_team" not in g.output and "conftest was loaded" not in g.output
    assert f"revgate team checks: {checks.resolve()}" in g.output
    assert split_of(sandbox, service) == {stable: 90, canary: 10}
    assert "revgate verdict: PASS" in g.output


def test_a_failing_team_test_rolls_the_canary_back(
    sandbox: Sandbox, service: str, gate: Callable[..., Any], checklist: Path, tmp_path: Path, canary_10
) -> None:
    stable, canary, url = canary_10(["stats_schema"])  # /health still answers: only the team's test can see it
    checks = team_repo(tmp_path / "repo", {"test_api.py": TEAM_API})
    checklist.write_text(HEALTH_ONLY)

    g = gate(url, f"--service={service}", f"--checks={checks}")

    assert g.run.returncode == 1, g.run
    assert g.run.failed() == {"test_stats_flow"}, g.run
    assert "revgate verdict: FAIL" in g.output
    assert split_of(sandbox, service) == {stable: 100}
    assert g.json["rollback"]["trigger"]["test"].endswith("test_api.py::test_stats_flow"), g.json["rollback"]
    assert sandbox.env["REVGATE_AUTH_TOKEN"] not in g.output + str(g.json)


def test_an_advisory_team_test_does_not_roll_back(
    sandbox: Sandbox, service: str, gate: Callable[..., Any], checklist: Path, tmp_path: Path, canary_10
) -> None:
    stable, canary, url = canary_10(["stats_schema"])
    checks = team_repo(tmp_path / "repo", {"test_advisory.py": TEAM_ADVISORY})
    checklist.write_text(HEALTH_ONLY)

    g = gate(url, f"--service={service}", env={"REVGATE_CHECKS": str(checks)})

    assert g.run.returncode == 0, g.run
    assert g.run.failed() == {"test_stats_schema_is_advisory"}, g.run
    assert "ADVISORY" in g.output and "test_stats_schema_is_advisory" in g.output
    assert split_of(sandbox, service) == {stable: 90, canary: 10}


def test_a_checks_folder_that_does_not_exist_is_exit_4(
    sandbox: Sandbox, service: str, gate: Callable[..., Any], checklist: Path, tmp_path: Path, canary_10
) -> None:
    stable, canary, url = canary_10()
    checklist.write_text(HEALTH_ONLY)

    g = gate(url, f"--service={service}", f"--checks={tmp_path / 'nowhere'}")

    g.run.assert_usage_error("--checks", "does not exist", "deploy_checks")
    assert split_of(sandbox, service) == {stable: 90, canary: 10}


def test_pytest_with_the_teams_paths_and_a_revision_url_is_exit_4(tmp_path: Path) -> None:
    """``pytest tests/test_x.py --revision-url URL`` in the team's repository: the installed plugin refuses it,
    as ``revgate`` does, instead of running the team's tests and ignoring the URL (exit 0, nothing checked)."""
    import os
    import subprocess
    import sys

    checks = team_repo(tmp_path / "repo", {"test_api.py": TEAM_API})
    (tmp_path / "repo" / "conftest.py").unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "deploy_checks/test_api.py", "--revision-url", "http://127.0.0.1:9"],
        cwd=checks.parent, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("ERROR: deploy_checks/test_api.py: --revision-url runs revgate's suite"), lines
    assert "--checks DIR" in lines[0] and "Traceback" not in proc.stdout + proc.stderr
    assert "test_stats_flow" not in proc.stdout  # nothing ran

    # without --revision-url it is the team's own pytest run, left alone
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/test_unit.py"],
        cwd=checks.parent, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout


def test_init_writes_a_deploy_checks_starter_that_passes(
    sample_service: Callable[..., str], run_suite: Callable[..., Any], auth_env: dict[str, str], tmp_path: Path
) -> None:
    import subprocess
    import sys

    repo = tmp_path / "repo"
    repo.mkdir()
    init = subprocess.run([sys.executable, "-m", "revgate", "init", "--checks"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    assert "wrote deploy_checks/test_deploy.py" in init.stdout and "--checks deploy_checks" in init.stdout
    again = subprocess.run([sys.executable, "-m", "revgate", "init", "--checks"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert again.returncode == 4 and again.stderr.count("\n") == 1 and "already exists and is kept" in again.stderr
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(HEALTH_ONLY)

    run = run_suite("tests_smoke", f"--revision-url={sample_service()}", f"--checklist={checklist}",
                    f"--checks={repo / 'deploy_checks'}", env=auth_env)

    assert run.returncode == 0, run
    assert run.passed() == {"test_health[health]", "test_the_revision_answers"}, run


TEAM_PAGE = '''
import http.server
import threading


def test_memory_page_with_the_token(page, revision_url):
    page.goto("/memory")  # relative to the revision; its fetch of the stats API needs the token
    page.locator("#memory-dashboard[data-ready=true]").wait_for()
    assert page.locator("#memory-dashboard").get_attribute("data-state") == "ok"
    assert page.get_by_text("Statistics").is_visible()

    seen = {}

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p>elsewhere</p>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
    assert seen and "authorization" not in seen, sorted(seen)
'''


def test_a_team_page_test_gets_the_token_on_the_revision_only(
    sample_service: Callable[..., str], run_suite: Callable[..., Any], auth_env: dict[str, str], tmp_path: Path
) -> None:
    checks = team_repo(tmp_path / "repo", {"test_pages.py": TEAM_PAGE})
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(HEALTH_ONLY)

    run = run_suite("tests_smoke", f"--revision-url={sample_service()}", f"--checklist={checklist}",
                    f"--checks={checks}", f"--output={tmp_path / 'out'}", env=auth_env)

    assert run.returncode == 0, run
    assert run.passed() == {"test_health[health]", "test_memory_page_with_the_token[chromium]"}, run
    assert auth_env["REVGATE_AUTH_TOKEN"] not in run.output

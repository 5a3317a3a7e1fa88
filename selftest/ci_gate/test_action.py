"""The GitHub Action's own shell steps, run as the runner runs them, twice in one job.

The steps run as a runner runs them (:mod:`action_runner`); revgate's virtual
environment is this one. The gate they start is the real one, against the
sample service.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .action_runner import ACTION, STEPS, Job

CHECKLIST = """
[health]
ready_budget = 3

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = { stats = "object" }

[[websocket]]
id = "session"
path = "/ws/{session}"
send = { type = "ping", id = 1 }
expect = { type = "pong", id = 1 }
timeout = 3
"""


@pytest.fixture
def job(tmp_path: Path, auth_env: dict[str, str]) -> Job:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_", "GITHUB_"))}
    job = Job(tmp_path, {**env, **auth_env})
    (job.workspace / "checklist.toml").write_text(CHECKLIST)
    return job


def _reports(use: dict[str, Any]) -> Path:
    return Path(use["steps"]["prep"]["dir"])


def test_two_uses_in_one_job_each_report_their_own_verdict(job: Job, sample_service: Callable[..., str]) -> None:
    healthy, broken = sample_service(), sample_service("stats_500")
    extra = '-k "health or api"\n# the WebSocket is checked by another job\n-p no:cacheprovider\n'

    first = job.use(revision_url=healthy, checklist="checklist.toml", sections="smoke", extra_args=extra)
    second = job.use(revision_url=broken, checklist="checklist.toml", sections="smoke", extra_args=extra)

    assert (first["code"], first["outputs"]["verdict"]) == (0, "PASS"), first["steps"]["_log"]
    assert (second["code"], second["outputs"]["verdict"]) == (1, "FAIL"), second["steps"]["_log"]
    assert _reports(first) != _reports(second)
    assert first["outputs"]["report-json"] == str(_reports(first) / "report.json")
    assert second["outputs"]["report-json"] == str(_reports(second) / "report.json")
    # -k "health or api" reached pytest as one argument: the WebSocket check was deselected
    junit = (_reports(first) / "junit.xml").read_text()
    assert "test_health" in junit and "test_api" in junit and "test_websocket" not in junit
    assert first["steps"]["prep"]["suffix"] != second["steps"]["prep"]["suffix"]  # the artifacts' names


def test_a_use_whose_gate_never_ran_is_error_not_the_previous_pass(job: Job, sample_service: Callable[..., str]) -> None:
    url = sample_service()
    first = job.use(revision_url=url, checklist="checklist.toml", sections="smoke")
    broken = job.use(revision_url=url, checklist="checklist.toml", extra_args='-k "health or')

    assert (first["code"], first["outputs"]["verdict"]) == (0, "PASS"), first["steps"]["_log"]
    assert broken["code"] == 4 and broken["outputs"]["verdict"] == "ERROR"
    assert broken["outputs"]["report-json"] == ""
    assert "extra-args: No closing quotation" in "".join(broken["steps"]["_log"].values())


def test_the_id_token_and_the_rollout_inputs_go_through_the_environment_only() -> None:
    for step in STEPS:
        script = step.get("run", "")
        assert "inputs.id-token" not in script and "inputs.rollout" not in script and "inputs.soak" not in script
    (gate,) = [s for s in STEPS if s.get("id") == "gate"]
    assert gate["env"]["REVGATE_ID_TOKEN"] == "${{ inputs.id-token }}"
    for name, var in (("rollout", "REVGATE_ROLLOUT"), ("soak", "REVGATE_SOAK"), ("probe-interval", "REVGATE_PROBE_INTERVAL"),
                      ("max-soak", "REVGATE_MAX_SOAK"), ("checks", "REVGATE_CHECKS")):
        assert name in ACTION["inputs"]
        local = "IN_" + name.upper().replace("-", "_")
        assert gate["env"][local] == "${{ inputs.%s }}" % name
        assert f'export {var}="${local}"' in gate["run"]


def test_python_is_the_actions_own_and_pip_is_cached_on_revgates_pyproject() -> None:
    (setup,) = [s for s in STEPS if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert setup["with"]["update-environment"] is False  # the job's python is not changed
    (cache,) = [s for s in STEPS if str(s.get("uses", "")).startswith("actions/cache@")]
    assert "steps.prep.outputs.pyproject" in cache["with"]["key"]
    (prep,) = [s for s in STEPS if s.get("id") == "prep"]
    assert '"$GITHUB_ACTION_PATH/pyproject.toml"' in prep["run"] and "mktemp -d" in prep["run"]
    (install,) = [s for s in STEPS if s.get("name", "").startswith("Install revgate")]
    assert "steps.python.outputs.python-path" in install["env"]["PYTHON"]
    assert '"$PYTHON" -m venv' in install["run"] and "PIP_CACHE_DIR" in install["env"]
    assert "needs-chromium" in install["run"] and "--only-shell chromium" in install["run"]


@pytest.mark.parametrize(
    ("checklist", "env", "files", "needed"),
    [
        ("[health]\n", {}, {}, False),
        ('[[page]]\nid = "home"\npath = "/"\n', {}, {}, True),
        ('[[page]]\nid = "home"\npath = "/"\n', {"IN_SECTIONS": "smoke,metrics"}, {}, False),
        ('[[page]]\nid = "home"\npath = "/"\n', {"IN_EXTRA": "--sections=smoke"}, {}, False),
        ('[suite]\nchecks = ["deploy_checks"]\n[health]\n', {}, {"deploy_checks/test_login.py": "def test_login(page):\n    pass\n"}, True),
        ('[suite]\nchecks = ["deploy_checks"]\n[health]\n', {}, {"deploy_checks/test_api.py": "def test_api(api):\n    pass\n"}, False),
        ("[health]\n", {"IN_CHECKS": "more"}, {"more/test_ui.py": "def test_ui(\n    page, revision_url\n):\n    pass\n"}, True),
    ],
    ids=["no-pages", "pages", "pages-not-run", "pages-not-run-extra-args", "team-page", "team-api", "checks-input"],
)
def test_chromium_is_installed_only_when_a_page_will_be_opened(
    tmp_path: Path, checklist: str, env: dict[str, str], files: dict[str, str], needed: bool
) -> None:
    (tmp_path / "checklist.toml").write_text(checklist)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "revgate.ci_action", "needs-chromium"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("true" if needed else "false")

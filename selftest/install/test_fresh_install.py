"""revgate as a new team meets it: the wheel, a fresh venv, a directory of their own.

The wheel is built from this checkout and installed into a new virtual
environment with nothing else in it (pip resolves every dependency from the
wheel's metadata). Everything then runs from a temporary directory outside the
checkout that holds a test file of the team's own, which must never run in a
gate. The target is the sample service on loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

OWN_TEST = '''
def test_the_teams_own_unit_test():
    raise AssertionError("the team's own test ran inside the gate")
'''


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


@dataclass
class Install:
    wheel: Path
    bin: Path

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> Result:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_", "VIRTUAL_ENV"))}
        base["PATH"] = f"{self.bin}{os.pathsep}{base.get('PATH', '')}"
        base.pop("PYTHONPATH", None)
        proc = subprocess.run(
            list(args), cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("revgate-*.whl")
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=900,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Install(wheel=wheel, bin=env_dir / "bin")


@pytest.fixture
def team_dir(tmp_path: Path) -> Path:
    """The service's own repository: a test file of its own, no revgate checkout anywhere near."""
    here = tmp_path / "service-repo"
    here.mkdir()
    (here / "test_own.py").write_text(OWN_TEST)
    assert REPO not in here.parents
    return here


@pytest.fixture
def sample(sample_service: Callable[..., str]) -> str:
    return sample_service()


def _verdict(output: str) -> str:
    (verdict,) = re.findall(r"^revgate verdict: (PASS|FAIL|NOT VERIFIED|ERROR)\b", output, flags=re.M)
    return verdict


def test_the_wheel_carries_the_suite_and_not_the_sandbox(install: Install) -> None:
    names = set(zipfile.ZipFile(install.wheel).namelist())
    for path in ("revgate/suite/conftest.py", "revgate/suite/pytest.ini", "revgate/suite/checklist.toml",
                 "revgate/suite/tests_smoke/test_health.py", "revgate/suite/tests_frontend/test_pages.py",
                 "revgate/suite/tests_metrics/test_metrics.py", "revgate/cli.py", "revgate/rollback/plugin.py"):
        assert path in names, path
    # only `revgate` (PyPI has an unrelated `rollback`, which a top-level one would shadow)
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"revgate"}
    assert not [n for n in names if n.startswith(("sandbox/", "selftest/"))]
    metadata = zipfile.ZipFile(install.wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, flags=re.M)
    gate = [r for r in requires if "extra ==" not in r]
    assert any(re.match(r"pytest[<>=]", r) for r in gate) and any(r.startswith("google-cloud-run") for r in gate)
    assert all("<" in r for r in gate), f"unbounded dependency: {gate}"
    assert not any(r.startswith(("starlette", "uvicorn")) for r in gate), "the sandbox's servers are not a gate's"


def test_version_and_help(install: Install, team_dir: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    shown = install.run("revgate", "--version", cwd=team_dir)
    assert shown.returncode == 0 and shown.stdout.strip() == f"revgate {version}", shown
    for args in (["-h"], ["init", "-h"], ["check", "-h"]):
        helped = install.run("revgate", *args, cwd=team_dir)
        assert helped.returncode == 0 and "usage: revgate" in helped.stdout, helped
    run_help = install.run("revgate", "run", "--help", cwd=team_dir)
    assert run_help.returncode == 0 and "--revision-url" in run_help.stdout and "--sections" in run_help.stdout


def test_init_then_check_then_gate_from_the_teams_directory(install: Install, team_dir: Path, sample: str, auth_env: dict[str, str]) -> None:
    made = install.run("revgate", "init", cwd=team_dir)
    assert made.returncode == 0 and "wrote checklist.toml" in made.stdout, made
    starter = (team_dir / "checklist.toml").read_text()
    again = install.run("revgate", "init", cwd=team_dir)
    assert again.returncode == 4 and "already exists" in again.stderr, again
    assert (team_dir / "checklist.toml").read_text() == starter

    checked = install.run("revgate", "check", "checklist.toml", cwd=team_dir)
    assert checked.returncode == 0 and "checklist.toml: valid, 1 health check(s)" in checked.stdout, checked

    gate = install.run("revgate", "--revision-url", sample, cwd=team_dir, env=auth_env)
    assert gate.returncode == 0, gate
    assert _verdict(gate.output) == "PASS"
    assert "test_health[health] PASSED" in gate.output or "1 passed" in gate.output, gate
    assert "test_own" not in gate.output and "test_the_teams_own_unit_test" not in gate.output
    assert "skipped" not in gate.output.split("revgate verdict")[-1], "absent sections must not count as skips"

    same = install.run("pytest", "--revision-url", sample, "--checklist=checklist.toml", cwd=team_dir, env=auth_env)
    assert same.returncode == 0 and _verdict(same.output) == "PASS", same
    assert "test_own" not in same.output

    plain = install.run("pytest", "-q", "-p", "no:cacheprovider", cwd=team_dir)
    assert plain.returncode == 1 and "test_the_teams_own_unit_test" in plain.output, "plain pytest is the team's own run"


def test_a_broken_revision_fails_from_the_teams_directory(
    install: Install, team_dir: Path, sample_service: Callable[..., str], auth_env: dict[str, str]
) -> None:
    url = sample_service("stats_500")
    gate = install.run(
        "revgate", "--revision-url", url, "--sections", "smoke", f"--checklist={REPO / 'checklist.toml'}",
        f"--report-json={team_dir / 'report.json'}", cwd=team_dir, env=auth_env,
    )
    assert gate.returncode == 1, gate
    assert _verdict(gate.output) == "FAIL"
    report = json.loads((team_dir / "report.json").read_text())
    failed = [c["name"] for c in report["checks"] if c["outcome"] == "failed"]
    assert "test_api[memory-user-stats]" in failed, report
    assert "500" in next(c["message"] for c in report["checks"] if c["name"] == "test_api[memory-user-stats]")


def test_init_from_url_fills_in_what_answers(install: Install, team_dir: Path, sample: str, auth_env: dict[str, str]) -> None:
    made = install.run("revgate", "init", "--from-url", sample, cwd=team_dir)
    assert made.returncode == 0, made
    data = tomllib.loads((team_dir / "checklist.toml").read_text())
    assert data["health"]["path"] == "/health" and data["health"]["json"] == {"status": "ok"}
    assert [page["path"] for page in data.get("page", [])] == ["/"]
    assert install.run("revgate", "check", "checklist.toml", cwd=team_dir).returncode == 0
    gate = install.run("revgate", "--revision-url", sample, cwd=team_dir, env=auth_env)
    assert gate.returncode == 0 and _verdict(gate.output) == "PASS", gate

    dead = install.run("revgate", "init", "--from-url", "http://127.0.0.1:9", "--output", "x.toml", cwd=team_dir)
    assert dead.returncode == 4 and dead.stderr.count("\n") == 1 and "cannot probe" in dead.stderr, dead
    assert not (team_dir / "x.toml").exists()


def test_check_lists_every_problem(install: Install, team_dir: Path) -> None:
    bad = team_dir / "bad.toml"
    bad.write_text('[health]\npath = 3\nstatuss = 200\n\n[[api]]\nid = "stats"\n\n[nope]\n')
    checked = install.run("revgate", "check", "bad.toml", cwd=team_dir)
    assert checked.returncode == 4, checked
    lines = checked.stderr.splitlines()
    assert len(lines) == 4, checked
    assert lines[0].startswith("bad.toml: [health] key 'path'")
    assert any("[health] key 'statuss': unknown key" in line for line in lines)
    assert any("[[api]] 'stats' key 'path': required key is missing" in line for line in lines)
    assert any("unknown section [nope]" in line for line in lines)
    assert "Traceback" not in checked.output


def test_the_gate_refuses_the_teams_own_tests_and_bad_sections(install: Install, team_dir: Path, sample: str, auth_env: dict[str, str]) -> None:
    own = install.run("revgate", "--revision-url", sample, "test_own.py", cwd=team_dir, env=auth_env)
    assert own.returncode == 4 and "test_own.py: not part of the revgate suite" in own.stderr, own
    assert "Traceback" not in own.output and "test_the_teams_own_unit_test" not in own.output
    sections = install.run("revgate", "--revision-url", sample, "--sections", "smoke,logz", cwd=team_dir, env=auth_env)
    assert sections.returncode == 4 and "unknown section logz" in sections.stderr, sections
    empty = team_dir / "empty.toml"
    empty.write_text("[defaults]\ntimeout = 5\n")
    nothing = install.run("revgate", "--revision-url", sample, f"--checklist={empty}", cwd=team_dir, env=auth_env)
    assert nothing.returncode == 4 and "the checklist has no checks" in nothing.stderr, nothing  # refused before any check


def test_the_github_action_steps_gate_and_set_outputs(install: Install, team_dir: Path, sample: str, tmp_path: Path, auth_env: dict[str, str]) -> None:
    """The action's own shell steps, run as the runner runs them (bash, GITHUB_OUTPUT, RUNNER_TEMP), with the wheel's venv."""
    from ci_gate.action_runner import ACTION, Job

    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_", "VIRTUAL_ENV", "GITHUB_"))}
    env.pop("PYTHONPATH", None)
    job = Job(tmp_path, {**env, **auth_env}, venv=install.bin.parent, workspace=team_dir)
    (team_dir / "checklist.toml").write_text('[health]\npath = "/health"\nstatus = 200\n')

    gated = job.use(revision_url=sample, checklist="checklist.toml", sections="smoke")

    assert gated["code"] == 0, gated["steps"]["_log"]
    assert gated["outputs"]["verdict"] == "PASS"
    assert _verdict("".join(gated["steps"]["_log"].values())) == "PASS"
    report = Path(gated["outputs"]["report-json"])
    assert report.parent.parent == job.temp and report.name == "report.json" and report.is_file()
    assert set(ACTION["outputs"]) == {"verdict", "revision", "rollback-status", "report-json"}
    assert {"revision-url", "service", "region", "project", "checklist", "rollback", "promote", "sections",
            "extra-args"} <= set(ACTION["inputs"])

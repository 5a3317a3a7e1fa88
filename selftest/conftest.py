"""Fixtures shared by the project's own tests.

The gate is exercised the way a user runs it: ``pytest`` in a subprocess, from
the repository root (so the suite's ``pytest.ini`` and ``conftest.py`` apply),
against real servers on loopback. ``run_suite`` returns what the user sees: the
exit code, the terminal output and the JUnit XML.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.standalone import start_sample_service

REPO = Path(__file__).resolve().parent.parent
SAMPLE_TOKEN = "selftest-token-5f1c9a7e"


@dataclass(repr=False)
class SuiteRun:
    """The outcome of one run of the gate, as a user (or CI) sees it."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    junit_path: Path
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed/failed/error/skipped

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def failed(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o in ("failed", "error")}

    def passed(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o == "passed"}

    def assert_usage_error(self, *fragments: str) -> None:
        """Exit 4 with one line on stderr, ``ERROR: ...`` naming every fragment, and no traceback."""
        assert self.returncode == 4, self
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self
        assert lines[0].startswith("ERROR: "), self
        for fragment in fragments:
            assert fragment in lines[0], self
        assert "Traceback" not in self.output, self

    def junit_text(self) -> str:
        return self.junit_path.read_text() if self.junit_path.exists() else ""

    def __repr__(self) -> str:  # shown by pytest when an assertion on the run fails
        return f"exit {self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    __str__ = __repr__


def _outcomes(junit: Path) -> dict[str, str]:
    if not junit.exists():
        return {}
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        outcomes[name] = outcome
    return outcomes


def run_gate(
    args: list[str],
    *,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 240,
) -> SuiteRun:
    """Run ``pytest ARGS`` from the repository root, as a user would."""
    junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*.xml')))}.xml"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    proc = subprocess.run(
        cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    return SuiteRun(cmd, proc.returncode, proc.stdout, proc.stderr, junit, _outcomes(junit))


@pytest.fixture
def run_suite(tmp_path: Path) -> Callable[..., SuiteRun]:
    """``run_suite(*args, env={...})`` runs the gate in a subprocess and returns a :class:`SuiteRun`."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> SuiteRun:
        return run_gate(list(args), tmp_path=tmp_path, env=env, timeout=timeout)

    return run


@pytest.fixture
def sample_service() -> Iterator[Callable[..., str]]:
    """``sample_service("stats_500")`` starts the sample service with those faults and returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(faults: str = "", *, wait_ready: bool = True) -> str:
        url, proc = start_sample_service(token=SAMPLE_TOKEN, faults=faults, wait_ready=wait_ready)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def auth_env() -> dict[str, str]:
    """The environment that gives the gate the sample service's API token."""
    return {"REVGATE_AUTH_TOKEN": SAMPLE_TOKEN}


@pytest.fixture
def checklist_variant(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the shipped checklist with some lines replaced (each must be there):
    ``checklist_variant({"ready_budget = 60": "ready_budget = 4"})``."""

    def make(replacements: dict[str, str], *, name: str = "checklist.toml") -> Path:
        text = (REPO / "checklist.toml").read_text()
        for old, new in replacements.items():
            assert old in text, f"{old!r} is not in the shipped checklist"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], object]]]:
    """Callbacks run at teardown, last registered first."""
    callbacks: list[Callable[[], object]] = []
    yield callbacks
    for cb in reversed(callbacks):
        cb()

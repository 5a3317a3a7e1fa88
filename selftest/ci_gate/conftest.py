"""Fixtures of the CI-gate and monitoring selftests: one sandbox, a fresh service per test.

The gate runs in a subprocess (``run_suite``) with a small checklist (health,
the API, the WebSocket) so that each run takes about a second; what is checked
is what CI and a person read: the exit code, the JUnit XML, the JSON summary,
the Markdown step summary, the terminal block, the traffic afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.control import Sandbox

CHECKLIST = """
[health]
ready_budget = {ready_budget}

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = {{ preferences = "object", concepts = "object", stats = "object" }}

[[websocket]]
id = "session"
path = "/ws/{{session}}"
send = {{ type = "ping", id = 1 }}
expect = {{ type = "pong", id = 1 }}
timeout = 3
"""


@dataclass
class Gate:
    """One run of the gate and the reports it wrote."""

    run: Any
    json: dict[str, Any]
    markdown: str

    @property
    def output(self) -> str:
        return self.run.output

    def check(self, name: str) -> dict[str, Any]:
        (found,) = [c for c in self.json["checks"] if c["name"] == name]
        return found


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=5, ready_timeout=15)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    """A service name of this test's own (traffic changes never leak between tests), at most
    30 characters so that a tag of up to 16 fits Cloud Run's 46 for tag and service name together."""
    import hashlib

    name = request.node.name.removeprefix("test_").replace("_", "-").replace("[", "-").rstrip("]")
    return "ci-" + name[:20].rstrip("-") + "-" + hashlib.sha1(name.encode()).hexdigest()[:6]


@pytest.fixture
def checklist(tmp_path: Path) -> Path:
    path = tmp_path / "checklist.toml"
    path.write_text(CHECKLIST.format(ready_budget=5))
    return path


@pytest.fixture
def gate(sandbox: Sandbox, run_suite: Callable[..., Any], tmp_path: Path, checklist: Path) -> Callable[..., Gate]:
    """``gate(url, *extra, env=...)``: the gate against the sandbox, with --report-json and a step summary file."""

    def run(url: str, *extra: str, env: dict[str, str] | None = None, timeout: float = 240) -> Gate:
        report = tmp_path / "report.json"
        summary = tmp_path / "step-summary.md"
        report.unlink(missing_ok=True)
        summary.unlink(missing_ok=True)
        result = run_suite(
            "tests_smoke",
            f"--revision-url={url}",
            f"--checklist={checklist}",
            f"--report-json={report}",
            *extra,
            env={**sandbox.env, "GITHUB_STEP_SUMMARY": str(summary), **(env or {})},
            timeout=timeout,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
        return Gate(result, data, summary.read_text() if summary.exists() else "")

    return run


def split_of(sandbox: Sandbox, service: str) -> dict[str, int]:
    """Revision -> percent it serves, read through the real run_v2 client."""
    out: dict[str, int] = {}
    for entry in sandbox.traffic(service):
        if entry["percent"]:
            out[entry["revision"]] = out.get(entry["revision"], 0) + entry["percent"]
    return out


def tags_of(sandbox: Sandbox, service: str) -> dict[str, str]:
    """Tag -> revision."""
    return {e["tag"]: e["revision"] for e in sandbox.traffic(service) if e["tag"]}

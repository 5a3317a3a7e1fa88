"""Fixtures of the logs checks' selftests: one local Cloud Run for the module, the gate run against it.

Each test deploys its own service (so entries and traffic never mix), and runs only the
``[[logs]]`` checks (``tests_logs``) of a checklist written for it, in a subprocess, with
``--service``; the traffic afterwards is read through the real ``run_v2`` client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.control import Sandbox

CHECKLIST = """
[health]
ready_budget = 5

{logs}
"""
ERRORS = """
[[logs]]
id = "errors"
"""


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("cloud-run"), seed=7, ready_timeout=15)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def service_name(request: pytest.FixtureRequest) -> str:
    """A service name of this test's own (Cloud Run names: lowercase, digits, '-')."""
    base = request.node.name.removeprefix("test_").replace("_", "-").lower()
    return "".join(c for c in base if c.isalnum() or c == "-")[:40].rstrip("-")


def send(url: str, count: int, path: str = "/health", token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            client.get(url + path, headers=headers)


@pytest.fixture
def gate(sandbox: Sandbox, run_suite: Callable[..., object], tmp_path: Path) -> Callable[..., object]:
    """``gate(service, url, logs=ERRORS, *args)``: the logs checks of ``service`` at ``url``."""

    def run(
        service: str,
        url: str,
        *args: str,
        logs: str = ERRORS,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        folders: tuple[str, ...] = ("tests_logs",),
    ) -> object:
        checklist = tmp_path / f"checklist-{len(list(tmp_path.glob('checklist-*.toml')))}.toml"
        checklist.write_text(CHECKLIST.format(logs=logs))
        extra = [] if any(a.startswith("--rollback") for a in args) else ["--rollback=off"]
        return run_suite(
            *folders,
            f"--checklist={checklist}",
            f"--revision-url={url}",
            f"--service={service}",
            *extra,
            *args,
            # a short settle margin unless the test sets one: the sandbox's log names arrive in order
            # unless a test delays one (production's default, 2 s, is Cloud Logging's buffer_window)
            env={**sandbox.env, "REVGATE_LOGS_SETTLE": "0.5", **(env or {})},
            timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def _no_logs_delay_after(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.set_logs_delay(0)  # every log name's, the per-name delays too


def serving(sandbox: Sandbox, service: str) -> dict[str, int]:
    return {t["revision"]: t["percent"] for t in sandbox.traffic(service) if t["percent"]}


def _client(sandbox: Sandbox) -> object:
    import os

    from revgate.google_clients import LOGGING_ENDPOINT_ENV, logging_client

    saved = os.environ.get(LOGGING_ENDPOINT_ENV)
    os.environ[LOGGING_ENDPOINT_ENV] = sandbox.env[LOGGING_ENDPOINT_ENV]
    try:
        client = logging_client()
    finally:
        if saved is None:
            os.environ.pop(LOGGING_ENDPOINT_ENV, None)
        else:
            os.environ[LOGGING_ENDPOINT_ENV] = saved
    return client


def read_entries(sandbox: Sandbox, query: str) -> list[object]:
    """The sandbox's Cloud Logging entries matching ``query``, read through the real client."""
    from revgate.google_clients import bounded_retry

    request = {"resource_names": [f"projects/{sandbox.project}"], "filter": query}
    return list(_client(sandbox).list_log_entries(request=request, timeout=10, retry=bounded_retry(deadline=5)))


def write_entry(
    sandbox: Sandbox, service: str, revision: str, text: str, *, severity: str, log: str = "run.googleapis.com%2Fstdout"
) -> None:
    """One entry of ``revision`` in ``log`` (a URL-encoded log id; stdout by default), written now through
    the real client (WriteLogEntries), as a Cloud Logging client library in the container writes it."""
    from google.cloud.logging_v2.types import LogEntry

    labels = {"project_id": sandbox.project, "service_name": service, "revision_name": revision,
              "location": sandbox.region, "configuration_name": service}
    _client(sandbox).write_log_entries(  # type: ignore[attr-defined]
        request={
            "log_name": f"projects/{sandbox.project}/logs/{log}",
            "resource": {"type": "cloud_run_revision", "labels": labels},
            "entries": [LogEntry(text_payload=text, severity=severity)],
        },
        timeout=10,
    )

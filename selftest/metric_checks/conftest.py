"""Fixtures of the metric checks' selftests: one local Cloud Run for the module, services with traffic.

Each test deploys its own service (so traffic and data never mix), sends
requests through the sandbox's router (which records them as Cloud
Monitoring data), and runs the gate in a subprocess against it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.control import Sandbox

REPO = Path(__file__).resolve().parents[2]

METRICS_DELAY = 2.0
"""The sandbox's visibility delay in these tests (never 0: data shows only after its 60 s sample ends plus this)."""
SAMPLED_TIMEOUT = f"--metrics-timeout={60 + METRICS_DELAY + 10:g}"
"""A wait that covers one 60 s sample period, the visibility delay and a poll."""


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("cloud-run"), seed=11, ready_timeout=15, metrics_delay=METRICS_DELAY)
    try:
        yield sb
    finally:
        sb.down()


def send(url: str, count: int, path: str = "/health") -> None:
    """``count`` GET requests to ``url + path`` (the router records each one)."""
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            client.get(url + path)


def seconds_to_sample_end() -> float:
    """Seconds until the current 60 s sample period of the sandbox's Monitoring ends."""
    return 60 - time.time() % 60


def kill_revision(sandbox: Sandbox, revision: str) -> None:
    """Kill the sample-service process of ``revision``, a child of this ``sandbox``'s daemon: it answers nothing more."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == sandbox.pid and b"sandbox.app" in argv and revision.encode() in argv:
            os.kill(int(entry.name), signal.SIGKILL)
            return
    raise AssertionError(f"no process of revision {revision}")


def wait_for_gauges(sandbox: Sandbox, service: str, revisions: tuple[str, ...], timeout: float = 135) -> None:
    """Default timeout: CPU needs two resource samples, which may fall in two 60 s sample periods."""
    # Wait until the sandbox's sampler recorded CPU and memory utilization of every revision, visibly.
    from revgate.metrics_query import CPU_UTILIZATIONS, MEMORY_UTILIZATIONS, Queries, Scope, Window

    scope = Scope(project=sandbox.project, region=sandbox.region, service=service, revisions=revisions)
    queries = Queries(monitoring_client(sandbox.env), scope, timeout=5, retry_deadline=5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        window = Window.ending_now(600)
        if all(
            set(revisions) <= set(queries.distributions(metric, window, revisions))
            for metric in (CPU_UTILIZATIONS, MEMORY_UTILIZATIONS)
        ):
            return
        time.sleep(1)
    raise AssertionError(f"the sandbox recorded no CPU/memory utilization for {revisions} within {timeout} s")


def monitoring_client(env: dict[str, str]) -> object:
    """The production Monitoring client (``revgate.google_clients``) pointed at the sandbox."""
    from revgate.google_clients import MONITORING_ENDPOINT_ENV, metric_client

    saved = os.environ.get(MONITORING_ENDPOINT_ENV)
    os.environ[MONITORING_ENDPOINT_ENV] = env[MONITORING_ENDPOINT_ENV]
    try:
        return metric_client()
    finally:
        if saved is None:
            os.environ.pop(MONITORING_ENDPOINT_ENV, None)
        else:
            os.environ[MONITORING_ENDPOINT_ENV] = saved


@pytest.fixture
def queries_for(sandbox: Sandbox) -> Callable[..., object]:
    """``queries_for(service, revisions, baseline=None)``: the suite's Queries on the real client, against the sandbox."""
    from revgate.metrics_query import Queries, Scope

    def make(service: str, revisions: tuple[str, ...], baseline: str | None = None) -> Queries:
        scope = Scope(project=sandbox.project, region=sandbox.region, service=service, revisions=revisions, baseline=baseline)
        return Queries(monitoring_client(sandbox.env), scope, timeout=5, retry_deadline=5)

    return make


@pytest.fixture
def traffic() -> Callable[..., None]:
    """``traffic(url, count)``: requests through the router, recorded as Cloud Monitoring data."""
    return send


@pytest.fixture
def gauges(sandbox: Sandbox) -> Callable[..., None]:
    """``gauges(service, revisions)``: wait until CPU and memory utilization of the revisions are recorded."""
    return lambda service, revisions: wait_for_gauges(sandbox, service, tuple(revisions))


@pytest.fixture
def service_name(request: pytest.FixtureRequest) -> str:
    """A service name of this test's own (Cloud Run names: lowercase, digits, '-')."""
    base = request.node.name.removeprefix("test_").replace("_", "-").lower()
    return "".join(c for c in base if c.isalnum() or c == "-")[:40].rstrip("-")


@pytest.fixture
def gate(sandbox: Sandbox, run_suite: Callable[..., object]) -> Callable[..., object]:
    """``gate(service, url, *args)`` runs the metric checks of ``service`` at ``url``, rollback off unless given."""

    def run(service: str, url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> object:
        extra = [] if any(a.startswith("--rollback") for a in args) else ["--rollback=off"]
        return run_suite(
            "tests_metrics",
            f"--revision-url={url}",
            f"--service={service}",
            *extra,
            *args,
            env={**sandbox.env, **(env or {})},
            timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def _default_metrics_delay_back(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.set_metrics_delay(METRICS_DELAY)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.timeout(300))


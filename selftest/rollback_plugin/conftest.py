"""Fixtures of the rollback selftests: one sandbox, a fresh service per test, the gate run against it.

Each test deploys its own service (so traffic changes never leak between
tests), runs the gate in a subprocess with ``--service`` and
``--rollback-report=PATH``, and reads the traffic afterwards through the real
``run_v2`` client (:meth:`Sandbox.traffic`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.control import Sandbox

REPO = Path(__file__).resolve().parents[2]

CHECKLIST = """
[health]
ready_budget = 5

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = {{ preferences = "object", concepts = "object", stats = "object" }}
{api_extra}

[[websocket]]
id = "session"
path = "/ws/{{session}}"
send = {{ type = "ping", id = 1 }}
expect = {{ type = "pong", id = 1 }}
timeout = {ws_timeout}
"""


@dataclass
class Gate:
    """One run of the gate and its JSON rollback record."""

    run: Any
    record: dict[str, Any]

    @property
    def output(self) -> str:
        return self.run.output


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=11, ready_timeout=15)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox with its call counts zeroed, no injected fault, no operation delay, etags answered ABORTED."""
    sandbox.reset_calls()
    sandbox.set_operation_delay(0)
    sandbox.set_etag_mode("ABORTED")
    yield sandbox
    sandbox.reset_calls()
    sandbox.set_operation_delay(0)
    sandbox.set_etag_mode("ABORTED")


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    """A service name of this test's own: at most 31 characters, so that a tag of up to 15 fits
    Cloud Run's limit of 46 for tag and service name together."""
    words = request.node.name.removeprefix("test_").replace("_", "-").replace("[", "-").rstrip("]")
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    return f"rb-{words[:21].rstrip('-')}-{digest}"


@pytest.fixture
def write_checklist(tmp_path: Path) -> Callable[..., Path]:
    """``write_checklist(advisory_api=True, ws_timeout=5)``: the checklist the gate uses in this test."""
    return lambda **kwargs: _write_checklist(tmp_path, **kwargs)


def _write_checklist(tmp_path: Path, *, advisory_api: bool = False, ws_timeout: float = 2.0) -> Path:
    path = tmp_path / "checklist.toml"
    path.write_text(
        CHECKLIST.format(api_extra="advisory = true" if advisory_api else "", ws_timeout=ws_timeout)
    )
    return path


def gate_args(sandbox: Sandbox, service: str, url: str, tmp_path: Path, *extra: str) -> list[str]:
    checklist = tmp_path / "checklist.toml"
    if not checklist.exists():
        _write_checklist(tmp_path)
    return [
        "tests_smoke",
        f"--revision-url={url}",
        f"--service={service}",
        f"--checklist={checklist}",
        f"--rollback-report={tmp_path / 'rollback.json'}",
        *extra,
    ]


@pytest.fixture
def gate(sb: Sandbox, run_suite: Callable[..., Any], tmp_path: Path) -> Callable[..., Gate]:
    """``gate(service, url, *extra_args)`` runs the gate against the sandbox; returns the run and the record."""

    def run(service: str, url: str, *extra: str, env: dict[str, str] | None = None) -> Gate:
        record_path = tmp_path / "rollback.json"
        record_path.unlink(missing_ok=True)
        result = run_suite(*gate_args(sb, service, url, tmp_path, *extra), env={**sb.env, **(env or {})})
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        return Gate(result, record)

    return run


@dataclass
class Traffic:
    """The service's ``traffic_statuses`` as read through the real run_v2 client."""

    entries: list[dict[str, Any]]

    @property
    def split(self) -> dict[str, int]:
        """Revision -> percent of the traffic it serves (0 % entries left out)."""
        out: dict[str, int] = {}
        for entry in self.entries:
            if entry["percent"]:
                out[entry["revision"]] = out.get(entry["revision"], 0) + entry["percent"]
        return out

    @property
    def tags(self) -> dict[str, tuple[str, str]]:
        """Tag -> (revision, URL)."""
        return {e["tag"]: (e["revision"], e["uri"]) for e in self.entries if e["tag"]}


@pytest.fixture
def traffic(sb: Sandbox) -> Callable[[str], Traffic]:
    """``traffic(service)``: the traffic now, read with the client."""
    return lambda service: Traffic(sb.traffic(service))


@pytest.fixture
def start_gate(sb: Sandbox, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start_gate(service, url, *extra)``: the gate as a background process (unbuffered output),
    for tests that act on the service while it runs."""
    procs: list[subprocess.Popen[str]] = []

    def start(service: str, url: str, *extra: str) -> subprocess.Popen[str]:
        proc = popen_gate(sb, gate_args(sb, service, url, tmp_path, *extra))
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def popen_gate(sandbox: Sandbox, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The gate (``pytest ARGS`` from the repository root) as a background process, unbuffered, against ``sandbox``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_"))}
    env.update(sandbox.env, PYTHONUNBUFFERED="1", **(extra_env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def canary(sb, service):
    """A canary at 10 % with a broken stats API by default; returns (stable, candidate, tag URL)."""

    def make(faults=("stats_500",)):
        stable = sb.deploy(service)
        candidate = sb.deploy(service, tag="canary", no_traffic=True, faults=list(faults))
        sb.update_traffic(service, to_revisions={stable: 90, candidate: 10})
        return stable, candidate, sb.tag_url(service, "canary")

    return make


FAILED_KEY = "revgate.dev/failed-revisions"
LAST_SERVING_KEY = "revgate.dev/last-serving"


@pytest.fixture
def annotations(sb: Sandbox) -> Callable[[str], dict[str, str]]:
    """``annotations(service)``: the service's annotations, read with the real client."""
    return lambda service: dict(sb.get_service(service).annotations)


@pytest.fixture
def set_annotations(sb: Sandbox) -> Callable[[str, dict[str, str]], None]:
    """``set_annotations(service, {...})``: a person's UpdateService with update_mask ``annotations``
    (the whole map as read, these keys set), through the real client."""
    import grpc
    from google.cloud import run_v2
    from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport
    from google.protobuf import field_mask_pb2

    def put(service: str, values: dict[str, str]) -> None:
        channel = grpc.insecure_channel(sb.env["CLOUD_RUN_API_ENDPOINT"])
        try:
            client = run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel))
            svc = client.get_service(name=sb.service_name(service), timeout=10)
            body = run_v2.Service(name=svc.name, etag=svc.etag, annotations={**dict(svc.annotations), **values})
            op = client.update_service(
                request=run_v2.UpdateServiceRequest(service=body, update_mask=field_mask_pb2.FieldMask(paths=["annotations"])),
                timeout=10,
            )
            op.result(timeout=30)
        finally:
            channel.close()

    return put


def wait_for_header(proc: subprocess.Popen[str], needle: str = "revgate rollback:", timeout: float = 60.0) -> str:
    """Read a background gate's output up to the report header line (the snapshot is taken by then)."""
    import time

    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError("no report header from the gate:\n" + "".join(seen))


def one_line(output: str, prefix: str) -> str:
    """The one line of the output that starts with ``prefix``; fails when there is none or more than one."""
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one line starting with {prefix!r} in:\n{output}"
    return lines[0]

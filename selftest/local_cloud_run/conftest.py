"""Fixtures of the sandbox's own tests: one shared sandbox, the real run_v2 clients pointed at it."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.control import Sandbox


def clients_for(env: dict[str, str]) -> dict[str, Any]:
    """The production client constructors (revgate) with the sandbox's endpoints."""
    from revgate import google_clients

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return {
            "services": google_clients.services_client(),
            "revisions": google_clients.revisions_client(),
            "metrics": google_clients.metric_client(),
        }
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox.up(tmp_path_factory.mktemp("sandbox"), seed=7, ready_timeout=15)
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture(scope="session")
def clients(sandbox: Sandbox) -> dict[str, Any]:
    return clients_for(sandbox.env)


@pytest.fixture(scope="session")
def services(clients: dict[str, Any]) -> Any:
    return clients["services"]


@pytest.fixture(scope="session")
def revisions(clients: dict[str, Any]) -> Any:
    return clients["revisions"]


@pytest.fixture(scope="session")
def two_revisions(sandbox: Sandbox) -> tuple[str, str, str]:
    """Service ``shop`` with ``shop-00001`` serving 100 % and ``shop-00002`` tagged ``canary`` (0 %)."""
    first = sandbox.deploy("shop")
    second = sandbox.deploy("shop", tag="canary", no_traffic=True)
    return "shop", first, second


@pytest.fixture
def fresh_service(sandbox: Sandbox, request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """A service of its own for a test that changes traffic: two Ready revisions, the first serving."""
    words = re.sub(r"[^a-z0-9-]+", "-", request.node.name.removeprefix("test_").replace("_", "-").lower())
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    name = f"svc-{words[:22].strip('-')}-{digest}"  # 33 characters at most: a tag of up to 13 fits the 46 limit
    first = sandbox.deploy(name)
    second = sandbox.deploy(name, tag="next", no_traffic=True)
    return name, first, second


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.timeout(120))

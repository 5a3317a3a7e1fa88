"""Fixtures of the "first, do no harm" selftests: the rollback selftests' sandbox and gate, plus
annotations read and written through the real ``run_v2`` client, as a person (or another tool) would."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from rollback_plugin.conftest import (  # noqa: F401 - fixtures
    REPO,
    Gate,
    Traffic,
    popen_gate,
    canary,
    gate,
    gate_args,
    sandbox,
    sb,
    service,
    start_gate,
    traffic,
    write_checklist,
)

FAILED_KEY = "revgate.dev/failed-revisions"
LAST_SERVING_KEY = "revgate.dev/last-serving"


def _client(sb):  # noqa: ANN001, ANN202
    from google.cloud import run_v2
    from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

    channel = grpc.insecure_channel(sb.env["CLOUD_RUN_API_ENDPOINT"])
    return run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel)), channel


@pytest.fixture
def annotations(sb) -> Callable[[str], dict[str, str]]:  # noqa: ANN001
    """``annotations(service)``: the service's annotations, read with the real client."""
    return lambda service: dict(sb.get_service(service).annotations)


@pytest.fixture
def set_annotations(sb) -> Callable[[str, dict[str, str]], None]:  # noqa: ANN001
    """``set_annotations(service, {...})``: a person's UpdateService with update_mask ``annotations``
    (the whole map, as read, with these keys set)."""
    from google.cloud import run_v2
    from google.protobuf import field_mask_pb2

    def put(service: str, values: dict[str, str]) -> None:
        client, channel = _client(sb)
        try:
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


def last_line(output: str, prefix: str) -> str:
    """The line of the output that starts with ``prefix`` (the one a user reads); fails when none."""
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in:\n{output}"
    return lines[-1]

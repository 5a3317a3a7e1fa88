"""The fake Admin API follows Cloud Run's documented behaviour (docs/cloud-run-fidelity.md), through the real
google-cloud-run clients: update_mask, the echoed template, etag modes, paging, tag rules, URLs, startup probes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.protobuf import field_mask_pb2

from sandbox.control import Sandbox

REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
T = 10


def _pin(revision: str, percent: int, tag: str = "") -> run_v2.TrafficTarget:
    return run_v2.TrafficTarget(type_=REVISION, revision=revision, percent=percent, tag=tag)


def _get(services: Any, sandbox: Sandbox, name: str) -> run_v2.Service:
    return services.get_service(name=sandbox.service_name(name), timeout=T)


def _send(services: Any, body: run_v2.Service, paths: list[str] | None = None, **kwargs: Any) -> run_v2.Service:
    mask = field_mask_pb2.FieldMask(paths=paths) if paths is not None else None
    request = run_v2.UpdateServiceRequest(service=body, update_mask=mask, **kwargs)
    return services.update_service(request=request, timeout=T).result(timeout=T)


def test_template_is_echoed_with_its_revision(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = _get(services, sandbox, name)
    assert svc.template.revision == second  # the latest deploy's template
    container = svc.template.containers[0]
    assert container.startup_probe.tcp_socket.port == 8080  # the default TCP startup probe
    assert not container.startup_probe.http_get.path


def test_traffic_mask_changes_traffic_only(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = _get(services, sandbox, name)
    body = run_v2.Service(name=svc.name, etag=svc.etag, traffic=[_pin(first, 50), _pin(second, 50, "next")])
    body.template.revision = first  # ignored: the mask names traffic only
    body.template.containers.append(run_v2.Container(image="elsewhere/other"))
    result = _send(services, body, ["traffic"])
    assert [(t.revision, t.percent) for t in result.traffic_statuses] == [(first, 50), (second, 50)]
    assert result.template.revision == second
    assert result.generation == svc.generation + 1 and result.etag != svc.etag


def test_echoed_template_of_another_configuration_is_already_exists(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]
) -> None:
    # google-cloud-python#11870: GetService, change something, send the whole service back
    name, first, second = fresh_service
    svc = _get(services, sandbox, name)
    svc.template.containers[0].env.append(run_v2.EnvVar(name="SANDBOX_FAULTS", value="stats_500"))
    svc.traffic[0].percent, svc.traffic[1].percent = 100, 0
    with pytest.raises(exceptions.AlreadyExists) as info:
        _send(services, svc)
    assert info.value.message == f"Revision named '{second}' with different configuration already exists."
    assert _get(services, sandbox, name).etag == svc.etag  # nothing changed


def test_echoed_template_after_a_deploy_brings_its_revision_back(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]
) -> None:
    # why revgate never sends the template: a copy read before a deploy undoes the deploy's template
    name, first, second = fresh_service
    stale = _get(services, sandbox, name)
    third = sandbox.deploy(name, tag="third", no_traffic=True)
    fresh = _get(services, sandbox, name)
    assert fresh.template.revision == third
    stale.etag = fresh.etag
    result = _send(services, stale)
    assert result.template.revision == second
    assert "third" not in {t.tag for t in result.traffic}  # and the stale traffic dropped the new tag


def test_unknown_mask_path_is_invalid(sandbox: Sandbox, services: Any, two_revisions: tuple[str, str, str]) -> None:
    name, first, second = two_revisions
    svc = _get(services, sandbox, name)
    with pytest.raises(exceptions.InvalidArgument) as info:
        _send(services, run_v2.Service(name=svc.name, etag=svc.etag), ["trafic"])
    assert "not a field of Service" in info.value.message


@pytest.mark.parametrize(
    "mode, error", [("ABORTED", exceptions.Aborted), ("FAILED_PRECONDITION", exceptions.FailedPrecondition), ("NONE", None)]
)
def test_etag_enforcement_modes(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str], mode: str, error: Any
) -> None:
    name, first, second = fresh_service
    stale = _get(services, sandbox, name)
    sandbox.update_traffic(name, to_revisions={first: 60, second: 40})
    sandbox.set_etag_mode(mode)
    try:
        body = run_v2.Service(name=stale.name, etag=stale.etag, traffic=[_pin(second, 100, "next")])
        if error is None:
            result = _send(services, body, ["traffic"])
            assert [(t.revision, t.percent) for t in result.traffic_statuses] == [(second, 100)]
        else:
            with pytest.raises(error) as info:
                _send(services, body, ["traffic"])
            assert "etag" in info.value.message
            assert [t["percent"] for t in sandbox.traffic(name)] == [60, 40, 0]
    finally:
        sandbox.set_etag_mode("ABORTED")


def test_list_revisions_is_paged_in_no_creation_order(sandbox: Sandbox, revisions: Any) -> None:
    made = [sandbox.deploy("paged") for _ in range(5)]
    before = sandbox.calls("ListRevisions")
    pager = revisions.list_revisions(
        request=run_v2.ListRevisionsRequest(parent=sandbox.service_name("paged"), page_size=2), timeout=T
    )
    listed = [r.name.rsplit("/", 1)[-1] for r in pager]
    assert sorted(listed) == made
    assert listed != made and listed != made[::-1]
    assert sandbox.calls("ListRevisions") - before == 3  # pages of 2, 2 and 1


def test_tag_and_service_name_rules(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = _get(services, sandbox, name)
    too_long = "t" * (47 - len(name))
    for tag, message in [
        (too_long, "Combined traffic tag and service name cannot exceed 46 characters"),
        ("Bad_Tag", "invalid"),
        ("ends-", "invalid"),
    ]:
        with pytest.raises(exceptions.InvalidArgument) as info:
            _send(services, run_v2.Service(name=svc.name, etag=svc.etag, traffic=[_pin(first, 100), _pin(second, 0, tag)]), ["traffic"])
        assert message in info.value.message
    ok = "t" * (46 - len(name))
    _send(services, run_v2.Service(name=svc.name, etag=svc.etag, traffic=[_pin(first, 100), _pin(second, 0, ok)]), ["traffic"])
    with pytest.raises(Exception, match="Must begin with a letter"):
        sandbox.deploy("9lives")


def test_same_revision_twice_is_accepted(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = _get(services, sandbox, name)
    result = _send(
        services,
        run_v2.Service(name=svc.name, etag=svc.etag, traffic=[_pin(first, 70), _pin(first, 20), _pin(second, 10, "next")]),
        ["traffic"],
    )
    assert [(t.revision, t.percent) for t in result.traffic_statuses] == [(first, 70), (first, 20), (second, 10)]
    seen = {first: 0, second: 0}
    with httpx.Client(base_url=sandbox.service_url(name), timeout=5) as http:
        for _ in range(300):
            seen[http.get("/health").headers["x-revision"]] += 1
    assert 4 <= 100 * seen[second] / 300 <= 18, seen  # 90 % (70 + 20) and 10 %


def test_both_url_styles_are_served_by_host(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = _get(services, sandbox, name)
    assert list(svc.urls)[0] == svc.uri
    hashed, deterministic = list(svc.urls)[1:]
    port = svc.uri.rsplit(":", 1)[1]
    assert hashed == f"http://{name}-" + hashed.split(f"{name}-", 1)[1] and hashed.endswith(f"-ew.a.run.app:{port}")
    assert deterministic.endswith(f".{sandbox.region}.run.app:{port}")
    number = deterministic.split(f"{name}-", 1)[1].split(".", 1)[0]
    assert number.isdigit() and len(number) == 12
    with httpx.Client(base_url=svc.uri, timeout=5) as http:
        for url in (hashed, deterministic):
            host = url.removeprefix("http://")
            assert http.get("/health", headers={"Host": host}).headers["x-revision"] == first
            assert http.get("/health", headers={"Host": "next---" + host}).headers["x-revision"] == second
            assert http.get("/health", headers={"Host": "nope---" + host}).status_code == 404


def test_startup_probe_tcp_by_default_http_when_asked(sandbox: Sandbox, revisions: Any) -> None:
    sandbox.deploy("probes")
    tcp = sandbox.deploy("probes", tag="tcp", no_traffic=True, faults=["health_500"])
    http = sandbox.deploy("probes", tag="http", no_traffic=True, faults=["health_500"], startup_probe="http", ready_timeout=1)
    states = {}
    for rev in (tcp, http):
        got = revisions.get_revision(name=f"{sandbox.service_name('probes')}/revisions/{rev}", timeout=T)
        states[rev] = [c for c in got.conditions if c.type_ == "Ready"][0]
    assert states[tcp].state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert states[http].state == run_v2.Condition.State.CONDITION_FAILED
    assert "/health" in states[http].message
    assert httpx.get(sandbox.tag_url("probes", "tcp") + "/health", timeout=5).status_code == 500  # Ready, yet 500

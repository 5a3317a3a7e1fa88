"""The fake Admin API v2 through the real google-cloud-run clients over gRPC."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from revgate.google_clients import bounded_retry
from sandbox.control import Sandbox

LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
T = 10  # seconds: every call passes an explicit timeout


def _update(services: Any, svc: run_v2.Service, targets: list[run_v2.TrafficTarget], **kwargs: Any) -> Any:
    body = run_v2.Service(name=svc.name, etag=svc.etag, traffic=targets)
    return services.update_service(request=run_v2.UpdateServiceRequest(service=body, **kwargs), timeout=T)


def _pin(revision: str, percent: int, tag: str = "") -> run_v2.TrafficTarget:
    return run_v2.TrafficTarget(type_=REVISION, revision=revision, percent=percent, tag=tag)


def test_get_service_answers_cloud_run_fields(sandbox: Sandbox, services: Any, two_revisions: tuple[str, str, str]) -> None:
    name, first, second = two_revisions
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    assert svc.name == "projects/sandbox-project/locations/europe-west1/services/shop"
    assert svc.uri == sandbox.service_url(name) and svc.uri.startswith("http://127.0.0.1:")
    assert svc.etag
    assert svc.latest_ready_revision == f"{svc.name}/revisions/{second}"
    assert svc.latest_created_revision == f"{svc.name}/revisions/{second}"
    assert svc.terminal_condition.type_ == "Ready"
    assert svc.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    # deploy --no-traffic pinned the LATEST entry to the revision that was serving
    assert [(t.type_, t.revision, t.percent, t.tag) for t in svc.traffic] == [
        (REVISION, first, 100, ""),
        (REVISION, second, 0, "canary"),
    ]
    statuses = [(t.revision, t.percent, t.tag, t.uri) for t in svc.traffic_statuses]
    assert statuses == [(first, 100, "", ""), (second, 0, "canary", sandbox.tag_url(name, "canary"))]


def test_list_services_and_revisions(sandbox: Sandbox, services: Any, revisions: Any, two_revisions: tuple[str, str, str]) -> None:
    name, first, second = two_revisions
    parent = f"projects/{sandbox.project}/locations/{sandbox.region}"
    listed = [s.name for s in services.list_services(parent=parent, timeout=T)]
    assert sandbox.service_name(name) in listed
    revs = list(revisions.list_revisions(parent=sandbox.service_name(name), timeout=T))
    assert sorted(r.name.rsplit("/", 1)[-1] for r in revs) == sorted([first, second])  # in no documented order
    rev = revisions.get_revision(name=f"{sandbox.service_name(name)}/revisions/{first}", timeout=T)
    assert rev.service == name
    assert rev.create_time.timestamp() <= revs[0].create_time.timestamp()
    ready = [c for c in rev.conditions if c.type_ == "Ready"]
    assert ready and ready[0].state == run_v2.Condition.State.CONDITION_SUCCEEDED


def test_not_ready_revision_has_failed_ready_condition(sandbox: Sandbox, revisions: Any, services: Any) -> None:
    sandbox.deploy("broken")
    # an HTTP startup probe (asked for at deploy) that never sees /health answer 200
    bad = sandbox.deploy("broken", faults=["startup_delay:9999"], ready_timeout=0.5, startup_probe="http")
    marked = sandbox.deploy("broken", not_ready=True, tag="dead", no_traffic=True)
    for name in (bad, marked):
        rev = revisions.get_revision(name=f"{sandbox.service_name('broken')}/revisions/{name}", timeout=T)
        ready = [c for c in rev.conditions if c.type_ == "Ready"][0]
        assert ready.state == run_v2.Condition.State.CONDITION_FAILED
        assert ready.message
    svc = services.get_service(name=sandbox.service_name("broken"), timeout=T)
    assert svc.latest_ready_revision.endswith("/broken-00001")
    assert svc.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    # the service URL still reaches the Ready revision; the dead tag answers 503
    assert httpx.get(sandbox.service_url("broken") + "/health", timeout=5).headers["x-revision"] == "broken-00001"
    assert httpx.get(sandbox.tag_url("broken", "dead") + "/health", timeout=5).status_code == 503


@pytest.mark.parametrize(
    "name",
    [
        "projects/other-project/locations/europe-west1/services/shop",
        "projects/sandbox-project/locations/us-central1/services/shop",
        "projects/sandbox-project/locations/europe-west1/services/nope",
    ],
)
def test_unknown_project_location_or_service_is_not_found(services: Any, two_revisions: Any, name: str) -> None:
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=name, timeout=T)


def test_unknown_revision_is_not_found(sandbox: Sandbox, revisions: Any, two_revisions: Any) -> None:
    with pytest.raises(exceptions.NotFound):
        revisions.get_revision(name=f"{sandbox.service_name('shop')}/revisions/shop-09999", timeout=T)


def test_update_service_shifts_traffic_for_the_next_request(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]
) -> None:
    name, first, second = fresh_service
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    before = sandbox.calls("UpdateService")
    with httpx.Client(base_url=sandbox.service_url(name), timeout=5) as http:  # one kept-alive connection
        assert http.get("/health").headers["x-revision"] == first
        op = _update(services, svc, [_pin(second, 100), _pin(second, 0, "next")])
        result = op.result(timeout=T)
        assert http.get("/health").headers["x-revision"] == second
    assert isinstance(op.metadata, run_v2.Service)
    assert result.etag != svc.etag
    assert [(t.revision, t.percent, t.tag) for t in result.traffic_statuses] == [(second, 100, ""), (second, 0, "next")]
    assert sandbox.calls("UpdateService") == before + 1


def test_stale_etag_is_aborted_as_a_conflict(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    stale = services.get_service(name=sandbox.service_name(name), timeout=T)
    _update(services, stale, [_pin(first, 50), _pin(second, 50, "next")]).result(timeout=T)
    with pytest.raises(exceptions.Conflict) as info:
        _update(services, stale, [_pin(second, 100, "next")])
    assert isinstance(info.value, exceptions.Aborted)
    assert "etag" in info.value.message
    assert [t["percent"] for t in sandbox.traffic(name)] == [50, 50]


def test_concurrent_updates_with_one_etag_exactly_one_wins(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]
) -> None:
    name, first, second = fresh_service
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(percent: int) -> None:
        barrier.wait()
        try:
            _update(services, svc, [_pin(first, percent), _pin(second, 100 - percent, "next")]).result(timeout=T)
            outcomes.append(f"won:{percent}")
        except exceptions.Aborted:
            outcomes.append("aborted")

    threads = [threading.Thread(target=attempt, args=(p,)) for p in (10, 20, 30, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(outcomes) == 4 and len(winners) == 1, outcomes
    assert sandbox.traffic(name)[0]["percent"] == int(winners[0].split(":")[1])


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (lambda f, s: [_pin(f, 60), _pin(s, 30, "next")], "add up to 90"),
        (lambda f, s: [_pin("ghost-00001", 100), _pin(s, 0, "next")], "not found"),
        (lambda f, s: [_pin(f, 100, "next"), _pin(s, 0, "next")], "more than one"),
        (lambda f, s: [_pin(f, 100), _pin(s, 0, "Bad_Tag")], "invalid"),
    ],
    ids=["sum-not-100", "unknown-revision", "duplicate-tag", "bad-tag"],
)
def test_invalid_traffic_is_refused_with_a_message(
    sandbox: Sandbox, services: Any, two_revisions: tuple[str, str, str], targets: Any, message: str
) -> None:
    name, first, second = two_revisions
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    with pytest.raises(exceptions.InvalidArgument) as info:
        _update(services, svc, targets(first, second))
    assert message in info.value.message
    assert services.get_service(name=sandbox.service_name(name), timeout=T).etag == svc.etag


def test_traffic_to_a_not_ready_revision_is_refused(sandbox: Sandbox, services: Any) -> None:
    sandbox.deploy("gated")
    dead = sandbox.deploy("gated", not_ready=True, tag="dead", no_traffic=True)
    svc = services.get_service(name=sandbox.service_name("gated"), timeout=T)
    with pytest.raises(exceptions.InvalidArgument) as info:
        _update(services, svc, [_pin(dead, 100, "dead")])
    assert "not Ready" in info.value.message


def test_validate_only_changes_nothing_and_is_counted_apart(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]
) -> None:
    name, first, second = fresh_service
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    applied, dry = sandbox.calls("UpdateService"), sandbox.calls("UpdateService:validate_only")
    result = _update(services, svc, [_pin(second, 100, "next")], validate_only=True).result(timeout=T)
    assert [t.percent for t in result.traffic] == [100]
    after = services.get_service(name=sandbox.service_name(name), timeout=T)
    assert after.etag == svc.etag
    assert [(t["revision"], t["percent"]) for t in sandbox.traffic(name)] == [(first, 100), (second, 0)]
    assert sandbox.calls("UpdateService") == applied
    assert sandbox.calls("UpdateService:validate_only") == dry + 1


def test_slow_operation_is_polled_until_done(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    polls = sandbox.calls("GetOperation")
    sandbox.set_operation_delay(1.0)
    try:
        op = _update(services, svc, [_pin(second, 100, "next")])
        assert not op.done(retry=bounded_retry(deadline=2))
        assert services.get_service(name=sandbox.service_name(name), timeout=T).reconciling
        assert sandbox.traffic(name)[0]["revision"] == first  # still in force until the operation is done
        started = time.monotonic()
        result = op.result(timeout=T)
        assert time.monotonic() - started > 0.3
    finally:
        sandbox.set_operation_delay(0.0)
    assert [(t.revision, t.percent) for t in result.traffic_statuses][0] == (second, 100)
    assert sandbox.calls("GetOperation") > polls


def test_injected_transient_unavailable_then_success(
    sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]
) -> None:
    name, first, second = fresh_service
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    before = sandbox.calls("UpdateService")
    sandbox.inject("UpdateService", "UNAVAILABLE", 1)
    body = run_v2.Service(name=svc.name, etag=svc.etag, traffic=[_pin(second, 100, "next")])
    op = services.update_service(service=body, retry=bounded_retry(deadline=5), timeout=T)
    op.result(timeout=T)
    assert sandbox.calls("UpdateService") == before + 2
    assert sandbox.traffic(name)[0]["revision"] == second


def test_injected_persistent_failure(sandbox: Sandbox, services: Any, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    svc = services.get_service(name=sandbox.service_name(name), timeout=T)
    sandbox.inject("UpdateService", "PERMISSION_DENIED", -1)
    try:
        for _ in range(3):
            with pytest.raises(exceptions.PermissionDenied):
                _update(services, svc, [_pin(second, 100, "next")])
        sandbox.inject("UpdateService", "UNAVAILABLE", -1)
        with pytest.raises(exceptions.RetryError):
            body = run_v2.Service(name=svc.name, etag=svc.etag, traffic=[_pin(second, 100, "next")])
            services.update_service(service=body, retry=bounded_retry(deadline=0.5), timeout=T)
    finally:
        sandbox.inject("UpdateService", "UNAVAILABLE", 0)
    assert sandbox.traffic(name)[0]["revision"] == first

"""Sandbox state → the real ``run_v2`` messages (and back for traffic targets).

Resource names are Cloud Run's: ``projects/P/locations/R/services/S`` and
``.../services/S/revisions/REV``. ``latest_ready_revision`` and
``latest_created_revision`` are full revision names; traffic targets name
revisions by their short name, as Cloud Run answers.
"""

from __future__ import annotations

import datetime as dt

from google.cloud import run_v2
from google.protobuf import duration_pb2

from sandbox.ports import HOST
from sandbox.revision_settings import repository
from sandbox.state import LATEST, REVISION, RevisionState, SandboxState, ServiceState, TrafficEntry
from sandbox.urls import styled_hosts

__all__ = [
    "service_name",
    "revision_name",
    "service_uri",
    "to_service",
    "to_revision",
    "from_traffic_targets",
    "template_config",
    "revision_template",
    "service_urls",
]

FAULTS_ENV = "SANDBOX_FAULTS"
"""The container environment variable that carries a revision's faults in its template."""

_TYPE = run_v2.TrafficTargetAllocationType
_STATE = run_v2.Condition.State


def service_name(state: SandboxState, service: str) -> str:
    return f"projects/{state.project}/locations/{state.region}/services/{service}"


def revision_name(state: SandboxState, service: str, revision: str) -> str:
    return f"{service_name(state, service)}/revisions/{revision}"


def service_uri(port: int) -> str:
    return f"http://{HOST}:{port}"


def _ts(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _type(entry: TrafficEntry) -> _TYPE:
    return _TYPE.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST if entry.type == LATEST else _TYPE.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION


def service_urls(state: SandboxState, svc: ServiceState) -> list[str]:
    """``service.urls``: the loopback URL, then both Cloud Run styles on the same port (:mod:`sandbox.urls`)."""
    return [service_uri(svc.port), *(f"http://{host}:{svc.port}" for host in styled_hosts(state.project, state.region, svc.name))]


def _container(rev: RevisionState | None, *, resolved: bool = True) -> run_v2.Container:
    """The ingress container: as the revision runs it (``resolved``: the image as its digest URL) or
    as the service's template holds it (the image as the deploy named it).

    Cloud Run v2 has no image-digest field on a Revision (revision.proto, k8s.min.proto
    ``Container.image``): the revision's container names the image it runs by digest, "If you
    deploy from a container image tag, it will be resolved to a digest"
    (https://cloud.google.com/artifact-registry/docs/integrate-cloud-run); the service's template
    keeps the image as deployed.
    """
    faults = list(rev.faults) if rev is not None else []
    probe = rev.startup_probe if rev is not None else "tcp"
    port = rev.container_port if rev is not None else 8080
    if probe == "http":
        startup = run_v2.Probe(http_get=run_v2.HTTPGetAction(path="/health", port=port), period_seconds=10, failure_threshold=3)
    else:  # the default TCP startup probe, as Cloud Run fills it in
        startup = run_v2.Probe(
            tcp_socket=run_v2.TCPSocketAction(port=port), timeout_seconds=240, period_seconds=240, failure_threshold=1
        )
    env = [run_v2.EnvVar(name=FAULTS_ENV, value=",".join(faults))] if faults else []
    image, mounts = "sandbox/app", []
    if rev is not None:
        image = f"{repository(rev.image)}@{rev.image_digest}" if resolved and rev.image_digest else rev.image
        env += [run_v2.EnvVar(name=k, value=v) for k, v in rev.env.items()]
        for name, ref in rev.secrets.items():
            if name.startswith("/"):
                continue
            secret, _, version = ref.rpartition(":")
            env.append(run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(
                secret_key_ref=run_v2.SecretKeySelector(secret=secret, version=version))))
        mounts = [run_v2.VolumeMount(name=vol, mount_path=path.rsplit("/", 1)[0]) for vol, path in _secret_files(rev)]
    return run_v2.Container(
        image=image,
        env=env,
        resources=run_v2.ResourceRequirements(limits={"cpu": rev.cpu, "memory": rev.memory}) if rev is not None else None,
        ports=[run_v2.ContainerPort(name="http1", container_port=port)],
        volume_mounts=mounts,
        startup_probe=startup,
    )


def _secret_files(rev: RevisionState) -> list[tuple[str, str]]:
    """``(volume name, file path)`` of each secret mounted as a file: one secret volume per file."""
    return [(f"secret-{i}", path) for i, path in enumerate(p for p in rev.secrets if p.startswith("/"))]


def _volumes(rev: RevisionState | None) -> list[run_v2.Volume]:
    """Secret volumes (k8s.min.proto ``SecretVolumeSource``: ``items`` map a version to a file under the mount path)."""
    if rev is None:
        return []
    volumes = []
    for vol, path in _secret_files(rev):
        secret, _, version = rev.secrets[path].rpartition(":")
        volumes.append(run_v2.Volume(name=vol, secret=run_v2.SecretVolumeSource(
            secret=secret, items=[run_v2.VersionToPath(path=path.rsplit("/", 1)[1], version=version)])))
    return volumes


def _settings(rev: RevisionState | None) -> dict[str, object]:
    """The fields a Revision and a RevisionTemplate share (revision.proto, revision_template.proto)."""
    if rev is None:
        return {}
    return {
        "scaling": run_v2.RevisionScaling(min_instance_count=rev.min_instances, max_instance_count=rev.max_instances),
        "timeout": duration_pb2.Duration(seconds=rev.timeout_s),
        "service_account": rev.service_account,
        "max_instance_request_concurrency": rev.concurrency,
        "volumes": _volumes(rev),
    }


def revision_template(rev: RevisionState | None, *, name: str = "") -> run_v2.RevisionTemplate:
    """The service's ``template`` when it describes ``rev`` (``name``: the template's ``revision``)."""
    return run_v2.RevisionTemplate(revision=name, containers=[_container(rev, resolved=False)], **_settings(rev))


def template_config(template: run_v2.RevisionTemplate) -> bytes:
    """What a template fixes (every field but the revision's name), comparable with
    :func:`revision_template` of a revision: a template echoed from GetService matches its revision."""
    pb = run_v2.RevisionTemplate.pb(template)
    copy = type(pb)()
    copy.CopyFrom(pb)
    copy.revision = ""
    return copy.SerializeToString(deterministic=True)


def _ready_condition(state: SandboxState, svc: ServiceState) -> run_v2.Condition:
    latest = state.revisions.get(svc.latest_created_revision)
    when = _ts(svc.update_time)
    if svc.reconciling:
        return run_v2.Condition(type_="Ready", state=_STATE.CONDITION_RECONCILING, last_transition_time=when)
    if svc.failure:
        return run_v2.Condition(
            type_="Ready",
            state=_STATE.CONDITION_FAILED,
            reason=run_v2.Condition.CommonReason.UNKNOWN,
            message=svc.failure,
            last_transition_time=when,
        )
    if latest is not None and not latest.ready:
        return run_v2.Condition(
            type_="Ready",
            state=_STATE.CONDITION_FAILED,
            reason=run_v2.Condition.CommonReason.REVISION_FAILED,
            message=f"Revision '{latest.name}' is not ready and cannot serve traffic. {latest.message}".strip(),
            last_transition_time=when,
        )
    return run_v2.Condition(type_="Ready", state=_STATE.CONDITION_SUCCEEDED, last_transition_time=when)


def to_service(state: SandboxState, svc: ServiceState) -> run_v2.Service:
    """The ``run_v2.Service`` Cloud Run would answer for ``svc``."""
    uri = service_uri(svc.port)
    statuses = []
    for e in svc.traffic_status:
        status = run_v2.TrafficTargetStatus(type_=_type(e), revision=e.revision, percent=e.percent, tag=e.tag)
        if e.tag and e.tag in svc.tag_ports:
            status.uri = service_uri(svc.tag_ports[e.tag])
        statuses.append(status)
    ready = _ready_condition(state, svc)
    return run_v2.Service(
        name=service_name(state, svc.name),
        uid=svc.name,
        generation=svc.generation,
        observed_generation=svc.generation,
        create_time=_ts(svc.create_time),
        update_time=_ts(svc.update_time),
        creator="sandbox@local",
        last_modifier="sandbox@local",
        ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL,
        launch_stage="GA",
        template=revision_template(state.revisions.get(svc.template_revision), name=svc.template_revision),
        traffic=[
            run_v2.TrafficTarget(
                type_=_type(e), revision=e.revision if e.type == REVISION else "", percent=e.percent, tag=e.tag
            )
            for e in svc.traffic
        ],
        traffic_statuses=statuses,
        uri=uri,
        urls=service_urls(state, svc),
        latest_ready_revision=revision_name(state, svc.name, svc.latest_ready_revision) if svc.latest_ready_revision else "",
        latest_created_revision=(
            revision_name(state, svc.name, svc.latest_created_revision) if svc.latest_created_revision else ""
        ),
        terminal_condition=ready,
        conditions=[ready],
        reconciling=svc.reconciling,
        etag=svc.etag,
        annotations=dict(svc.annotations),
        invoker_iam_disabled=svc.invoker_iam_disabled,
        scaling=run_v2.ServiceScaling(min_instance_count=svc.scaling_min, max_instance_count=svc.scaling_max),
    )


def to_revision(state: SandboxState, rev: RevisionState) -> run_v2.Revision:
    """The ``run_v2.Revision`` Cloud Run would answer for ``rev``."""
    if rev.ready:
        ready = run_v2.Condition(type_="Ready", state=_STATE.CONDITION_SUCCEEDED, last_transition_time=_ts(rev.create_time))
    elif rev.reason == "Pending":
        ready = run_v2.Condition(
            type_="Ready", state=_STATE.CONDITION_PENDING, message=rev.message,
            revision_reason=run_v2.Condition.RevisionReason.PENDING,
        )
    else:
        ready = run_v2.Condition(
            type_="Ready",
            state=_STATE.CONDITION_FAILED,
            message=rev.message,
            revision_reason=run_v2.Condition.RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
            last_transition_time=_ts(rev.create_time),
        )
    annotations = {"sandbox.revgate/faults": ",".join(rev.faults)} if rev.faults else {}
    return run_v2.Revision(
        name=revision_name(state, rev.service, rev.name),
        uid=rev.name,
        generation=1,
        observed_generation=1,
        create_time=_ts(rev.create_time),
        update_time=_ts(rev.create_time),
        service=rev.service,
        annotations=annotations,
        containers=[_container(rev)],
        **_settings(rev),
        conditions=[ready],
        reconciling=False,
        launch_stage="GA",
        etag='"' + rev.name + '"',
    )


def from_traffic_targets(targets: list[run_v2.TrafficTarget]) -> list[TrafficEntry]:
    """Requested traffic targets → entries; an unspecified type with a revision counts as REVISION."""
    entries = []
    for t in targets:
        kind = t.type_
        if kind == _TYPE.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:
            type_ = LATEST
        elif kind == _TYPE.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION or t.revision:
            type_ = REVISION
        else:
            type_ = "UNSPECIFIED"
        entries.append(
            TrafficEntry(type=type_, revision=t.revision.rsplit("/", 1)[-1], percent=t.percent, tag=t.tag)
        )
    return entries

"""The sandbox's control plane: state changes behind one lock, persisted, pushed to the router.

:class:`SandboxCore` owns the :class:`~sandbox.state.SandboxState`. The fake
Admin API (``UpdateService``) and the control service (``deploy``,
``update-traffic``) both go through it. An ``UpdateService`` changes the
requested traffic and the etag at once; the traffic in force
(``traffic_statuses`` and the router) follows when its long-running operation
completes: immediately, or ``operation_delay`` seconds later.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.convert import revision_template, template_config
from sandbox.ports import pick_port
from sandbox.revision_settings import KEYS, apply_service_settings, deploy_settings, image_digest, process_env, split_service_settings
from sandbox.processes import ProcessManager
from sandbox.routes import Backend, RoutingTable, ServiceRoute, TagRoute
from sandbox.urls import TAG_SEPARATOR, styled_hosts
from sandbox.state import LATEST, RevisionState, SandboxState, ServiceState, TrafficEntry, save_state
from sandbox.traffic import (
    TrafficError,
    resolve_traffic,
    split,
    traffic_after_deploy,
    validate_service_name,
    validate_tag,
    validate_traffic,
)

__all__ = [
    "ETAG_MODES",
    "AlreadyExists",
    "DeployResult",
    "EtagMismatch",
    "FailedPrecondition",
    "NotFound",
    "Operation",
    "SandboxCore",
    "Unimplemented",
]

ETAG_MODES = ("ABORTED", "FAILED_PRECONDITION", "NONE")
"""How a stale etag is answered: ABORTED (AIP-154), FAILED_PRECONDITION (older Google APIs), or not checked."""

log = logging.getLogger("sandbox.core")


class NotFound(LookupError):
    """No such service or revision (NOT_FOUND)."""


class EtagMismatch(RuntimeError):
    """The request's etag is not the service's current one (``code``: ABORTED or FAILED_PRECONDITION)."""

    def __init__(self, message: str, *, code: str = "ABORTED") -> None:
        super().__init__(message)
        self.code = code


class AlreadyExists(RuntimeError):
    """A template names an existing revision with another configuration (ALREADY_EXISTS)."""


class FailedPrecondition(RuntimeError):
    """The request cannot be carried out in the resource's present state (FAILED_PRECONDITION)."""


class Unimplemented(RuntimeError):
    """Something Cloud Run does that the sandbox does not (UNIMPLEMENTED)."""


@dataclass
class Operation:
    """A long-running ``UpdateService`` operation."""

    name: str
    service: str
    done_at: float
    snapshot: ServiceState
    done: bool = False
    error: str = ""
    """The failed reconcile's message (the operation is done with an error), or ''."""


@dataclass
class DeployResult:
    revision: str
    ready: bool
    message: str


RESERVED_ANNOTATION_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")
"""``Service.annotations``: "Cloud Run API v2 does not support annotations with run.googleapis.com,
cloud.googleapis.com, serving.knative.dev, or autoscaling.knative.dev namespaces" (service.proto)."""
ANNOTATIONS_TOTAL_LIMIT = 256 * 1024
"""Kubernetes: "The total size of annotations (keys and values) must be 256 KiB or smaller"; the
proto says the field "follows Kubernetes annotations' namespacing, limits, and rules"."""
_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def validate_annotations(annotations: dict[str, str]) -> None:
    """Raise ValueError (INVALID_ARGUMENT) for a key Kubernetes or Cloud Run refuses, or a map over 256 KiB."""
    total = 0
    for key, value in annotations.items():
        prefix, sep, name = key.rpartition("/")
        if not _ANNOTATION_NAME.match(name) or (sep and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))):
            raise ValueError(f"annotation key {key!r} is not a valid Kubernetes annotation key")
        reserved = [ns for ns in RESERVED_ANNOTATION_NAMESPACES if prefix == ns or prefix.endswith("." + ns)]
        if sep and reserved:
            raise ValueError(f"annotation {key!r}: the {reserved[0]} namespace is not supported in Cloud Run API v2")
        total += len(key.encode()) + len(value.encode())
    if total > ANNOTATIONS_TOTAL_LIMIT:
        raise ValueError(f"annotations are {total} bytes; the total may not exceed {ANNOTATIONS_TOTAL_LIMIT}")


def new_etag() -> str:
    return '"' + uuid.uuid4().hex[:20] + '"'


class SandboxCore:
    """All mutations of the sandbox state; thread-safe."""

    def __init__(
        self,
        *,
        home: Path,
        state: SandboxState,
        processes: ProcessManager,
        operation_delay: float = 0.0,
        ready_timeout: float = 30.0,
    ) -> None:
        self.home = home
        self.state = state
        self.processes = processes
        self.operation_delay = operation_delay
        self.ready_timeout = ready_timeout
        self.etag_mode = "ABORTED"
        self.fail_next_reconcile = ""
        self.race_after_get: dict[str, dict[str, int]] = {}
        """Service -> split that another writer sets right after the next GetService of it is answered."""
        """When set, the next UpdateService operation fails to reconcile with this message."""
        self.lock = threading.RLock()
        self.operations: dict[str, Operation] = {}
        self._publish: Callable[[RoutingTable], None] = lambda table: None
        self._listen: Callable[[list[int]], None] = lambda ports: None
        self.on_startup: Callable[[str, str, float], None] = lambda service, revision, ms: None

    # -- wiring -------------------------------------------------------------------------

    def connect_router(self, *, publish: Callable[[RoutingTable], None], listen: Callable[[list[int]], None]) -> None:
        """``listen(ports)`` binds router ports (blocking); ``publish(table)`` swaps the routing table."""
        self._publish = publish
        self._listen = listen

    def save(self) -> None:
        save_state(self.home / "state.json", self.state)

    def router_ports(self) -> list[int]:
        with self.lock:
            ports = []
            for svc in self.state.services.values():
                ports.append(svc.port)
                ports.extend(svc.tag_ports.values())
            return ports

    def routing_table(self) -> RoutingTable:
        with self.lock:
            routes: dict[int, ServiceRoute | TagRoute] = {}
            hosts: dict[str, ServiceRoute | TagRoute] = {}
            for svc in self.state.services.values():
                backends, cumulative, total = [], [], 0
                for revision, percent in split(svc.traffic_status):
                    total += percent
                    backends.append(Backend(revision, self.processes.port_of(revision)))
                    cumulative.append(total)
                routes[svc.port] = ServiceRoute(svc.name, tuple(backends), tuple(cumulative))
                tagged = {e.tag: e.revision for e in svc.traffic_status if e.tag}
                for tag, port in svc.tag_ports.items():
                    rev = tagged.get(tag)
                    backend = Backend(rev, self.processes.port_of(rev)) if rev else None
                    routes[port] = TagRoute(svc.name, tag, backend)
                for host in styled_hosts(self.state.project, self.state.region, svc.name):
                    hosts[host] = routes[svc.port]
                    for tag, rev in tagged.items():
                        hosts[f"{tag}{TAG_SEPARATOR}{host}"] = TagRoute(svc.name, tag, Backend(rev, self.processes.port_of(rev)))
            return RoutingTable(routes, hosts)

    def publish(self) -> None:
        """Bind any new router port, then swap in the new routing table."""
        self._listen(self.router_ports())
        self._publish(self.routing_table())

    def _taken_ports(self) -> set[int]:
        taken = {self.state.api_port, self.state.monitoring_port}
        for svc in self.state.services.values():
            taken.add(svc.port)
            taken.update(svc.tag_ports.values())
        taken.update(r.port for r in self.state.revisions.values() if r.port)
        return taken

    def _ensure_tag_ports(self, svc: ServiceState) -> None:
        for entry in svc.traffic:
            if entry.tag and entry.tag not in svc.tag_ports:
                svc.tag_ports[entry.tag] = pick_port(taken=self._taken_ports())

    # -- reads ----------------------------------------------------------------------------

    def service(self, name: str) -> ServiceState:
        with self.lock:
            svc = self.state.services.get(name)
            if svc is None:
                raise NotFound(f"service {name!r} not found")
            return copy.deepcopy(svc)

    def revision(self, name: str, *, service: str | None = None) -> RevisionState:
        with self.lock:
            rev = self.state.revisions.get(name)
            if rev is None or (service is not None and rev.service != service):
                raise NotFound(f"revision {name!r} not found")
            return copy.deepcopy(rev)

    # -- deploy -----------------------------------------------------------------------------

    def deploy(
        self,
        service: str,
        *,
        tag: str | None = None,
        no_traffic: bool = False,
        faults: list[str] | None = None,
        not_ready: bool = False,
        ready_timeout: float | None = None,
        startup_probe: str = "tcp",
        settings: dict[str, Any] | None = None,
        allow_unauthenticated: bool | None = None,
    ) -> DeployResult:
        """Create ``SERVICE-0000N``, start its process, run its startup probe, then route like gcloud.

        ``startup_probe``: ``tcp`` (Cloud Run's default: Ready once the port
        accepts a connection, whatever /health answers) or ``http`` (Ready once
        ``GET /health`` answers 200).

        ``settings``: the revision's configuration given with the deploy (``image``, ``memory``,
        ``cpu``, ``timeout_s``, ``concurrency``, ``min_instances``, ``max_instances``,
        ``container_port``, ``service_account``, ``env``, ``secrets``); what is not given is the
        previous template revision's, as ``gcloud run deploy`` does (:mod:`sandbox.revision_settings`).
        ``allow_unauthenticated``: True binds ``allUsers`` to ``roles/run.invoker`` in the service's
        IAM policy, False removes that binding, None leaves the policy as it is.
        """
        faults = list(faults or [])
        if startup_probe not in ("tcp", "http"):
            raise TrafficError(f"startup probe {startup_probe!r} is not tcp or http")
        validate_service_name(service)
        if tag:
            validate_tag(tag, service=service)
        with self.lock:
            svc = self.state.services.get(service)
            previous = self.state.revisions.get(svc.template_revision) if svc is not None else None
            settings, service_settings = split_service_settings(settings)
            config = deploy_settings(
                {k: getattr(previous, k) for k in KEYS} if previous is not None else None,
                settings,
                project=self.state.project,
            )
            if svc is None:
                if no_traffic:
                    raise TrafficError("--no-traffic is not supported when creating a service; deploy it once first")
                now = time.time()
                svc = ServiceState(
                    name=service,
                    create_time=now,
                    update_time=now,
                    port=pick_port(taken=self._taken_ports()),
                    etag=new_etag(),
                )
                self.state.services[service] = svc
            number = svc.next_revision
            svc.next_revision += 1
            name = f"{service}-{number:05d}"
            rev = RevisionState(
                name=name, service=service, number=number, create_time=time.time(), faults=faults,
                reason="Pending", message=f"waiting for the {startup_probe.upper()} startup probe",
                forced_not_ready=not_ready, startup_probe=startup_probe,
                image_digest=image_digest(config["image"]), **config,
            )
            self.state.revisions[name] = rev
            svc.latest_created_revision = name
            svc.template_revision = name
            if allow_unauthenticated is not None:
                set_public(svc, allow_unauthenticated)
            apply_service_settings(svc, service_settings)
            svc.etag = new_etag()
            svc.generation += 1
            svc.update_time = time.time()
            self.save()
        ready, message = False, ""
        if not_ready:
            message = "marked not ready at deploy (--not-ready): no container was started"
        else:
            started = time.monotonic()
            proc = self.processes.start(
                name, service=service, faults=faults, port=0, env=process_env(rev.env, rev.secrets)
            )
            with self.lock:
                rev.port = proc.port
            ready, message = self.processes.wait_ready(
                name, timeout=self.ready_timeout if ready_timeout is None else ready_timeout, probe=startup_probe
            )
            if ready:
                self.on_startup(service, name, (time.monotonic() - started) * 1000.0)
        with self.lock:
            rev.ready = ready
            rev.reason = "" if ready else "HealthCheckContainerError"
            rev.message = "" if ready else message
            previous_ready = svc.latest_ready_revision
            if ready:
                svc.latest_ready_revision = name
            svc.traffic = traffic_after_deploy(
                svc.traffic,
                revision=name,
                tag=tag,
                route=not no_traffic and ready,
                pinned_latest=previous_ready if (no_traffic or not ready) else None,
            ) or [TrafficEntry(type=LATEST, percent=100)]
            svc.traffic_status = resolve_traffic(svc.traffic, svc.latest_ready_revision)
            svc.reconciling = False
            svc.failure = ""
            svc.etag = new_etag()
            svc.generation += 1
            svc.update_time = time.time()
            self._ensure_tag_ports(svc)
            self.save()
            self.publish()
        return DeployResult(name, ready, message)

    # -- traffic --------------------------------------------------------------------------

    def update_traffic(
        self, service: str, traffic: list[TrafficEntry], *, etag: str = "", validate_only: bool = False
    ) -> tuple[ServiceState, Operation]:
        """Validate and apply a traffic change; returns the service as answered and its operation."""
        return self.update_service(service, traffic=traffic, etag=etag, validate_only=validate_only)

    def update_service(
        self,
        service: str,
        *,
        traffic: list[TrafficEntry] | None = None,
        template: tuple[str, bytes] | None = None,
        annotations: dict[str, str] | None = None,
        etag: str = "",
        validate_only: bool = False,
    ) -> tuple[ServiceState, Operation]:
        """``UpdateService`` on the fields its mask names: ``traffic``, ``template`` and/or ``annotations``.

        ``annotations`` replaces the service's map as a whole (a map field named
        in the mask, AIP-134); keys follow Kubernetes' rules and Cloud Run's
        reserved namespaces are refused (:func:`validate_annotations`).

        ``template`` is ``(revision named, its configuration)`` (:func:`~sandbox.convert.template_config`): an
        existing revision with the same configuration is kept (no new revision);
        one with another configuration is ALREADY_EXISTS; a configuration that
        would need a new revision is not modelled (UNIMPLEMENTED). The etag is
        checked first, as :attr:`etag_mode` says.
        """
        with self.lock:
            svc = self.state.services.get(service)
            if svc is None:
                raise NotFound(f"service {service!r} not found")
            if etag and etag != svc.etag and self.etag_mode != "NONE":
                raise EtagMismatch(
                    f"etag {etag} does not match the current etag {svc.etag} of service {service!r}: "
                    "re-read the service and retry",
                    code=self.etag_mode,
                )
            revisions = {r.name: r for r in self.state.revisions_of(service)}
            template_revision = svc.template_revision
            if template is not None:
                template_revision = self._check_template(svc, revisions, *template)
            if traffic is not None:
                validate_traffic(traffic, revisions, service=service)
            if annotations is not None:
                validate_annotations(annotations)
            op_name = f"projects/{self.state.project}/locations/{self.state.region}/operations/{uuid.uuid4()}"
            if validate_only:
                answer = copy.deepcopy(svc)
                if traffic is not None:
                    answer.traffic = [copy.copy(e) for e in traffic]
                if annotations is not None:
                    answer.annotations = dict(annotations)
                answer.template_revision = template_revision
                op = Operation(op_name, service, time.monotonic(), answer, done=True)
                self.operations[op_name] = op
                return answer, op
            if traffic is not None:
                svc.traffic = [copy.copy(e) for e in traffic]
            if annotations is not None:
                svc.annotations = dict(annotations)
            svc.template_revision = template_revision
            svc.etag = new_etag()
            svc.generation += 1
            svc.update_time = time.time()
            self._ensure_tag_ports(svc)
            delay = self.operation_delay
            op = Operation(op_name, service, time.monotonic() + delay, copy.deepcopy(svc))
            if self.fail_next_reconcile:
                op.error, self.fail_next_reconcile = self.fail_next_reconcile, ""
            self.operations[op_name] = op
            if delay > 0:
                svc.reconciling = True
                op.snapshot.reconciling = True
                self.save()
                timer = threading.Timer(delay, self.complete, args=(op_name,))
                timer.daemon = True
                timer.start()
            else:
                self._complete_locked(op)
            return copy.deepcopy(op.snapshot), op

    def _check_template(
        self,
        svc: ServiceState,
        revisions: dict[str, RevisionState],
        named: str,
        config: bytes,
    ) -> str:
        """The revision the service's template describes after this update; raises for what Cloud Run refuses."""
        if named:
            rev = revisions.get(named)
            if rev is not None:
                if revision_config(rev) != config:
                    raise AlreadyExists(f"Revision named '{named}' with different configuration already exists.")
                return named
        current = revisions.get(svc.template_revision)
        if current is not None and revision_config(current) == config:
            return svc.template_revision
        raise Unimplemented(
            "this template would create a new revision: the sandbox creates revisions only through its deploy command"
        )

    def operation(self, name: str) -> Operation:
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                raise NotFound(f"operation {name!r} not found")
            if not op.done and time.monotonic() >= op.done_at:
                self._complete_locked(op)
            return copy.deepcopy(op)

    def complete(self, name: str) -> None:
        with self.lock:
            op = self.operations.get(name)
            if op is not None and not op.done:
                self._complete_locked(op)

    def _complete_locked(self, op: Operation) -> None:
        svc = self.state.services[op.service]
        if op.error:
            svc.failure = op.error  # the traffic in force stays as it was
        else:
            svc.failure = ""
            svc.traffic_status = resolve_traffic(svc.traffic, svc.latest_ready_revision)
        svc.reconciling = any(not o.done and o is not op and o.service == op.service for o in self.operations.values())
        op.done = True
        op.snapshot = copy.deepcopy(svc)
        self.save()
        self.publish()

    def delete_revision(self, name: str, *, service: str | None = None) -> None:
        """``gcloud run revisions delete``: the revision is no longer listed, served or routed, and its
        process stops. A revision that serves traffic, or that a traffic target names (a tag), is
        refused (FAILED_PRECONDITION): Cloud Run deletes only revisions that serve no traffic
        (https://cloud.google.com/run/docs/managing/revisions)."""
        with self.lock:
            rev = self.state.revisions.get(name)
            if rev is None or (service is not None and rev.service != service):
                raise NotFound(f"revision {name!r} not found")
            svc = self.state.services[rev.service]
            serving = {e.revision for e in svc.traffic_status if e.percent > 0}
            named = {e.revision for e in svc.traffic if e.revision} | {e.revision for e in svc.traffic_status if e.tag}
            if name in serving:
                raise FailedPrecondition(f"revision {name!r} is serving traffic and cannot be deleted: move its traffic first")
            if name in named:
                raise FailedPrecondition(
                    f"revision {name!r} is named by a traffic target of service {rev.service!r} and cannot be deleted: "
                    "remove its tag first"
                )
            del self.state.revisions[name]
            if svc.latest_ready_revision == name:
                ready = [r for r in self.state.revisions_of(rev.service) if r.ready]
                svc.latest_ready_revision = ready[-1].name if ready else ""
            if svc.latest_created_revision == name:
                left = self.state.revisions_of(rev.service)
                svc.latest_created_revision = left[-1].name if left else ""
            self.save()
            self.publish()
        self.processes.stop(name)

    # -- lifecycle ------------------------------------------------------------------------

    def restart_revisions(self, *, timeout: float = 20.0) -> None:
        """Start the process of every persisted revision; wait (bounded) for the Ready ones."""
        with self.lock:
            revisions = [copy.deepcopy(r) for r in self.state.revisions.values() if not r.forced_not_ready]
            taken = self._taken_ports()
        for rev in revisions:
            proc = self.processes.start(
                rev.name, service=rev.service, faults=rev.faults, port=rev.port, env=process_env(rev.env, rev.secrets)
            )
            with self.lock:
                self.state.revisions[rev.name].port = proc.port
            taken.add(proc.port)
        ready = [r.name for r in revisions if r.ready]
        if ready:
            with ThreadPoolExecutor(max_workers=min(8, len(ready))) as pool:
                probes = {r.name: r.startup_probe for r in revisions}
                results = dict(
                    zip(ready, pool.map(lambda n: self.processes.wait_ready(n, timeout=timeout, probe=probes[n]), ready))
                )
            for name, (ok, why) in results.items():
                if not ok:
                    log.warning("revision %s did not come back: %s", name, why)
        with self.lock:
            for svc in self.state.services.values():
                svc.traffic_status = resolve_traffic(svc.traffic, svc.latest_ready_revision)
                svc.reconciling = False
            self.save()


def revision_config(rev: RevisionState) -> bytes:
    """What a revision's template fixes (image, environment, faults, resources, scaling, probe...),
    in the form :func:`~sandbox.convert.template_config` gives a requested template."""
    return template_config(revision_template(rev))


INVOKER = "roles/run.invoker"
ALL_USERS = "allUsers"


def set_public(svc: ServiceState, public: bool) -> None:
    """``--allow-unauthenticated``: "assigns the Cloud Run Invoker IAM role to allUsers";
    ``--no-allow-unauthenticated`` removes that member (https://cloud.google.com/run/docs/authenticating/public)."""
    members = [m for m in svc.iam_bindings.get(INVOKER, []) if m != ALL_USERS]
    if public:
        members.append(ALL_USERS)
    if members:
        svc.iam_bindings[INVOKER] = members
    else:
        svc.iam_bindings.pop(INVOKER, None)
    svc.iam_etag = new_etag()

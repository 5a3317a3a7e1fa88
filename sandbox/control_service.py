"""The sandbox's private control service: gRPC ``revgate.sandbox.Control`` with JSON messages.

It lives on the Admin API port next to the fake Google APIs. Each method takes
and returns one JSON object (UTF-8 bytes):

=================  ===============================================  ===========================
method             request                                          response
=================  ===============================================  ===========================
Ping               ``{}``                                           ``{"pid": ...}``
Status             ``{"service": S?}``                              see :func:`status`
Deploy             ``{"service", "tag"?, "no_traffic"?, "faults"?,  ``{"revision", "ready",
                   "not_ready"?, "ready_timeout"?,                  "message"}``
                   "startup_probe"? tcp|http}``
UpdateTraffic      ``{"service", "to_revisions"? {R: P},            ``{"traffic": [...]}``
                   "to_latest"?, "to_tags"? {T: P}}``
Inject             ``{"method", "code", "times", "message"?,        ``{}``
                   "after"?}``: the faults start after that many
                   calls answered normally
DeleteRevision     ``{"revision", "service"?}``: refused             ``{}``
                   (FAILED_PRECONDITION) while it serves traffic
                   or a tag names it
SetEtagMode        ``{"mode"}``: ABORTED, FAILED_PRECONDITION, NONE  ``{}``
FailReconcile      ``{"message"}``: the next UpdateService           ``{}``
                   operation fails to reconcile
RaceNextGet        ``{"service", "to_revisions" {R: P}}``: another   ``{}``
                   writer sets that split right after the next
                   GetService of the service is answered
SetOperationDelay  ``{"seconds"}``                                  ``{}``
SetMetricsDelay    ``{"seconds"}``                                  ``{}``
SetLogsDelay       ``{"seconds"}``                                  ``{}``
LogFilters         ``{}``: the filters ListLogEntries received      ``{"filters": [...]}``
Calls              ``{}``                                           ``{"counts": {method: n}}``
ResetCalls         ``{}``                                           ``{}`` (counts, faults, races,
                                                                    failed reconciles)
Shutdown           ``{}``                                           ``{}``
=================  ===============================================  ===========================

Errors: INVALID_ARGUMENT (bad traffic, bad tag, unknown status code),
NOT_FOUND (unknown service or revision), FAILED_PRECONDITION (a revision that
cannot be deleted), with a one-line message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import grpc

from sandbox.calls import CallLog
from sandbox.convert import service_uri, service_urls
from sandbox.core import ETAG_MODES, EtagMismatch, FailedPrecondition, NotFound, SandboxCore
from sandbox.traffic import TrafficError, traffic_to_latest, traffic_to_revisions, traffic_to_tags

__all__ = ["CONTROL_SERVICE", "control_handler", "status"]

CONTROL_SERVICE = "revgate.sandbox.Control"


def status(core: SandboxCore, service: str | None = None) -> dict[str, Any]:
    """The sandbox as JSON: endpoints, and per service its URLs, traffic and revisions."""
    with core.lock:
        st = core.state
        if service is not None and service not in st.services:
            raise NotFound(f"service {service!r} not found")
        services = []
        for name, svc in sorted(st.services.items()):
            if service is not None and name != service:
                continue
            tagged = {e.tag for e in svc.traffic if e.tag}
            revisions = []
            for rev in reversed(st.revisions_of(name)):
                proc = core.processes.get(rev.name)
                revisions.append(
                    {
                        "name": rev.name,
                        "ready": rev.ready,
                        "reason": rev.reason,
                        "message": rev.message,
                        "faults": rev.faults,
                        "port": rev.port,
                        "pid": proc.pid if proc is not None and proc.alive() else None,
                        "create_time": rev.create_time,
                        "startup_probe": rev.startup_probe,
                    }
                )
            services.append(
                {
                    "name": name,
                    "uri": service_uri(svc.port),
                    "urls": service_urls(st, svc),
                    "etag": svc.etag,
                    "reconciling": svc.reconciling,
                    "latest_ready_revision": svc.latest_ready_revision,
                    "latest_created_revision": svc.latest_created_revision,
                    "traffic": [asdict(e) for e in svc.traffic],
                    "traffic_status": [asdict(e) for e in svc.traffic_status],
                    "tags": {t: service_uri(p) for t, p in sorted(svc.tag_ports.items()) if t in tagged},
                    "revisions": revisions,
                }
            )
        return {
            "project": st.project,
            "region": st.region,
            "api_endpoint": f"127.0.0.1:{st.api_port}",
            "monitoring_endpoint": f"127.0.0.1:{st.monitoring_port}",
            "logging_endpoint": f"127.0.0.1:{st.logging_port}",
            "operation_delay": core.operation_delay,
            "etag_mode": core.etag_mode,
            "services": services,
        }


def control_handler(
    core: SandboxCore,
    calls: CallLog,
    *,
    set_metrics_delay: Callable[[float], None],
    shutdown: Callable[[], None],
    logs: Any = None,
) -> grpc.GenericRpcHandler:
    """The generic handler for ``revgate.sandbox.Control``."""

    def deploy(req: dict[str, Any]) -> dict[str, Any]:
        result = core.deploy(
            str(req["service"]),
            tag=req.get("tag") or None,
            no_traffic=bool(req.get("no_traffic")),
            faults=[str(f) for f in req.get("faults") or []],
            not_ready=bool(req.get("not_ready")),
            ready_timeout=req.get("ready_timeout"),
            startup_probe=str(req.get("startup_probe") or "tcp"),
            settings=dict(req.get("settings") or {}),
            allow_unauthenticated=req.get("allow_unauthenticated"),
        )
        return asdict(result)

    def update_traffic(req: dict[str, Any]) -> dict[str, Any]:
        service = str(req["service"])
        current = core.service(service)
        if req.get("to_latest"):
            traffic = traffic_to_latest(current.traffic)
        elif req.get("to_tags"):
            traffic = traffic_to_tags(current.traffic, {str(k): int(v) for k, v in req["to_tags"].items()})
        elif req.get("to_revisions"):
            traffic = traffic_to_revisions(current.traffic, {str(k): int(v) for k, v in req["to_revisions"].items()})
        else:
            raise TrafficError("one of to_revisions, to_latest, to_tags is required")
        _, op = core.update_traffic(service, traffic, etag=current.etag)
        deadline = time.monotonic() + core.operation_delay + 10.0
        while not core.operation(op.name).done and time.monotonic() < deadline:
            time.sleep(0.02)
        return {"traffic": [asdict(e) for e in core.service(service).traffic_status]}

    def inject(req: dict[str, Any]) -> dict[str, Any]:
        calls.inject(
            str(req["method"]),
            str(req["code"]),
            int(req.get("times", 1)),
            str(req.get("message") or ""),
            after=int(req.get("after") or 0),
        )
        return {}

    def delete_revision(req: dict[str, Any]) -> dict[str, Any]:
        core.delete_revision(str(req["revision"]).rsplit("/", 1)[-1], service=req.get("service") or None)
        return {}

    def set_etag_mode(req: dict[str, Any]) -> dict[str, Any]:
        mode = str(req["mode"]).upper()
        if mode not in ETAG_MODES:
            raise ValueError(f"etag mode {mode!r} is not one of {', '.join(ETAG_MODES)}")
        core.etag_mode = mode
        return {}

    def fail_reconcile(req: dict[str, Any]) -> dict[str, Any]:
        core.fail_next_reconcile = str(req.get("message") or "the traffic could not be applied")
        return {}

    def set_operation_delay(req: dict[str, Any]) -> dict[str, Any]:
        core.operation_delay = max(0.0, float(req["seconds"]))
        return {}

    def set_metrics(req: dict[str, Any]) -> dict[str, Any]:
        set_metrics_delay(max(0.0, float(req["seconds"])))
        return {}

    def set_logs_delay(req: dict[str, Any]) -> dict[str, Any]:
        if logs is None:
            raise ValueError("this sandbox has no Cloud Logging")
        logs.set_delay(max(0.0, float(req["seconds"])), req.get("log") or None)
        return {}

    def log_filters(req: dict[str, Any]) -> dict[str, Any]:
        return {"filters": list(logs.store.filters) if logs is not None else []}

    def reset_calls(req: dict[str, Any]) -> dict[str, Any]:
        calls.clear()
        with core.lock:
            core.race_after_get.clear()
            core.fail_next_reconcile = ""
        return {}

    def stop(req: dict[str, Any]) -> dict[str, Any]:
        shutdown()
        return {}

    def race_next_get(req: dict[str, Any]) -> dict[str, Any]:
        service = str(req["service"])
        core.service(service)
        with core.lock:
            core.race_after_get[service] = {str(k): int(v) for k, v in req["to_revisions"].items()}
        return {}

    methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "Ping": lambda req: {"pid": os.getpid()},
        "Status": lambda req: status(core, req.get("service")),
        "Deploy": deploy,
        "UpdateTraffic": update_traffic,
        "Inject": inject,
        "DeleteRevision": delete_revision,
        "SetEtagMode": set_etag_mode,
        "FailReconcile": fail_reconcile,
        "RaceNextGet": race_next_get,
        "SetOperationDelay": set_operation_delay,
        "SetMetricsDelay": set_metrics,
        "SetLogsDelay": set_logs_delay,
        "LogFilters": log_filters,
        "Calls": lambda req: {"counts": calls.counts()},
        "ResetCalls": reset_calls,
        "Shutdown": stop,
    }

    def wrap(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> grpc.RpcMethodHandler:
        def handle(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
            try:
                return fn(request)
            except NotFound as exc:
                error = (grpc.StatusCode.NOT_FOUND, str(exc))
            except EtagMismatch as exc:
                error = (grpc.StatusCode.ABORTED, str(exc))
            except FailedPrecondition as exc:
                error = (grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            except (TrafficError, ValueError, KeyError, TypeError) as exc:
                error = (grpc.StatusCode.INVALID_ARGUMENT, str(exc) if not isinstance(exc, KeyError) else f"missing {exc}")
            context.abort(*error)

        return grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=lambda b: json.loads(b or b"{}"),
            response_serializer=lambda obj: json.dumps(obj).encode(),
        )

    return grpc.method_handlers_generic_handler(CONTROL_SERVICE, {name: wrap(fn) for name, fn in methods.items()})

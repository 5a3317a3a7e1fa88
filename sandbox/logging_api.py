"""The fake Cloud Logging API v2: ``google.logging.v2.LoggingServiceV2`` over gRPC, with the real protos.

``ListLogEntries`` reads :class:`~sandbox.log_store.LogStore` (filter subset, order, paging,
parents: see there); ``WriteLogEntries`` adds entries (``log_name``, ``resource`` and ``labels`` of
the request are the defaults of its entries, as google/logging/v2/logging.proto says). The real
``google-cloud-logging`` client (``LoggingServiceV2Client``) talks to it unchanged.

The sandbox's own writers (the revision processes' output, the router's request logs, the system
logs) call :class:`Logs`, which builds the entries with :mod:`sandbox.log_capture`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from google.protobuf import json_format

from sandbox.log_capture import LOG_IDS, container_entry, request_entry, resource_labels, system_entry
from sandbox.log_store import InvalidRequest, LogStore, PermissionDenied

__all__ = ["Logs", "logging_service_handler"]

log = logging.getLogger("sandbox.logging")
SERVICE = "google.logging.v2.LoggingServiceV2"


class Logs:
    """The sandbox's Cloud Logging: the store plus the writers Cloud Run has (container, requests, system)."""

    def __init__(self, *, project: str, region: str, delay: float = 0.0) -> None:
        self.project = project
        self.region = region
        self.store = LogStore(project=project, visibility_delay=delay)
        self.calls: Any = None
        """The sandbox's :class:`sandbox.calls.CallLog`: ``ListLogEntries`` and ``WriteLogEntries`` are
        counted there, and fail as injected (``inject("ListLogEntries", "RESOURCE_EXHAUSTED", 1)``)."""
        self.handler = logging_service_handler(self.store, calls=lambda: self.calls)

    def _labels(self, service: str, revision: str) -> dict[str, str]:
        return resource_labels(project=self.project, region=self.region, service=service, revision=revision)

    def output(self, service: str, revision: str, stream: str, line: str, when: float | None = None) -> None:
        """One line a revision's container wrote to ``stream`` (``stdout`` or ``stderr``)."""
        entry = container_entry(
            line, stream=stream, project=self.project, labels=self._labels(service, revision), when=when or time.time()
        )
        if entry is not None:
            self.store.write(entry)

    def request(self, service: str, revision: str, **fields: Any) -> None:
        """One request log entry (see :func:`sandbox.log_capture.request_entry` for the fields)."""
        self.store.write(request_entry(project=self.project, labels=self._labels(service, revision), **fields))

    def request_record(self, record: Any) -> None:
        """The request log entry of one request the router routed (a :class:`sandbox.router.RequestRecord`).

        When no instance answered (the router's own answer), the entry says so in ``textPayload`` in
        Cloud Run's words and has no ``instanceId`` label: a 429 or 503 "The request was aborted because
        there was no available instance" (https://cloud.google.com/run/docs/known-issues), a 502 (the
        instance closed the connection or answered a malformed response) "The request failed because
        either the HTTP response was malformed or connection to the instance had an error"."""
        text = ""
        if record.by_router:
            text = (
                "The request was aborted because there was no available instance."
                if record.status in (429, 503)
                else "The request failed because either the HTTP response was malformed or connection to the instance had an error."
            )
        self.request(
            record.service,
            record.revision,
            when=record.started,
            method=record.method,
            url=record.url,
            status=record.status,
            latency_s=record.latency_s,
            protocol=record.protocol,
            user_agent=record.user_agent,
            remote_ip=record.remote_ip,
            text=text,
            instance=not record.by_router,
        )

    def system(self, service: str, revision: str, text: str, severity: str = "INFO") -> None:
        self.store.write(
            system_entry(project=self.project, labels=self._labels(service, revision), when=time.time(), text=text, severity=severity)
        )

    def set_delay(self, seconds: float, log: str | None = None) -> None:
        """Every log name's visibility delay, or (``log``: ``stdout``, ``requests``, or a log id such as
        ``python``) one log name's own."""
        self.store.set_delay(seconds, LOG_IDS.get(log, log) if log else None)


def _to_proto(entry: dict[str, Any]) -> Any:
    from google.cloud.logging_v2.types import LogEntry

    message = LogEntry.pb(LogEntry())
    json_format.ParseDict(entry, message, ignore_unknown_fields=True)
    return message


def logging_service_handler(store: LogStore, calls: Any = None) -> grpc.GenericRpcHandler:
    """``google.logging.v2.LoggingServiceV2`` (ListLogEntries, WriteLogEntries) served from ``store``;
    ``calls()``, when given, is the call log that counts them and injects faults."""

    def injected(method: str, context: grpc.ServicerContext) -> None:
        log_of_calls = calls() if calls is not None else None
        if log_of_calls is None:
            return
        fault = log_of_calls.record(method)
        if fault is not None:
            message = log_of_calls.message_of(method, fault)
            if fault == grpc.StatusCode.RESOURCE_EXHAUSTED and message.startswith("injected"):
                message = (
                    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
                    f"of service 'logging.googleapis.com' for consumer 'project_number:{store.project}'."
                )
            context.abort(fault, message)
    from google.cloud.logging_v2.types import logging as types

    list_request = types.ListLogEntriesRequest.pb(types.ListLogEntriesRequest())
    list_response = types.ListLogEntriesResponse.pb(types.ListLogEntriesResponse())
    write_request = types.WriteLogEntriesRequest.pb(types.WriteLogEntriesRequest())
    write_response = types.WriteLogEntriesResponse.pb(types.WriteLogEntriesResponse())

    def list_log_entries(request: Any, context: grpc.ServicerContext) -> Any:
        injected("ListLogEntries", context)
        try:
            page, token = store.list(
                resource_names=list(request.resource_names) + [f"projects/{p}" for p in getattr(request, "project_ids", [])],
                filter_text=request.filter,
                order_by=request.order_by,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        except InvalidRequest as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except PermissionDenied as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        response = type(list_response)()
        response.entries.extend(_to_proto(e) for e in page)
        response.next_page_token = token
        return response

    def write_log_entries(request: Any, context: grpc.ServicerContext) -> Any:
        injected("WriteLogEntries", context)
        defaults: dict[str, Any] = {}
        if request.log_name:
            defaults["logName"] = request.log_name
        if request.HasField("resource"):
            defaults["resource"] = json_format.MessageToDict(request.resource)
        now = time.time()
        entries = []
        for pb in request.entries:
            entry = {**defaults, **json_format.MessageToDict(pb)}
            if request.labels:
                entry["labels"] = {**dict(request.labels), **entry.get("labels", {})}
            if "logName" not in entry or "resource" not in entry:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "every entry needs a log_name and a resource (or the request's)")
            project = str(entry["logName"]).split("/")[1] if str(entry["logName"]).startswith("projects/") else ""
            if project != store.project:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"log name {entry['logName']!r} is not in project {store.project!r}")
            entry.setdefault("timestamp", _rfc3339(now))
            entry.setdefault("receiveTimestamp", _rfc3339(now))
            entry.setdefault("severity", "DEFAULT")
            entries.append(entry)
        for entry in entries:
            store.write(entry)
        return type(write_response)()

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ListLogEntries": grpc.unary_unary_rpc_method_handler(
                list_log_entries,
                request_deserializer=type(list_request).FromString,
                response_serializer=lambda m: m.SerializeToString(),
            ),
            "WriteLogEntries": grpc.unary_unary_rpc_method_handler(
                write_log_entries,
                request_deserializer=type(write_request).FromString,
                response_serializer=lambda m: m.SerializeToString(),
            ),
        },
    )


def _rfc3339(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


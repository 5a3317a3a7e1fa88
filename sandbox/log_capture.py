"""The log entries Cloud Run writes for a revision, built as ``google.logging.v2.LogEntry`` messages.

Sources (cited again in docs/cloud-run-fidelity.md, "Cloud Logging"):

- Cloud Run sends three kinds of logs to Cloud Logging: request logs, container logs (what the
  instance writes to stdout and stderr) and system logs (written to ``varlog/system``)
  (https://cloud.google.com/run/docs/logging). The log names are
  ``projects/P/logs/run.googleapis.com%2Frequests``, ``...%2Fstdout``, ``...%2Fstderr`` and
  ``...%2Fvarlog%2Fsystem`` (the LogEntry ``logName`` field URL-encodes the log id:
  google/logging/v2/log_entry.proto); the monitored resource is ``cloud_run_revision`` with the
  labels ``project_id``, ``service_name``, ``revision_name``, ``location``, ``configuration_name``.
- Container logs: every line is one entry. A line that is not a JSON object is stored in
  ``textPayload``, with no severity (``DEFAULT``): "Logs written directly to stdout or stderr do not
  have an associated log level" (https://cloud.google.com/functions/docs/monitoring/logging). A line
  that is a JSON object is a structured log (``jsonPayload``); its special fields are taken out of
  the payload into the LogEntry (https://cloud.google.com/logging/docs/structured-logging, "Special
  JSON fields in messages"): ``severity`` (on Cloud Run only the LogSeverity names, google/logging/type/log_severity.proto,
  and ``WARN``, in any case: a ``FATAL`` or ``ERR`` line stays ``DEFAULT``, so the sandbox never
  finds an error that Cloud Run would not mark), ``logging.googleapis.com/labels``,
  ``logging.googleapis.com/insertId``, ``logging.googleapis.com/trace``,
  ``logging.googleapis.com/spanId``, ``logging.googleapis.com/trace_sampled``, and ``time`` (or
  ``timestamp``) for the entry's time; ``message`` stays in the payload
  (``jsonPayload.message``) and is the text the Logs Explorer shows.
- Request logs: one entry per request the service answered, with ``httpRequest`` filled
  (google/logging/type/http_request.proto) and its severity from the status: ERROR for 5xx,
  WARNING for 4xx, INFO otherwise.
- System logs: the startup probe's result, in the words Cloud Run uses ("Default STARTUP TCP probe
  succeeded after 1 attempt for container ... on port ...", and "... failed ... The instance was
  not started." when it fails).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

__all__ = [
    "LOG_IDS",
    "container_entry",
    "log_name",
    "request_entry",
    "resource_labels",
    "system_entry",
]

LOG_IDS = {
    "stdout": "run.googleapis.com/stdout",
    "stderr": "run.googleapis.com/stderr",
    "requests": "run.googleapis.com/requests",
    "system": "run.googleapis.com/varlog/system",
}
"""Kind of log -> the log id Cloud Run writes it under."""

_SEVERITY_WORDS = {
    "DEFAULT": "DEFAULT",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "NOTICE": "NOTICE",
    "WARNING": "WARNING",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
    "ALERT": "ALERT",
    "EMERGENCY": "EMERGENCY",
}


def log_name(project: str, kind: str) -> str:
    """``projects/P/logs/run.googleapis.com%2Fstdout`` for ``kind`` ``stdout``."""
    return f"projects/{project}/logs/{quote(LOG_IDS[kind], safe='')}"


def resource_labels(*, project: str, region: str, service: str, revision: str) -> dict[str, str]:
    return {
        "project_id": project,
        "service_name": service,
        "revision_name": revision,
        "location": region,
        "configuration_name": service,
    }


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _severity(value: Any) -> str:
    if isinstance(value, str):
        return _SEVERITY_WORDS.get(value.strip().upper(), "DEFAULT")
    return "DEFAULT"


def _base(project: str, kind: str, labels: dict[str, str], when: float) -> dict[str, Any]:
    return {
        "logName": log_name(project, kind),
        "resource": {"type": "cloud_run_revision", "labels": dict(labels)},
        "timestamp": _rfc3339(when),
        "receiveTimestamp": _rfc3339(when),
        "insertId": uuid.uuid4().hex[:16],
        "labels": {"instanceId": labels.get("revision_name", "") + "-0"},
    }


def container_entry(line: str, *, stream: str, project: str, labels: dict[str, str], when: float) -> dict[str, Any] | None:
    """The entry for one line the container wrote to ``stream`` (stdout or stderr); None for an empty line."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    entry = _base(project, stream, labels, when)
    payload: Any = None
    if text.lstrip().startswith("{"):
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
    if not isinstance(payload, dict):
        entry["textPayload"] = text
        entry["severity"] = "DEFAULT"
        return entry
    entry["severity"] = _severity(payload.pop("severity", None))
    extra_labels = payload.pop("logging.googleapis.com/labels", None)
    if isinstance(extra_labels, dict):
        entry["labels"].update({str(k): str(v) for k, v in extra_labels.items()})
    insert_id = payload.pop("logging.googleapis.com/insertId", None)
    if isinstance(insert_id, str) and insert_id:
        entry["insertId"] = insert_id
    for special, field in (("logging.googleapis.com/trace", "trace"), ("logging.googleapis.com/spanId", "spanId")):
        value = payload.pop(special, None)
        if isinstance(value, str):
            entry[field] = value
    sampled = payload.pop("logging.googleapis.com/trace_sampled", None)
    if isinstance(sampled, bool):
        entry["traceSampled"] = sampled
    for key in ("time", "timestamp"):
        value = payload.get(key)
        if isinstance(value, str):
            try:
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if stamp.tzinfo is not None:
                entry["timestamp"] = _rfc3339(stamp.timestamp())
                payload.pop(key)
                break
    entry["jsonPayload"] = payload
    return entry


def request_severity(status: int) -> str:
    """ERROR for 5xx, WARNING for 4xx, INFO otherwise."""
    return "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"


def request_entry(
    *,
    project: str,
    labels: dict[str, str],
    when: float,
    method: str,
    url: str,
    status: int,
    latency_s: float,
    protocol: str,
    user_agent: str = "",
    remote_ip: str = "127.0.0.1",
    response_size: int | None = None,
    text: str = "",
    instance: bool = True,
) -> dict[str, Any]:
    """The request log entry of one request (``text``: the router's own explanation, as Cloud Run adds for 503s;
    ``instance`` False: no instance served it, so no ``instanceId`` label)."""
    entry = _base(project, "requests", labels, when)
    if not instance:
        entry["labels"].pop("instanceId", None)
    entry["severity"] = request_severity(status)
    http: dict[str, Any] = {
        "requestMethod": method,
        "requestUrl": url,
        "status": status,
        "remoteIp": remote_ip,
        "serverIp": "127.0.0.1",
        "latency": f"{max(latency_s, 0.0):.9f}s",
        "protocol": protocol,
    }
    if user_agent:
        http["userAgent"] = user_agent
    if response_size is not None:
        http["responseSize"] = str(response_size)
    entry["httpRequest"] = http
    if text:
        entry["textPayload"] = text
    return entry


def system_entry(*, project: str, labels: dict[str, str], when: float, text: str, severity: str = "INFO") -> dict[str, Any]:
    entry = _base(project, "system", labels, when)
    entry["severity"] = severity
    entry["textPayload"] = text
    return entry

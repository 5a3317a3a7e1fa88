"""The sandbox's persistent state: services, revisions, traffic, tags, ports.

Everything lives in ``HOME/state.json``, rewritten atomically (temporary file,
``fsync``, ``os.replace``) after every change, so that ``down``/``up`` keeps
traffic, etags and URLs. Plain dataclasses; the JSON form is their ``asdict``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_REGION",
    "TrafficEntry",
    "RevisionState",
    "ServiceState",
    "SandboxState",
    "load_state",
    "save_state",
]

DEFAULT_PROJECT = "sandbox-project"
DEFAULT_REGION = "europe-west1"
LATEST = "LATEST"
REVISION = "REVISION"


@dataclass
class TrafficEntry:
    """One traffic target: ``type`` is ``LATEST`` or ``REVISION``; a tag-only entry has 0 %."""

    type: str
    revision: str = ""
    percent: int = 0
    tag: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficEntry:
        return cls(
            type=str(data.get("type", REVISION)),
            revision=str(data.get("revision", "")),
            percent=int(data.get("percent", 0)),
            tag=str(data.get("tag", "")),
        )


@dataclass
class RevisionState:
    """A revision and the process that serves it."""

    name: str
    service: str
    number: int
    create_time: float
    faults: list[str] = field(default_factory=list)
    port: int = 0
    ready: bool = False
    reason: str = ""
    message: str = ""
    forced_not_ready: bool = False
    startup_probe: str = "tcp"
    """``tcp`` (Cloud Run's default startup probe: the port accepts a connection) or ``http`` (GET /health answers 2xx)."""
    # The revision's own configuration (``gcloud run deploy`` flags; see sandbox/revision_settings.py for the defaults)
    image: str = "sandbox/app"
    """The image as the deploy named it (a tag or a digest URL)."""
    image_digest: str = ""
    """``sha256:...``: the digest the image resolved to when the revision was created."""
    memory: str = "512Mi"
    cpu: str = "1"
    timeout_s: int = 300
    concurrency: int = 80
    min_instances: int = 0
    max_instances: int = 100
    container_port: int = 8080
    service_account: str = ""
    env: dict[str, str] = field(default_factory=dict)
    """Plain environment variables (``--set-env-vars``)."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Env var name or mounted file path -> ``SECRET:VERSION`` (``--set-secrets``)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RevisionState:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class ServiceState:
    """A service: the traffic asked for (``traffic``) and the traffic in force (``traffic_status``)."""

    name: str
    create_time: float
    update_time: float
    port: int
    etag: str
    generation: int = 1
    next_revision: int = 1
    traffic: list[TrafficEntry] = field(default_factory=list)
    traffic_status: list[TrafficEntry] = field(default_factory=list)
    tag_ports: dict[str, int] = field(default_factory=dict)
    latest_created_revision: str = ""
    latest_ready_revision: str = ""
    reconciling: bool = False
    template_revision: str = ""
    """The revision the service's template describes (``template.revision`` as Cloud Run echoes it)."""
    failure: str = ""
    """The message of a failed reconcile (``terminal_condition`` FAILED) until the next successful change."""
    annotations: dict[str, str] = field(default_factory=dict)
    """``Service.annotations``: replaced as a whole by an UpdateService whose mask names ``annotations``."""
    iam_bindings: dict[str, list[str]] = field(default_factory=dict)
    """The service's IAM policy: role -> members (``roles/run.invoker`` -> ``["allUsers"]`` when public)."""
    iam_etag: str = ""
    invoker_iam_disabled: bool = False
    """``Service.invoker_iam_disabled`` (``deploy --no-invoker-iam-check``)."""
    scaling_min: int = 0
    scaling_max: int = 0
    """``Service.scaling`` (service-level min and max instances; 0: unset)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceState:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["traffic"] = [TrafficEntry.from_dict(t) for t in data.get("traffic", [])]
        values["traffic_status"] = [TrafficEntry.from_dict(t) for t in data.get("traffic_status", [])]
        values["tag_ports"] = {str(k): int(v) for k, v in data.get("tag_ports", {}).items()}
        values["annotations"] = {str(k): str(v) for k, v in data.get("annotations", {}).items()}
        values["iam_bindings"] = {str(k): [str(m) for m in v] for k, v in data.get("iam_bindings", {}).items()}
        return cls(**values)


@dataclass
class SandboxState:
    """The whole sandbox: project, region, the daemon's ports, services and revisions."""

    project: str = DEFAULT_PROJECT
    region: str = DEFAULT_REGION
    api_port: int = 0
    monitoring_port: int = 0
    logging_port: int = 0
    services: dict[str, ServiceState] = field(default_factory=dict)
    revisions: dict[str, RevisionState] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxState:
        return cls(
            project=str(data.get("project", DEFAULT_PROJECT)),
            region=str(data.get("region", DEFAULT_REGION)),
            api_port=int(data.get("api_port", 0)),
            monitoring_port=int(data.get("monitoring_port", 0)),
            logging_port=int(data.get("logging_port", 0)),
            services={k: ServiceState.from_dict(v) for k, v in data.get("services", {}).items()},
            revisions={k: RevisionState.from_dict(v) for k, v in data.get("revisions", {}).items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def revisions_of(self, service: str) -> list[RevisionState]:
        """The service's revisions, oldest first."""
        return sorted((r for r in self.revisions.values() if r.service == service), key=lambda r: r.number)


def load_state(path: Path) -> SandboxState:
    """Read ``state.json``; a missing file is an empty sandbox."""
    if not path.exists():
        return SandboxState()
    return SandboxState.from_dict(json.loads(path.read_text()))


def save_state(path: Path, state: SandboxState) -> None:
    """Write ``state.json`` atomically: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state.to_dict(), f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

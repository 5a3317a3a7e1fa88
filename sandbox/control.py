"""Python API of the sandbox, for tests and the demo.

:class:`Sandbox` drives the daemon the way the CLI does (``up``/``down``) and
talks to its private control service (:mod:`sandbox.control_service`) for
deploys, traffic changes, fault injection and call counts. ``traffic()`` reads
through the real ``run_v2`` client (so it counts as one ``GetService`` call).

Call counts (:meth:`Sandbox.calls`): ``calls("UpdateService")`` is the number of
UpdateService requests received with ``validate_only=False`` (including those
answered with an injected error); ``calls("UpdateService:validate_only")``
counts the dry runs. Changes made through :meth:`Sandbox.deploy` and
:meth:`Sandbox.update_traffic` are not Admin API calls and are not counted.

Example::

    sb = Sandbox.up(tmp_path / "sandbox")
    rev1 = sb.deploy("hello")
    rev2 = sb.deploy("hello", tag="canary", no_traffic=True)
    sb.inject("UpdateService", "UNAVAILABLE", 1)
    ...
    sb.down()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc

from sandbox import lifecycle
from sandbox.control_service import CONTROL_SERVICE
from sandbox.lifecycle import SandboxError

__all__ = ["ControlClient", "ControlError", "Sandbox", "SandboxError", "environment"]


class ControlError(SandboxError):
    """The control service refused a request (``code`` is the gRPC status name)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class ControlClient:
    """JSON-over-gRPC client of ``revgate.sandbox.Control``."""

    def __init__(self, endpoint: str, *, timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._channel = grpc.insecure_channel(endpoint)

    def call(self, method: str, payload: dict[str, Any] | None = None, *, timeout: float | None = None) -> dict[str, Any]:
        stub = self._channel.unary_unary(
            f"/{CONTROL_SERVICE}/{method}",
            request_serializer=lambda obj: json.dumps(obj).encode(),
            response_deserializer=json.loads,
        )
        try:
            return stub(payload or {}, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as exc:
            code = exc.code().name if exc.code() is not None else "UNKNOWN"
            if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and not exc.details():
                raise ControlError(f"the sandbox at {self.endpoint} does not answer ({code})", code=code) from None
            raise ControlError(exc.details() or code, code=code) from None

    def close(self) -> None:
        self._channel.close()


def environment(info: dict[str, Any]) -> dict[str, str]:
    """The variables to export so that revgate and the Google clients use the sandbox."""
    return {
        "CLOUD_RUN_API_ENDPOINT": str(info["api_endpoint"]),
        "CLOUD_MONITORING_API_ENDPOINT": str(info["monitoring_endpoint"]),
        "CLOUD_LOGGING_API_ENDPOINT": str(info["logging_endpoint"]),
        "GOOGLE_CLOUD_PROJECT": str(info["project"]),
        "CLOUD_RUN_REGION": str(info["region"]),
        "REVGATE_AUTH_TOKEN": str(info["token"]),
    }


class Sandbox:
    """A running sandbox: ``Sandbox.up(home)`` … ``sandbox.down()`` (also a context manager)."""

    def __init__(self, home: Path, info: dict[str, Any]) -> None:
        self.home = home
        self.info = info
        self.env: dict[str, str] = environment(info)
        self.control = ControlClient(str(info["api_endpoint"]))

    @classmethod
    def up(
        cls,
        home: Path,
        *,
        project: str = "sandbox-project",
        region: str = "europe-west1",
        seed: int | None = None,
        metrics_delay: float = 0.0,
        operation_delay: float = 0.0,
        ready_timeout: float | None = None,
        etag_mode: str | None = None,
        logs_delay: float = 0.0,
        sample_period: float | None = None,
    ) -> Sandbox:
        info = lifecycle.start(
            Path(home),
            project=project,
            region=region,
            seed=seed,
            metrics_delay=metrics_delay,
            operation_delay=operation_delay,
            ready_timeout=ready_timeout,
            etag_mode=etag_mode,
            sample_period=sample_period,
        )
        sandbox = cls(Path(home), info)
        if logs_delay:
            sandbox.set_logs_delay(logs_delay)
        return sandbox

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    @property
    def project(self) -> str:
        return str(self.info["project"])

    @property
    def region(self) -> str:
        return str(self.info["region"])

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    # -- deploys and traffic ------------------------------------------------------------

    def deploy(
        self,
        service: str,
        *,
        tag: str | None = None,
        no_traffic: bool = False,
        faults: tuple[str, ...] | list[str] = (),
        not_ready: bool = False,
        ready_timeout: float | None = None,
        startup_probe: str = "tcp",
        allow_unauthenticated: bool | None = None,
        **settings: Any,
    ) -> str:
        """Deploy a new revision; its name. Raises :class:`SandboxError` if a fault-free revision is not Ready.

        ``settings`` (``gcloud run deploy``'s flags): ``image``, ``memory``, ``cpu``,
        ``timeout_s``, ``concurrency``, ``min_instances``, ``max_instances``, ``container_port``,
        ``service_account``, ``env`` (a dict), ``secrets`` (a dict: env name or file path ->
        ``SECRET:VERSION``); what is not given is the previous revision's
        (:mod:`sandbox.revision_settings`). ``allow_unauthenticated``: True/False sets the service's
        ``roles/run.invoker`` binding for ``allUsers``; None leaves it.

        ``startup_probe``: ``tcp`` (Cloud Run's default: Ready once the port
        accepts connections) or ``http`` (Ready once ``GET /health`` answers 200).
        """
        result = self.control.call(
            "Deploy",
            {
                "service": service,
                "tag": tag,
                "no_traffic": no_traffic,
                "faults": list(faults),
                "not_ready": not_ready,
                "ready_timeout": ready_timeout,
                "startup_probe": startup_probe,
                "settings": settings,
                "allow_unauthenticated": allow_unauthenticated,
            },
        )
        if not result["ready"] and not (faults or not_ready):
            raise SandboxError(f"revision {result['revision']} is not Ready: {result['message']}")
        return str(result["revision"])

    def update_traffic(
        self,
        service: str,
        *,
        to_revisions: dict[str, int] | None = None,
        to_latest: bool = False,
        to_tags: dict[str, int] | None = None,
    ) -> None:
        """``gcloud run services update-traffic``: exactly one of the keyword arguments."""
        if sum(bool(x) for x in (to_revisions, to_latest, to_tags)) != 1:
            raise ValueError("give exactly one of to_revisions, to_latest, to_tags")
        self.control.call(
            "UpdateTraffic",
            {"service": service, "to_revisions": to_revisions, "to_latest": to_latest, "to_tags": to_tags},
        )

    def status(self, service: str | None = None) -> dict[str, Any]:
        return self.control.call("Status", {"service": service})

    def _service(self, service: str) -> dict[str, Any]:
        return self.status(service)["services"][0]

    def service_url(self, service: str) -> str:
        return str(self._service(service)["uri"])

    def tag_url(self, service: str, tag: str) -> str:
        tags = self._service(service)["tags"]
        if tag not in tags:
            raise SandboxError(f"service {service!r} has no tag {tag!r} (tags: {', '.join(tags) or 'none'})")
        return str(tags[tag])

    def service_name(self, service: str) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{service}"

    def get_service(self, service: str) -> Any:
        """The ``run_v2.Service`` read through the real client (one GetService call)."""
        from google.cloud import run_v2
        from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

        channel = grpc.insecure_channel(self.env["CLOUD_RUN_API_ENDPOINT"])
        try:
            client = run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel))
            return client.get_service(name=self.service_name(service), timeout=10)
        finally:
            channel.close()

    def traffic(self, service: str) -> list[dict[str, Any]]:
        """``traffic_statuses`` read through the real ``run_v2`` client: type, revision, percent, tag, uri."""
        from google.cloud import run_v2

        svc = self.get_service(service)
        return [
            {
                "type": run_v2.TrafficTargetAllocationType(t.type_).name.removeprefix("TRAFFIC_TARGET_ALLOCATION_TYPE_"),
                "revision": t.revision,
                "percent": t.percent,
                "tag": t.tag,
                "uri": t.uri,
            }
            for t in svc.traffic_statuses
        ]

    # -- faults and counts --------------------------------------------------------------

    def inject(self, method: str, code: str, times: int = 1, message: str = "", *, after: int = 0) -> None:
        """The next ``times`` calls of ``method`` fail with ``code`` (``-1``: always, ``0``: clear), saying ``message``,
        once ``after`` more calls have been answered normally.

        Besides the Admin API's method names: ``UpdateService:applied`` (the change is made, then the answer
        is an error) and ``UpdateService:annotations`` (an update whose mask names ``annotations`` is refused)."""
        self.control.call("Inject", {"method": method, "code": code, "times": times, "message": message, "after": after})

    def delete_revision(self, revision: str, *, service: str | None = None) -> None:
        """``gcloud run revisions delete REVISION``: no longer listed, served or routed. Refused
        (:class:`ControlError` with code FAILED_PRECONDITION) while it serves traffic or a tag names it."""
        self.control.call("DeleteRevision", {"revision": revision, "service": service})

    def set_etag_mode(self, mode: str) -> None:
        """How a stale etag is answered: ``ABORTED`` (default), ``FAILED_PRECONDITION`` or ``NONE`` (not checked)."""
        self.control.call("SetEtagMode", {"mode": mode})

    def fail_next_reconcile(self, message: str) -> None:
        """The next UpdateService operation fails: terminal_condition FAILED with ``message``, traffic unchanged."""
        self.control.call("FailReconcile", {"message": message})

    def race_next_get(self, service: str, to_revisions: dict[str, int]) -> None:
        """Right after the next GetService of ``service`` is answered, another writer sets this split:
        whoever read the service then holds a stale etag (a real conflict, answered as the etag mode says)."""
        self.control.call("RaceNextGet", {"service": service, "to_revisions": to_revisions})

    def service_urls(self, service: str) -> list[str]:
        """``service.urls``: the loopback URL, then the hash-style and deterministic-style URLs."""
        return [str(u) for u in self._service(service)["urls"]]

    def set_operation_delay(self, seconds: float) -> None:
        self.control.call("SetOperationDelay", {"seconds": seconds})

    def set_metrics_delay(self, seconds: float) -> None:
        self.control.call("SetMetricsDelay", {"seconds": seconds})

    def set_logs_delay(self, seconds: float, log: str | None = None) -> None:
        """Seconds before a Cloud Logging entry is visible to ListLogEntries (entries already written too);
        with ``log`` (``stdout``, ``stderr``, ``requests``, ``system`` or a log id), that log name's own delay."""
        self.control.call("SetLogsDelay", {"seconds": seconds, **({"log": log} if log else {})})

    def log_filters(self) -> list[str]:
        """Every filter the fake Cloud Logging API received in ListLogEntries, oldest first."""
        return [str(f) for f in self.control.call("LogFilters")["filters"]]

    def calls(self, method: str) -> int:
        """How many ``method`` calls the fake received (see the module docstring)."""
        return int(self.control.call("Calls")["counts"].get(method, 0))

    def reset_calls(self) -> None:
        """Zero the counts and clear every injected fault."""
        self.control.call("ResetCalls")

    def down(self) -> None:
        self.control.close()
        lifecycle.stop(self.home)

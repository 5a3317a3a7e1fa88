"""The sandbox daemon: fake Google APIs on gRPC, the router, the revision processes.

Started detached by ``python -m sandbox up`` (``python -m sandbox.daemon --home
HOME ...``). It binds the Admin API port (which also serves the private control
service) and the Monitoring port, restarts the revision processes of the
persisted state, binds the service and tag ports, then writes
``HOME/daemon.json`` (pid and endpoints): the CLI waits for that file. It stops
on SIGTERM/SIGINT or the control ``Shutdown`` call, stopping every revision
process and removing ``daemon.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from sandbox.admin_api import admin_handlers
from sandbox.calls import CallLog
from sandbox.control_service import control_handler
from sandbox.core import SandboxCore
from sandbox.ports import HOST, pick_port
from sandbox.processes import DEFAULT_TOKEN, ProcessManager
from sandbox.router import Router
from sandbox.sampler import Sampler
from sandbox.state import DEFAULT_PROJECT, DEFAULT_REGION, load_state, save_state

__all__ = ["DAEMON_FILE", "main", "run"]

DAEMON_FILE = "daemon.json"
log = logging.getLogger("sandbox.daemon")


class _Metrics:
    """The fake Monitoring store, when ``sandbox.monitoring`` is available."""

    def __init__(self, *, project: str, region: str, delay: float, period: float = 60.0) -> None:
        self.region = region
        self.store: Any = None
        self.handler: grpc.GenericRpcHandler | None = None
        try:
            from sandbox import monitoring
        except ImportError as exc:
            log.warning("fake Monitoring unavailable (%s): requests are not recorded", exc)
            return
        self.store = monitoring.MetricStore(project=project, visibility_delay=delay, sample_period=period)
        self.handler = monitoring.metric_service_handler(self.store)

    def request(self, service: str, revision: str, status: int, latency_ms: float) -> None:
        if self.store is not None:
            self.store.record_request(
                service=service, revision=revision, location=self.region, status_code=status, latency_ms=latency_ms
            )

    def gauge(self, metric_type: str, service: str, revision: str, value: float) -> None:
        if self.store is not None:
            labels = {"state": "active"} if metric_type.endswith("/instance_count") else None
            self.store.record_gauge(
                metric_type, service=service, revision=revision, location=self.region, value=value, metric_labels=labels
            )

    def set_delay(self, seconds: float) -> None:
        if self.store is not None:
            self.store.visibility_delay = seconds


def _cloud_logging(*, project: str, region: str, delay: float) -> Any:
    """The fake Cloud Logging (:mod:`sandbox.logging_api`): the store, its writers and its gRPC handler."""
    from sandbox.logging_api import Logs

    return Logs(project=project, region=region, delay=delay)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.daemon", description="Run the sandbox daemon in the foreground.")
    parser.add_argument("--home", type=Path, required=True, help="Sandbox home directory (state, logs).")
    parser.add_argument("--project", default=None, help="Project id (default: persisted, else sandbox-project).")
    parser.add_argument("--region", default=None, help="Region (default: persisted, else europe-west1).")
    parser.add_argument("--seed", type=int, default=None, help="Seed of the router's traffic split.")
    parser.add_argument("--metrics-delay", type=float, default=0.0, help="Seconds before a metric point is visible.")
    parser.add_argument("--sample-period", type=float, default=60.0, help="Seconds per metric sample point (Cloud Run: 60).")
    parser.add_argument("--logs-delay", type=float, default=0.0, help="Seconds before a log entry is visible.")
    parser.add_argument("--operation-delay", type=float, default=0.0, help="Seconds before an UpdateService operation is done.")
    parser.add_argument("--ready-timeout", type=float, default=30.0, help="Seconds a deploy waits for /health.")
    parser.add_argument(
        "--etag-mode",
        type=str.upper,
        choices=["ABORTED", "FAILED_PRECONDITION", "NONE"],
        default="ABORTED",
        help="How UpdateService answers a stale etag (NONE: not checked).",
    )
    parser.add_argument("--sample-interval", type=float, default=5.0, help="Seconds between resource samples.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


async def run(args: argparse.Namespace) -> int:
    home: Path = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    (home / DAEMON_FILE).unlink(missing_ok=True)
    state = load_state(home / "state.json")
    if args.project and args.project != state.project and state.services:
        log.error("state in %s belongs to project %r, not %r", home, state.project, args.project)
        return 2
    if args.region and args.region != state.region and state.services:
        log.error("state in %s belongs to region %r, not %r", home, state.region, args.region)
        return 2
    state.project = args.project or state.project or DEFAULT_PROJECT
    state.region = args.region or state.region or DEFAULT_REGION
    state.api_port = pick_port(state.api_port)
    state.monitoring_port = pick_port(state.monitoring_port, taken={state.api_port})
    state.logging_port = pick_port(state.logging_port, taken={state.api_port, state.monitoring_port})
    save_state(home / "state.json", state)

    token = os.environ.get("SAMPLE_API_TOKEN") or DEFAULT_TOKEN
    logs = _cloud_logging(project=state.project, region=state.region, delay=getattr(args, "logs_delay", 0.0))
    processes = ProcessManager(home=home, token=token, on_output=logs.output, on_system=logs.system)
    core = SandboxCore(
        home=home, state=state, processes=processes, operation_delay=args.operation_delay, ready_timeout=args.ready_timeout
    )
    core.etag_mode = args.etag_mode
    metrics = _Metrics(project=state.project, region=state.region, delay=args.metrics_delay, period=args.sample_period)
    calls = CallLog()
    logs.calls = calls  # ListLogEntries is counted, and faults injected, like the Admin API's methods
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def shutdown() -> None:
        loop.call_soon_threadsafe(stopping.set)

    router = Router(seed=args.seed, on_request=metrics.request, on_log=logs.request_record)

    def listen(ports: list[int]) -> None:
        asyncio.run_coroutine_threadsafe(router.listen(ports), loop).result(timeout=10)

    core.connect_router(publish=router.set_table, listen=listen)
    core.on_startup = lambda service, revision, ms: metrics.gauge(
        "run.googleapis.com/container/startup_latencies", service, revision, ms
    )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="sandbox-grpc"))
    handlers = [*admin_handlers(core, calls), control_handler(core, calls, set_metrics_delay=metrics.set_delay, shutdown=shutdown, logs=logs)]
    if metrics.handler is not None:
        handlers.append(metrics.handler)
    handlers.append(logs.handler)
    server.add_generic_rpc_handlers(handlers)
    server.add_insecure_port(f"{HOST}:{state.api_port}")
    server.add_insecure_port(f"{HOST}:{state.monitoring_port}")
    server.add_insecure_port(f"{HOST}:{state.logging_port}")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    sampler = Sampler(processes, metrics.gauge, interval=args.sample_interval)
    try:
        await loop.run_in_executor(None, core.restart_revisions)
        await router.listen(core.router_ports())
        router.set_table(core.routing_table())
        server.start()
        sampler.start()
        threading.Thread(target=sampler.sample, daemon=True).start()
        info = {
            "pid": os.getpid(),
            "api_endpoint": f"{HOST}:{state.api_port}",
            "monitoring_endpoint": f"{HOST}:{state.monitoring_port}",
            "logging_endpoint": f"{HOST}:{state.logging_port}",
            "project": state.project,
            "region": state.region,
            "token": token,
        }
        tmp = home / (DAEMON_FILE + ".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, home / DAEMON_FILE)
        log.info("sandbox ready: %s", info | {"token": "***"})
        await stopping.wait()
        log.info("stopping")
    finally:
        (home / DAEMON_FILE).unlink(missing_ok=True)
        sampler.stop()
        server.stop(grace=0.5).wait(2)
        await router.close()
        await loop.run_in_executor(None, processes.stop_all)
        with core.lock:
            core.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

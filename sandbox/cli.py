"""``python -m sandbox [--home DIR] COMMAND``: the local Cloud Run, in gcloud's words.

Commands::

    up [--project P] [--region R] [--seed N] [--metrics-delay S] [--logs-delay S] [--operation-delay S] [--ready-timeout S]
    deploy SERVICE [--tag T] [--no-traffic] [--faults LIST] [--not-ready] [--ready-timeout S]
           [--image I] [--memory M] [--cpu C] [--timeout S] [--concurrency N] [--min-instances N]
           [--max-instances N] [--port P] [--service-account SA] [--set-env-vars K=V,...]
           [--set-secrets K=SECRET:VERSION,...] [--[no-]allow-unauthenticated]
    update-traffic SERVICE (--to-revisions R=P,... | --to-latest | --to-tags T=P,...)
    status [SERVICE] [--json]
    inject METHOD CODE [--times N] [--after N]   e.g. inject UpdateService UNAVAILABLE --times 1
    delete-revision REVISION              refused while it serves traffic or a tag names it
    delay {operation,metrics,logs} SECONDS [--log NAME]
    calls [--json]
    down

``up`` prints the URLs as ``#`` comments and the environment as ``export``
lines, so ``eval "$(python -m sandbox up)"`` works. HOME defaults to
``$REVGATE_SANDBOX_HOME`` or ``.sandbox``. Exit codes: 0 done, 1 the sandbox
could not do it (one line says why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from sandbox import lifecycle
from sandbox.control import ControlClient, ControlError, environment
from sandbox.lifecycle import SandboxError
from sandbox.traffic import TrafficError, parse_assignments

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
    return value


def _assignments(text: str) -> dict[str, int]:
    try:
        result = parse_assignments(text)
    except TrafficError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return result


def _faults(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _whole(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    return parse


def _duration(text: str) -> int:
    """gcloud's ``--timeout``: seconds (``300``, ``300s``) or minutes (``5m``)."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in ("s", "m") else (text, "s")
    try:
        value = int(number) * (60 if unit == "m" else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 300 or 300s, or minutes like 5m, got {text!r}") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"the request timeout is 1 s to 3600 s, got {text!r}")
    return value


def _settings_parser(parse: Any) -> Any:
    def wrapped(text: str) -> Any:
        from sandbox.revision_settings import SettingsError

        try:
            return parse(text)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return wrapped


def _add_revision_flags(deploy: argparse.ArgumentParser) -> None:
    """``gcloud run deploy``'s flags for the revision's configuration; what is not given is kept from the previous revision."""
    from sandbox.revision_settings import parse_env_vars, parse_secrets

    deploy.add_argument("--image", default=None, help="Container image, by tag or digest (default for a new service: sandbox/app).")
    deploy.add_argument("--memory", default=None, help="Memory limit, like 512Mi or 2Gi (default 512Mi).")
    deploy.add_argument("--cpu", default=None, help="CPU limit, like 1, 2 or 1000m (default 1).")
    deploy.add_argument("--timeout", type=_duration, default=None, help="Request timeout: 300, 300s or 5m (default 300 s).")
    deploy.add_argument("--concurrency", type=_whole(1, 1000), default=None, help="Requests at once per instance (default 80).")
    deploy.add_argument("--min-instances", type=_whole(0, 1000), default=None, help="Minimum instances (default 0).")
    deploy.add_argument("--max-instances", type=_whole(1, 1000), default=None, help="Maximum instances (default 100).")
    deploy.add_argument("--port", type=_whole(1, 65535), default=None, help="Container port (default 8080).")
    deploy.add_argument("--service-account", default=None, help="Service identity (default: PROJECT_NUMBER-compute@developer.gserviceaccount.com).")
    deploy.add_argument("--set-env-vars", type=_settings_parser(parse_env_vars), default=None, metavar="K=V,...", help="Replace every environment variable.")
    deploy.add_argument("--set-secrets", type=_settings_parser(parse_secrets), default=None, metavar="K=SECRET:VERSION,/PATH=SECRET:VERSION", help="Replace every secret (env vars and mounted files).")
    public = deploy.add_mutually_exclusive_group()
    public.add_argument("--allow-unauthenticated", dest="allow_unauthenticated", action="store_true", default=None, help="Bind allUsers to roles/run.invoker.")
    public.add_argument("--no-allow-unauthenticated", dest="allow_unauthenticated", action="store_false", help="Remove allUsers from roles/run.invoker.")
    check = deploy.add_mutually_exclusive_group()
    check.add_argument("--no-invoker-iam-check", dest="invoker_iam_disabled", action="store_true", default=None, help="Disable the invoker IAM check (public).")
    check.add_argument("--invoker-iam-check", dest="invoker_iam_disabled", action="store_false", help="Enable the invoker IAM check again.")
    deploy.add_argument("--min", dest="service_min_instances", type=_whole(0, 1000), default=None, help="Service-level minimum instances (0: unset).")
    deploy.add_argument("--max", dest="service_max_instances", type=_whole(0, 1000), default=None, help="Service-level maximum instances (0: unset).")


def _revision_settings(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "image": args.image,
        "memory": args.memory,
        "cpu": args.cpu,
        "timeout_s": args.timeout,
        "concurrency": args.concurrency,
        "min_instances": args.min_instances,
        "max_instances": args.max_instances,
        "container_port": args.port,
        "service_account": args.service_account,
        "env": args.set_env_vars,
        "secrets": args.set_secrets,
        "invoker_iam_disabled": args.invoker_iam_disabled,
        "service_min_instances": args.service_min_instances,
        "service_max_instances": args.service_max_instances,
    }
    return {k: v for k, v in given.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m sandbox", description="A local stand-in for Google Cloud Run.")
    parser.add_argument("--home", type=Path, default=None, help="Sandbox home (default $REVGATE_SANDBOX_HOME or .sandbox).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="Start the sandbox and print the URLs and the environment to export.")
    up.add_argument("--project", default=None, help="Project id (default sandbox-project).")
    up.add_argument("--region", default=None, help="Region (default europe-west1).")
    up.add_argument("--seed", type=int, default=None, help="Seed of the router's random traffic split.")
    up.add_argument("--metrics-delay", type=_seconds, default=0.0, help="Seconds before a metric point is visible.")
    up.add_argument("--logs-delay", type=_seconds, default=0.0, help="Seconds before a Cloud Logging entry is visible.")
    up.add_argument("--operation-delay", type=_seconds, default=0.0, help="Seconds before an UpdateService operation is done.")
    up.add_argument(
        "--sample-period",
        type=_seconds,
        default=None,
        help="Seconds per Cloud Monitoring sample point (default 60, as Cloud Run; shorter makes rollouts testable in seconds).",
    )
    up.add_argument("--ready-timeout", type=_seconds, default=None, help="Seconds a deploy waits for its startup probe (default 30).")
    up.add_argument(
        "--etag-mode",
        type=str.upper,
        choices=["ABORTED", "FAILED_PRECONDITION", "NONE"],
        default=None,
        help="How UpdateService answers a stale etag (default ABORTED; NONE: not checked).",
    )

    deploy = sub.add_parser("deploy", help="Deploy a new revision of SERVICE (creating the service).")
    deploy.add_argument("service", metavar="SERVICE")
    deploy.add_argument("--tag", default=None, help="Give the new revision this tag URL (0 %% traffic).")
    deploy.add_argument("--no-traffic", action="store_true", help="Leave the traffic split unchanged.")
    deploy.add_argument("--faults", type=_faults, default=[], help="Comma-separated faults of the sample service.")
    deploy.add_argument("--not-ready", action="store_true", help="Create the revision failed (Ready=False), no process.")
    deploy.add_argument("--ready-timeout", type=_seconds, default=None, help="Seconds to wait for the startup probe.")
    deploy.add_argument(
        "--startup-probe",
        choices=["tcp", "http"],
        default="tcp",
        help="tcp (Cloud Run's default: Ready once the port accepts connections) or http (GET /health answers 200).",
    )
    _add_revision_flags(deploy)

    traffic = sub.add_parser("update-traffic", help="Change the traffic split of SERVICE.")
    traffic.add_argument("service", metavar="SERVICE")
    how = traffic.add_mutually_exclusive_group(required=True)
    how.add_argument("--to-revisions", type=_assignments, metavar="R=P,...", help="Percent per revision (LATEST allowed).")
    how.add_argument("--to-latest", action="store_true", help="All traffic to the latest Ready revision.")
    how.add_argument("--to-tags", type=_assignments, metavar="T=P,...", help="Percent per tag.")

    status = sub.add_parser("status", help="Show services, revisions, traffic, tags and URLs.")
    status.add_argument("service", nargs="?", metavar="SERVICE")
    status.add_argument("--json", action="store_true", help="Print JSON.")

    inject = sub.add_parser("inject", help="Make the next calls of an Admin API method fail.")
    inject.add_argument("method", metavar="METHOD", help="e.g. UpdateService, GetService, GetOperation.")
    inject.add_argument("code", metavar="CODE", help="gRPC status, e.g. UNAVAILABLE, PERMISSION_DENIED.")
    inject.add_argument("--times", type=int, default=1, help="How many calls fail (-1 always, 0 clears).")
    inject.add_argument("--after", type=int, default=0, help="Calls answered normally before the faults start.")

    delete = sub.add_parser("delete-revision", help="Delete a revision that serves no traffic (gcloud run revisions delete).")
    delete.add_argument("revision", metavar="REVISION")

    delay = sub.add_parser("delay", help="Set the operation delay, or the metrics or logs visibility delay.")
    delay.add_argument("which", choices=["operation", "metrics", "logs"])
    delay.add_argument("seconds", type=_seconds)
    delay.add_argument("--log", default=None, metavar="NAME", help="logs only: the delay of one log name (stdout, stderr, requests, system or a log id).")

    calls = sub.add_parser("calls", help="How many times each fake API method was called.")
    calls.add_argument("--json", action="store_true", help="Print JSON.")

    sub.add_parser("down", help="Stop the sandbox and every revision process.")
    return parser


def _client(home: Path) -> tuple[ControlClient, dict[str, Any]]:
    info = lifecycle.read_info(home)
    if info is None:
        raise SandboxError(f"the sandbox is not running in {home}: start it with `python -m sandbox up`")
    return ControlClient(str(info["api_endpoint"])), info


def _print_up(info: dict[str, Any], status: dict[str, Any]) -> None:
    for svc in status["services"]:
        print(f"# service {svc['name']}: {svc['uri']}")
        for tag, url in svc["tags"].items():
            print(f"# tag {tag} of {svc['name']}: {url}")
    for key, value in environment(info).items():
        print(f"export {key}={value}")


def _percent_of(svc: dict[str, Any], revision: str) -> tuple[int, list[str]]:
    percent, tags = 0, []
    for e in svc["traffic_status"]:
        if e["revision"] == revision:
            percent += e["percent"]
            if e["tag"]:
                tags.append(e["tag"])
    return percent, tags


def _print_status(status: dict[str, Any]) -> None:
    print(f"project {status['project']}  region {status['region']}  Admin API {status['api_endpoint']}  "
          f"Monitoring {status['monitoring_endpoint']}  Logging {status.get('logging_endpoint', '-')}")
    if not status["services"]:
        print("no services: deploy one with `python -m sandbox deploy SERVICE`")
    for svc in status["services"]:
        print()
        print(f"service {svc['name']}  {svc['uri']}  etag {svc['etag']}" + ("  (reconciling)" if svc["reconciling"] else ""))
        spec = ", ".join(
            f"{e['type'] if e['type'] == 'LATEST' else e['revision']}={e['percent']}%" + (f" tag {e['tag']}" if e["tag"] else "")
            for e in svc["traffic"]
        )
        print(f"  traffic: {spec}")
        rows = [("REVISION", "READY", "TRAFFIC", "TAGS", "URL / REASON")]
        for rev in svc["revisions"]:
            percent, tags = _percent_of(svc, rev["name"])
            urls = " ".join(svc["tags"][t] for t in tags if t in svc["tags"])
            detail = urls if rev["ready"] else f"{rev['reason']}: {rev['message']}"
            rows.append((rev["name"], "True" if rev["ready"] else "False", f"{percent}%", ",".join(tags) or "-", detail))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])


def run(args: argparse.Namespace) -> int:
    home: Path = (args.home or lifecycle.default_home()).resolve()
    if args.command == "up":
        info = lifecycle.start(
            home,
            project=args.project,
            region=args.region,
            seed=args.seed,
            metrics_delay=args.metrics_delay,
            operation_delay=args.operation_delay,
            ready_timeout=args.ready_timeout,
            etag_mode=args.etag_mode,
            sample_period=args.sample_period,
        )
        client = ControlClient(str(info["api_endpoint"]))
        if args.logs_delay:
            client.call("SetLogsDelay", {"seconds": args.logs_delay})
        _print_up(info, client.call("Status"))
        return 0
    if args.command == "down":
        if lifecycle.stop(home):
            print(f"sandbox in {home} stopped")
        else:
            print(f"sandbox in {home} was not running")
        return 0
    client, info = _client(home)
    if args.command == "deploy":
        result = client.call(
            "Deploy",
            {
                "service": args.service,
                "tag": args.tag,
                "no_traffic": args.no_traffic,
                "faults": args.faults,
                "not_ready": args.not_ready,
                "ready_timeout": args.ready_timeout,
                "startup_probe": args.startup_probe,
                "settings": _revision_settings(args),
                "allow_unauthenticated": args.allow_unauthenticated,
            },
            timeout=(args.ready_timeout or 30.0) + 30.0,
        )
        svc = client.call("Status", {"service": args.service})["services"][0]
        if not result["ready"]:
            print(f"revision {result['revision']} was created but is not Ready: {result['message']}", file=sys.stderr)
            return 1
        percent, _ = _percent_of(svc, result["revision"])
        print(f"revision {result['revision']} of service {args.service} is Ready, serving {percent}% of traffic")
        print(f"service URL: {svc['uri']}")
        if args.tag:
            print(f"tag URL ({args.tag}): {svc['tags'][args.tag]}")
        return 0
    if args.command == "update-traffic":
        result = client.call(
            "UpdateTraffic",
            {"service": args.service, "to_revisions": args.to_revisions, "to_latest": args.to_latest, "to_tags": args.to_tags},
        )
        print("traffic: " + ", ".join(
            f"{e['revision']}={e['percent']}%" + (f" (tag {e['tag']})" if e["tag"] else "") for e in result["traffic"]
        ))
        return 0
    if args.command == "status":
        status = client.call("Status", {"service": args.service})
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            _print_status(status)
        return 0
    if args.command == "inject":
        client.call("Inject", {"method": args.method, "code": args.code, "times": args.times, "after": args.after})
        print(f"{args.method}: next {'calls' if args.times < 0 else args.times} fail with {args.code.upper()}"
              if args.times else f"{args.method}: injected faults cleared")
        return 0
    if args.command == "delete-revision":
        client.call("DeleteRevision", {"revision": args.revision})
        print(f"revision {args.revision.rsplit('/', 1)[-1]} deleted")
        return 0
    if args.command == "delay":
        method = {"operation": "SetOperationDelay", "metrics": "SetMetricsDelay", "logs": "SetLogsDelay"}[args.which]
        client.call(method, {"seconds": args.seconds, **({"log": args.log} if args.log and args.which == "logs" else {})})
        print(f"{args.which} delay: {args.seconds:g}s" + (f" for log {args.log}" if args.log and args.which == "logs" else ""))
        return 0
    if args.command == "calls":
        counts = client.call("Calls")["counts"]
        if args.json:
            print(json.dumps(counts, indent=2, sort_keys=True))
        elif not counts:
            print("no Admin API calls received yet")
        else:
            for method, n in sorted(counts.items()):
                print(f"{method:32} {n}")
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ControlError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 2 if exc.code == "INVALID_ARGUMENT" else 1
    except SandboxError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0

"""What is under test, and the service as it was before the run.

:func:`resolve_deployment` runs once, in the controller, before any test: it
reads the service (``GetService``) and its revisions (``ListRevisions``), finds
the revision(s) under test and the previous revision (the baseline), and keeps
the traffic and the ``etag`` as the pre-run snapshot. The result is stored in
``config.stash[deployment_key]`` (``None`` when no service is given: the checks
run, there is no rollback) and sent to xdist workers through ``workerinput``.

Anything wrong (no region or project, a service, region or project that does
not exist, a URL that belongs to no revision of the service, no credentials)
raises :class:`~revgate.errors.ConfigError`: one line, nothing changed.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from revgate.errors import ConfigError

from .options import MODES
from .marks import FAILED_KEY, read_marks
from .plan import PlanError, baseline_of, choose_split
from .target import RollbackTarget, rollback_target
from .traffic import RevisionInfo, TrafficEntry, serving

__all__ = ["AdminApiUnavailable", "Deployment", "deployment_key", "service_snapshot_key", "resolve_deployment"]


class AdminApiUnavailable(ConfigError):
    """The Cloud Run Admin API did not answer at start (unavailable, deadline, retries spent): the
    gate's own problem, not the input's: NOT VERIFIED (exit 6), nothing checked, nothing changed."""

SERVICE_ENV = ("CLOUD_RUN_SERVICE",)
REGION_ENV = ("CLOUD_RUN_REGION", "CLOUDSDK_RUN_REGION")
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
MODE_ENV = "REVGATE_ROLLBACK"
REPORT_ENV = "REVGATE_ROLLBACK_REPORT"


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """The service under test and its pre-run snapshot (immutable; safe to send to workers)."""

    project: str
    region: str
    service: str
    service_name: str
    """``projects/P/locations/R/services/S``."""
    revisions_under_test: tuple[str, ...]
    previous_revision: str | None
    """The baseline: ``--previous-revision``, else the revision that would get the most traffic back; None if none."""
    traffic_before: tuple[TrafficEntry, ...]
    """``traffic_statuses`` when the run started."""
    etag: str
    generation: int = 0
    """The service's ``generation`` when the run started (compared, with the etag, before any update)."""
    mode: str = "on-failure"
    """``on-failure``, ``dry-run`` or ``off``."""
    explicit_previous: str | None = None
    """``--previous-revision`` as given (the plan's rule 1)."""
    revisions: tuple[RevisionInfo, ...] = field(default=())
    """Every revision of the service when the run started, newest first."""
    report_path: str | None = None
    failed_marked: tuple[str, ...] = ()
    """Revisions listed in ``revgate.dev/failed-revisions`` when the run started."""
    last_serving: dict[str, int] = field(default_factory=dict)
    """``revgate.dev/last-serving`` when the run started."""

    def to_workerinput(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "region": self.region,
            "service": self.service,
            "service_name": self.service_name,
            "revisions_under_test": list(self.revisions_under_test),
            "previous_revision": self.previous_revision,
            "traffic_before": [e.to_dict() for e in self.traffic_before],
            "etag": self.etag,
            "generation": self.generation,
            "mode": self.mode,
            "explicit_previous": self.explicit_previous,
            "revisions": [r.to_dict() for r in self.revisions],
            "report_path": self.report_path,
            "failed_marked": list(self.failed_marked),
            "last_serving": dict(self.last_serving),
        }

    @classmethod
    def from_workerinput(cls, data: dict[str, Any]) -> Deployment:
        data = dict(data)
        data["revisions_under_test"] = tuple(data["revisions_under_test"])
        data["traffic_before"] = tuple(TrafficEntry.from_dict(e) for e in data["traffic_before"])
        data["revisions"] = tuple(RevisionInfo.from_dict(r) for r in data["revisions"])
        data["failed_marked"] = tuple(data.get("failed_marked", ()))
        return cls(**data)

    @property
    def rollback_target(self) -> RollbackTarget:
        """What a rollback would restore, planned from the pre-run snapshot (the rollback itself re-plans from a fresh read)."""
        return rollback_target(
            self.traffic_before,
            under_test=self.revisions_under_test,
            revisions=self.revisions,
            previous=self.explicit_previous,
            failed=self.failed_marked,
            last_serving=self.last_serving,
        )

    def header(self) -> list[str]:
        """The report header lines."""
        testing = ", ".join(self.revisions_under_test)
        split = serving(self.traffic_before)
        serves = " + ".join(f"{split[r]} %" for r in self.revisions_under_test if r in split) or "0 % (tag only)"
        previous = self.previous_revision or "none (no Ready revision, not marked failed, to roll back to)"
        lines = [
            f"revgate service: {self.service} (region {self.region}, project {self.project})",
            f"revgate revision under test: {testing}, serving {serves}",
            f"revgate previous revision: {previous}",
            f"revgate rollback target: {self.rollback_target.describe()}",
            f"revgate rollback: {self.mode}",
        ]
        if self.failed_marked:
            known = [r for r in self.failed_marked if r in {i.name for i in self.revisions}]
            if known:
                lines.append(f"revgate known bad ({FAILED_KEY}, never a target): {', '.join(known)}")
        return lines


deployment_key = pytest.StashKey["Deployment | None"]()
service_snapshot_key = pytest.StashKey[Any]()
"""The full ``run_v2.Service`` read at session start (controller only); never sent back: updates are traffic-only, from a fresh read."""


def _first(*values: str | None) -> str | None:
    for value in values:
        if value not in (None, ""):
            return value
    return None


def _env(names: tuple[str, ...]) -> str | None:
    return _first(*(os.environ.get(n) for n in names))


def resolve_mode(config: pytest.Config, *, service_known: bool) -> str:
    raw = _first(config.getoption("rollback"), os.environ.get(MODE_ENV), config.getini("revgate_rollback") or None)
    if raw is None:
        return "on-failure" if service_known else "off"
    if raw not in MODES:
        raise ConfigError(f"rollback mode {raw!r} (from {MODE_ENV} or ini revgate_rollback) is not one of {', '.join(MODES)}")
    return raw


TAG_SEPARATOR = "---"
"""A tag URL is ``https://TAG---`` followed by the host of a service URL (both URL styles)."""


def _host_port(url: str) -> tuple[str, int | None]:
    """``(host, port)`` of a URL as pasted (path, query, trailing slash and scheme ignored; default ports dropped)."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == {"https": 443, "http": 80}.get(parts.scheme.lower()):
        port = None
    return (parts.hostname or "").lower().rstrip("."), port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def service_urls(service: Any) -> list[str]:
    """``service.uri`` and every entry of ``service.urls`` (both URL styles), without repeats."""
    return list(dict.fromkeys(u for u in [service.uri, *service.urls] if u))


def tag_urls(service: Any, traffic: tuple[TrafficEntry, ...]) -> list[str]:
    """Every URL that reaches a tag: ``traffic_statuses[].uri`` and ``TAG---`` on each service URL."""
    urls = [e.uri for e in traffic if e.tag and e.uri]
    for tag in dict.fromkeys(e.tag for e in traffic if e.tag):
        for base in service_urls(service):
            if _is_ip(_host_port(base)[0]):
                continue  # no TAG--- in front of an address
            scheme, sep, rest = base.partition("://")
            urls.append(f"{scheme}{sep}{tag}{TAG_SEPARATOR}{rest}" if sep else f"{tag}{TAG_SEPARATOR}{base}")
    return list(dict.fromkeys(urls))


def match_revision_url(url: str, service: Any, traffic: tuple[TrafficEntry, ...], name: str) -> tuple[str, ...]:
    """The revision(s) a ``--revision-url`` reaches, matched as Cloud Run serves URLs; ConfigError when none.

    A tag URL (``traffic_statuses[].uri``, or ``TAG---`` before the host of any
    service URL) is its tag's revision; a service URL (``service.uri`` or any
    entry of ``service.urls``, hash or deterministic style) is the revisions
    serving traffic. Scheme, path, query and a trailing slash do not matter.
    """
    wanted = _host_port(url)
    bases = {_host_port(u) for u in service_urls(service)}
    tags = {e.tag: e.revision for e in traffic if e.tag}
    for entry in traffic:
        if entry.tag and entry.uri and _host_port(entry.uri) == wanted:
            return (entry.revision,)
    host, port = wanted
    first, sep, rest = host.partition(TAG_SEPARATOR)
    if sep and (rest, port) in bases:
        if first in tags:
            return (tags[first],)
        known = ", ".join(sorted(tags)) or "none"
        raise ConfigError(
            f"--revision-url {url}: tag {first!r} is not a tag of service {name} (tags: {known}): "
            "give the tag URL of the revision under test or --revision NAME"
        )
    if wanted in bases:
        current = tuple(serving(traffic))
        if current:
            return current
        raise ConfigError(f"--revision-url {url} is the URL of service {name}, which serves no traffic: give a tag URL or --revision NAME")
    candidates = ", ".join([*service_urls(service), *tag_urls(service, traffic)]) or "none"
    raise ConfigError(
        f"--revision-url {url} belongs to no revision of service {name}; URLs that would match: {candidates} "
        "(or give --revision NAME)"
    )


def _under_test(
    url: str, service: Any, traffic: tuple[TrafficEntry, ...], revisions: tuple[RevisionInfo, ...], given: str | None, name: str
) -> tuple[str, ...]:
    known = {r.name for r in revisions}
    if given:
        wanted = tuple(dict.fromkeys(part.strip().rsplit("/", 1)[-1] for part in given.split(",") if part.strip()))
        unknown = [w for w in wanted if w not in known]
        if unknown or not wanted:
            raise ConfigError(
                f"--revision {given}: {', '.join(unknown) or 'empty'} is not a revision of service {name} "
                f"(revisions: {', '.join(sorted(known)) or 'none'})"
            )
        return wanted
    return match_revision_url(url, service, traffic, name)


def resolve_deployment(config: pytest.Config, *, revision_url: str) -> tuple[Deployment | None, Any]:
    """The deployment under test and the full service resource read for it; ``(None, None)`` without a service.

    Raises :class:`ConfigError` (one line) when anything given is wrong. Reads only: nothing is changed.
    """
    for flag in ("service", "region", "project", "revision", "previous_revision"):
        given = config.getoption(flag)
        if given is not None and not str(given).strip():
            raise ConfigError(f"--{flag.replace('_', '-')} is empty: give a name, or leave the option out")
    service = _first(config.getoption("service"), _env(SERVICE_ENV))
    if service is None:
        for flag in ("revision", "previous_revision"):
            if config.getoption(flag):
                raise ConfigError(f"--{flag.replace('_', '-')} needs --service (or CLOUD_RUN_SERVICE)")
        if config.getoption("rollback") in ("on-failure", "dry-run"):
            raise ConfigError(f"--rollback {config.getoption('rollback')} needs --service (or CLOUD_RUN_SERVICE)")
        return None, None
    region = _first(config.getoption("region"), _env(REGION_ENV))
    if region is None:
        raise ConfigError(f"service {service}: no region: give --region (or set CLOUD_RUN_REGION)")
    project = _first(config.getoption("project"), _env(PROJECT_ENV))
    if project is None:
        raise ConfigError(f"service {service}: no project: give --project (or set GOOGLE_CLOUD_PROJECT)")
    mode = resolve_mode(config, service_known=True)
    path = urlsplit(revision_url).path
    if path.strip("/"):
        raise ConfigError(
            f"--revision-url {revision_url} has a path ({path}): Cloud Run serves a revision at the root of its URL, "
            "and every check's path is relative to it; give the URL without the path"
        )
    report = _first(config.getoption("rollback_report"), os.environ.get(REPORT_ENV))
    if report is not None:
        from revgate.settings import check_report_path

        check_report_path(report, "--rollback-report")
    name = f"projects/{project}/locations/{region}/services/{service}"

    from google.api_core import exceptions as gexc

    from . import cloudrun

    try:
        from google.auth import exceptions as auth_exc

        credential_errors: tuple[type[BaseException], ...] = (auth_exc.GoogleAuthError,)
    except ImportError:  # pragma: no cover - google-auth comes with google-api-core
        credential_errors = ()
    try:
        from revgate.google_clients import revisions_client, services_client

        services, revisions_api = services_client(), revisions_client()
        svc = cloudrun.get_service(services, name)
        revisions = tuple(cloudrun.list_revisions(revisions_api, name))
    except gexc.NotFound as exc:
        raise ConfigError(
            f"service {service} not found in region {region} of project {project} ({exc.message}): "
            "check --service, --region and --project"
        ) from None
    except (gexc.PermissionDenied, gexc.Unauthenticated) as exc:
        raise ConfigError(f"cannot read service {name}: {type(exc).__name__}: {exc.message}") from None
    except gexc.RetryError as exc:
        raise AdminApiUnavailable(f"the Cloud Run Admin API does not answer for {name}: {exc}") from None
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.ResourceExhausted) as exc:
        raise AdminApiUnavailable(f"the Cloud Run Admin API does not answer for {name}: {type(exc).__name__}: {exc.message}") from None
    except gexc.GoogleAPICallError as exc:
        raise ConfigError(f"cannot read service {name}: {type(exc).__name__}: {exc.message}") from None
    except credential_errors as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"no Google credentials to read service {name} ({first}): run 'gcloud auth application-default login' "
            "or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    traffic = cloudrun.traffic_of(svc)
    under_test = _under_test(revision_url, svc, traffic, revisions, config.getoption("revision"), service)
    marks = read_marks(svc.annotations)
    explicit = config.getoption("previous_revision")
    if explicit:
        explicit = explicit.strip().rsplit("/", 1)[-1]
        try:
            choose_split(traffic, under_test=under_test, revisions=revisions, previous=explicit, failed=marks.failed)
        except PlanError as exc:
            raise ConfigError(str(exc)) from None
    previous = baseline_of(
        traffic,
        under_test=under_test,
        revisions=revisions,
        previous=explicit,
        failed=marks.failed,
        last_serving=marks.last_serving,
    )
    deployment = Deployment(
        project=project,
        region=region,
        service=service,
        service_name=name,
        revisions_under_test=under_test,
        previous_revision=previous,
        traffic_before=traffic,
        etag=svc.etag,
        generation=int(svc.generation),
        mode=mode,
        explicit_previous=explicit,
        revisions=revisions,
        report_path=report,
        failed_marked=marks.failed,
        last_serving=dict(marks.last_serving),
    )
    return deployment, svc

"""A revision's own configuration in the sandbox: ``gcloud run deploy``'s flags, defaults, inheritance.

``gcloud run deploy`` updates the service's template: "Any configuration change leads to the
creation of a new revision. Subsequent revisions will also automatically get this configuration
setting unless you make explicit updates to change it"
(https://cloud.google.com/run/docs/configuring/environment-variables). So a deploy starts from the
configuration of the revision the template describes and changes only what it was given;
``--set-env-vars`` and ``--set-secrets`` replace the whole list ("the ``--set-env-vars`` flag is a
destructive operation that removes all previously set variables not in the new list", same page).

Defaults, as Cloud Run documents them, for a service's first revision:

- memory ``512Mi`` ("By default, the memory allocated to each instance of a revision or job is
  512 MiB", https://cloud.google.com/run/docs/configuring/memory-limits; a newer page variant
  says 2 GiB for instances: the sandbox keeps the long-documented 512 MiB);
- CPU ``1`` ("cpu defaults to the Cloud Run's default of 1.0") and concurrency 80 ("each instance
  can receive Cloud Run's default of up to 80 requests at the same time"), max instances 100
  ("scales out to Cloud Run's default of a maximum of 100 instances"), min instances 0;
- request timeout 300 s (https://cloud.google.com/run/docs/configuring/request-timeout);
- container port 8080 (https://cloud.google.com/run/docs/configuring/services/containers#configure-port);
- the service identity: the Compute Engine default service account
  ``PROJECT_NUMBER-compute@developer.gserviceaccount.com``
  (https://cloud.google.com/run/docs/securing/service-identity). The sandbox's project has no
  number: :func:`project_number` makes a fixed 12-digit one from its id.

The image: "If you deploy from a container image tag, it will be resolved to a digest and the
revision" runs that digest (https://cloud.google.com/artifact-registry/docs/integrate-cloud-run).
The sandbox has no registry: a tag resolves to ``sha256:`` + the SHA-256 of the image string
(deterministic, so the same tag always "resolves" to the same digest; a real registry moves a tag).
A digest URL is kept as given.

CPU below 1: "If you use less than 1 vCPU ... Maximum concurrency must be set to 1"
(https://cloud.google.com/run/docs/configuring/services/cpu), and an unset concurrency "defaults
to 80 when requested CPU >= 1 and defaults to 1 when requested CPU < 1" (revision_template.proto).
So a deploy with ``cpu`` below 1 and no ``concurrency`` leaves it unset (the Admin API answers 0),
and one that asks for more than 1 is refused, as Cloud Run refuses it.

Service-level settings (:data:`SERVICE_KEYS`, not the revision's): ``invoker_iam_disabled``
(``gcloud run deploy --no-invoker-iam-check``: "disable the Cloud Run invoker IAM check",
https://cloud.google.com/run/docs/authenticating/public) and the service-level scaling
``service_min_instances`` / ``service_max_instances`` (``gcloud run services update --min`` /
``--max``; ``Service.scaling``, vendor_settings.proto ``ServiceScaling``: "total min instances for
the service ... divided among all revisions with specified traffic"). They stay on the service
until changed; 0 means unset.

Secrets: the revision process gets a fake value for each secret env var
(:func:`fake_secret_value`); the Admin API only ever answers the reference
(``value_source.secret_key_ref``), as Cloud Run does.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = [
    "DEFAULTS",
    "KEYS",
    "SettingsError",
    "default_service_account",
    "deploy_settings",
    "fake_secret_value",
    "SERVICE_KEYS",
    "apply_service_settings",
    "image_digest",
    "split_service_settings",
    "parse_env_vars",
    "parse_secrets",
    "process_env",
    "project_number",
    "repository",
]

DEFAULTS: dict[str, Any] = {
    "image": "sandbox/app",
    "memory": "512Mi",
    "cpu": "1",
    "timeout_s": 300,
    "concurrency": 80,
    "min_instances": 0,
    "max_instances": 100,
    "container_port": 8080,
    "env": {},
    "secrets": {},
}
KEYS = (*DEFAULTS, "service_account")
"""The settings a deploy may give (``allow_unauthenticated`` is the service's IAM policy, not the revision's)."""

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_REF = re.compile(r"^(projects/[a-z0-9][a-z0-9-]{0,62}/secrets/)?[A-Za-z0-9_-]{1,255}:(latest|[1-9][0-9]*)$")


class SettingsError(ValueError):
    """A deploy setting Cloud Run would refuse (INVALID_ARGUMENT)."""


def project_number(project: str) -> str:
    """A fixed 12-digit project number for the sandbox's project id."""
    return str(100_000_000_000 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % 900_000_000_000)


def default_service_account(project: str) -> str:
    return f"{project_number(project)}-compute@developer.gserviceaccount.com"


def repository(image: str) -> str:
    """``host/path/name`` of ``host/path/name:tag`` or ``...@sha256:...`` (a port in the host is kept)."""
    base = image.split("@", 1)[0]
    head, sep, last = base.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}{sep}{last}"


def image_digest(image: str) -> str:
    """The digest a deploy of ``image`` runs: the one it names, else a fake resolution of its tag."""
    if "@" in image:
        return image.split("@", 1)[1]
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def fake_secret_value(ref: str) -> str:
    """The value a secret reference ``SECRET:VERSION`` "holds" in the sandbox (never answered by any API)."""
    return "sbx-secret-" + hashlib.sha256(("sandbox secret " + ref).encode()).hexdigest()[:24]


SERVICE_KEYS = ("invoker_iam_disabled", "service_min_instances", "service_max_instances")


def split_service_settings(given: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the revision's settings, the service-level ones)`` of a deploy; SettingsError for a bad value."""
    revision = {k: v for k, v in (given or {}).items() if k not in SERVICE_KEYS}
    service = {k: v for k, v in (given or {}).items() if k in SERVICE_KEYS and v is not None}
    for key in ("service_min_instances", "service_max_instances"):
        if key in service and (isinstance(service[key], bool) or not isinstance(service[key], int) or not 0 <= service[key] <= 1000):
            raise SettingsError(f"{key} {service[key]!r}: expected a whole number from 0 (unset) to 1000")
    if "invoker_iam_disabled" in service:
        service["invoker_iam_disabled"] = bool(service["invoker_iam_disabled"])
    return revision, service


def apply_service_settings(svc: Any, settings: dict[str, Any]) -> None:
    """Set the service-level settings a deploy gave on the service (what it did not give is kept)."""
    if "invoker_iam_disabled" in settings:
        svc.invoker_iam_disabled = settings["invoker_iam_disabled"]
    if "service_min_instances" in settings:
        svc.scaling_min = settings["service_min_instances"]
    if "service_max_instances" in settings:
        svc.scaling_max = settings["service_max_instances"]
    if svc.scaling_min and svc.scaling_max and svc.scaling_min > svc.scaling_max:
        raise SettingsError(f"service-level min instances {svc.scaling_min} exceed max instances {svc.scaling_max}")


def parse_env_vars(text: str) -> dict[str, str]:
    """``K=V,K2=V2`` (gcloud's ``--set-env-vars``)."""
    out: dict[str, str] = {}
    for item in (part for part in text.split(",") if part):
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise SettingsError(f"--set-env-vars {item!r}: expected NAME=VALUE, NAME a letter or _ then letters, digits, _")
        out[name] = value
    return out


def parse_secrets(text: str) -> dict[str, str]:
    """``ENV=SECRET:VERSION,/mount/path/file=SECRET:VERSION`` (gcloud's ``--set-secrets``)."""
    out: dict[str, str] = {}
    for item in (part for part in text.split(",") if part):
        key, sep, ref = item.partition("=")
        if not sep or not _SECRET_REF.match(ref):
            raise SettingsError(f"--set-secrets {item!r}: expected NAME=SECRET:VERSION or /PATH=SECRET:VERSION (VERSION a number or latest)")
        if key.startswith("/"):
            if key.endswith("/") or key.count("/") < 2:
                raise SettingsError(f"--set-secrets {item!r}: a mount path is a file in a directory, like /secrets/api-key")
        elif not _ENV_NAME.match(key):
            raise SettingsError(f"--set-secrets {item!r}: {key!r} is not an environment variable name")
        out[key] = ref
    return out


def _check(settings: dict[str, Any]) -> None:
    for key in ("memory", "cpu"):
        if not _QUANTITY.match(str(settings[key])):
            raise SettingsError(f"--{key} {settings[key]!r}: expected a quantity like 512Mi, 2Gi, 1, 1000m")
    bounds = {"timeout_s": (1, 3600), "concurrency": (0 if _below_one(settings["cpu"]) else 1, 1000), "min_instances": (0, 1000), "max_instances": (1, 1000), "container_port": (1, 65535)}
    for key, (low, high) in bounds.items():
        if not isinstance(settings[key], int) or not low <= settings[key] <= high:
            raise SettingsError(f"{key} {settings[key]!r}: expected a whole number from {low} to {high}")
    if _below_one(settings["cpu"]) and settings["concurrency"] > 1:
        raise SettingsError(
            f"cpu {settings['cpu']} is below 1: Cloud Run requires a maximum concurrency of 1 (got {settings['concurrency']})"
        )
    if settings["min_instances"] > settings["max_instances"]:
        raise SettingsError(f"min instances {settings['min_instances']} exceed max instances {settings['max_instances']}")
    clash = set(settings["env"]) & set(settings["secrets"])
    if clash:
        raise SettingsError(f"{sorted(clash)[0]!r} is both an environment variable and a secret")


def _below_one(cpu: str) -> bool:
    """A CPU limit below one CPU (``0.5``, ``500m``); False for what is not a quantity."""
    text = str(cpu)
    try:
        return (float(text[:-1]) / 1000 if text.endswith("m") else float(text)) < 1
    except ValueError:
        return False


def deploy_settings(previous: dict[str, Any] | None, given: dict[str, Any] | None, *, project: str) -> dict[str, Any]:
    """The new revision's settings: the previous template revision's (else the defaults), then what was given."""
    settings = dict(DEFAULTS, service_account=default_service_account(project))
    if previous:
        settings.update({k: v for k, v in previous.items() if k in KEYS})
    unknown = set(given or {}) - set(KEYS)
    if unknown:
        raise SettingsError(f"unknown deploy setting {sorted(unknown)[0]!r}")
    settings.update({k: v for k, v in (given or {}).items() if v is not None})
    if _below_one(str(settings["cpu"])) and (given or {}).get("concurrency") is None:
        settings["concurrency"] = 0  # unset: Cloud Run's default for CPU < 1 (1)
    settings["env"] = {str(k): str(v) for k, v in settings["env"].items()}
    settings["secrets"] = {str(k): str(v) for k, v in settings["secrets"].items()}
    settings["cpu"] = str(settings["cpu"])
    settings["service_account"] = settings["service_account"] or default_service_account(project)
    _check(settings)
    return settings


def process_env(env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The revision process's environment: plain variables, and each secret env var with its fake value."""
    out = dict(env)
    out.update({name: fake_secret_value(ref) for name, ref in secrets.items() if not name.startswith("/")})
    return out

"""The revision's own configuration (``[revision]``): read once from the Admin API, judged per key.

Read (:func:`read_configuration`), once per session: ``RevisionsClient.get_revision`` for each
revision under test, ``ServicesClient.get_service`` (the template: the image as the deploy named
it; the service-level scaling; ``invoker_iam_disabled``) and ``ServicesClient.get_iam_policy``
(``roles/run.invoker`` bound to ``allUsers``), each with an explicit timeout and a bounded retry. A call that fails is kept as its one-line reason: the
checks that need it are NOT VERIFIED, never failed.

Judged (:func:`judge`): one key against every revision under test. The message of a mismatch names
the key, what the checklist wants and what the revision has; environment values are never shown,
except those of names listed in ``env_equals``; secrets are references only (the Admin API never
answers a secret's value).

Fields (google/cloud/run/v2/revision.proto, k8s.min.proto, vendor_settings.proto):
``containers[].image``, ``containers[].resources.limits`` (``memory``, ``cpu``), ``timeout``,
``max_instance_request_concurrency``, ``scaling.min_instance_count`` / ``max_instance_count``,
``containers[].ports[].container_port``, ``service_account``, ``containers[].env[]`` (``value``
or ``value_source.secret_key_ref``), ``volumes[].secret`` with ``containers[].volume_mounts``.
A field Cloud Run leaves unset is its documented default (``max_instance_count`` "When
unspecified, the field is set to the server default value of 100"; memory 512Mi, CPU 1, port 8080;
concurrency "If not specified or 0, concurrency defaults to 80 when requested CPU >= 1 and defaults
to 1 when requested CPU < 1", revision_template.proto).

What Cloud Run applies, where two settings say it:

- public access: "disable the Cloud Run invoker IAM check" (``Service.invoker_iam_disabled``, the
  way Google recommends) or bind ``allUsers`` to ``roles/run.invoker``
  (https://cloud.google.com/run/docs/authenticating/public): either makes the service public;
- scaling: ``Service.scaling`` (``ServiceScaling``, vendor_settings.proto: "total min instances
  for the service. This number of instances is divided among all revisions with specified traffic")
  when the service sets it (non-zero), the revision's own ``scaling`` otherwise; the message says
  which one was compared;
- secret files: a secret volume's item ``path`` is under the volume's root, and a mount shows the
  volume from ``VolumeMount.sub_path`` ("Path within the volume from which the container's volume
  should be mounted. Defaults to "" (volume's root)", k8s.min.proto) at ``mount_path``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .checklist import RevisionConfig
from .quantities import QuantityError, cpu_cores, format_bytes, format_cores, memory_bytes
from .revision_images import ImageRef, parse_image

__all__ = ["Configuration", "Verdict", "judge", "read_configuration", "with_expected_image", "EXPECT_IMAGE_ENV"]

EXPECT_IMAGE_ENV = "REVGATE_EXPECT_IMAGE"
INVOKER = "roles/run.invoker"
ALL_USERS = "allUsers"
DEFAULT_MEMORY, DEFAULT_CPU, DEFAULT_CONCURRENCY, DEFAULT_PORT, DEFAULT_MAX = "512Mi", "1", 80, 8080, 100


@dataclass(repr=False)
class Configuration:
    """What the Admin API answered (or why not) for the revisions under test and their service."""

    service: str
    """``projects/P/locations/R/services/S``: its project is the one a short secret name lives in."""
    revisions: dict[str, Any] = field(default_factory=dict)
    """Short revision name -> ``run_v2.Revision``."""
    template_image: str | None = None
    template_revision: str = ""
    """The revision the service's template describes (``latest_created_revision``'s short name)."""
    service_error: str | None = None
    public: bool | None = None
    iam_error: str | None = None
    invoker_iam_disabled: bool | None = None
    """``Service.invoker_iam_disabled`` (None when the service was not read)."""
    service_min: int = 0
    service_max: int = 0
    """``Service.scaling`` (``ServiceScaling``): 0 when the service sets no service-level limit."""
    manual_instances: int | None = None
    """``ServiceScaling.manual_instance_count`` when the service scales manually."""

    def __repr__(self) -> str:  # never the revisions' environment values (a traceback or --showlocals shows reprs)
        return f"Configuration(service={self.service!r}, revisions={list(self.revisions)!r}, public={self.public!r})"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "pass", "fail" or "not verified"
    message: str = ""


def _reason(exc: BaseException, call: str) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"the Cloud Run Admin API did not answer {call}: {text}"[:400]


def read_configuration(deployment: Any, *, need_service: bool, need_iam: bool, timeout: float = 10.0) -> Configuration:
    """Read every revision under test (raises :class:`~revgate.errors.NotVerified` when one cannot
    be read), then, when asked, the service's template and its IAM policy (their failures are kept)."""
    from google.api_core import exceptions

    from .errors import NotVerified
    from .google_clients import bounded_retry, revisions_client, services_client

    errors = (exceptions.GoogleAPICallError, exceptions.RetryError)
    config = Configuration(service=deployment.service_name)
    revisions = revisions_client()
    for short in deployment.revisions_under_test:
        name = f"{deployment.service_name}/revisions/{short}"
        try:
            config.revisions[short] = revisions.get_revision(name=name, timeout=timeout, retry=bounded_retry(deadline=2 * timeout))
        except errors as exc:
            raise NotVerified(
                f"{_reason(exc, f'GetRevision {short}')}; the revision's configuration was not checked"
            ) from None
    services = services_client() if (need_service or need_iam) else None
    if need_service and services is not None:
        try:
            svc = services.get_service(name=deployment.service_name, timeout=timeout, retry=bounded_retry(deadline=2 * timeout))
            if svc.template.containers:
                config.template_image = _ingress(svc.template.containers).image
            config.template_revision = svc.latest_created_revision.rsplit("/", 1)[-1]
            config.invoker_iam_disabled = bool(svc.invoker_iam_disabled)
            config.service_min = int(svc.scaling.min_instance_count)
            config.service_max = int(svc.scaling.max_instance_count)
            if svc.scaling.scaling_mode == type(svc.scaling).ScalingMode.MANUAL:
                config.manual_instances = int(svc.scaling.manual_instance_count)
        except errors as exc:
            config.service_error = _reason(exc, "GetService")
    if need_iam and services is not None:
        try:
            policy = services.get_iam_policy(
                request={"resource": deployment.service_name}, timeout=timeout, retry=bounded_retry(deadline=2 * timeout)
            )
            config.public = any(b.role == INVOKER and ALL_USERS in b.members for b in policy.bindings)
        except errors as exc:
            config.iam_error = _reason(exc, "GetIamPolicy")
    return config


def with_expected_image(data: dict[str, Any], image: str, *, source: str) -> dict[str, Any]:
    """The checklist data with ``[revision] image`` set to ``image`` (``--expect-image`` overrides it)."""
    from .errors import ConfigError

    try:
        parse_image(image)
    except ValueError as exc:
        raise ConfigError(f"{source} {exc}: give the image the deploy used, REPO:TAG or REPO@sha256:DIGEST") from None
    data = dict(data)
    section = data.get("revision")
    data["revision"] = {**(section if isinstance(section, dict) else {}), "image": image}
    return data


# -- judging ------------------------------------------------------------------------------


def _ingress(containers: Any) -> Any:
    """The container that receives requests: the one with a port (only one may have it), else the first."""
    for container in containers:
        if container.ports:
            return container
    return containers[0]


def _container(rev: Any) -> Any | None:
    return _ingress(rev.containers) if rev.containers else None


def _env(rev: Any) -> dict[str, Any]:
    container = _container(rev)
    return {e.name: e for e in container.env} if container is not None else {}


def _is_secret(env_var: Any) -> bool:
    return bool(env_var.value_source.secret_key_ref.secret)


def _secret_ref(secret: str, version: str, own: frozenset[str]) -> str:
    """``NAME:VERSION`` for a secret of the service's own project, ``projects/P/secrets/NAME:VERSION``
    for another project's. ``secret_key_ref.secret`` is "{secret_name} if the secret is in the same
    project. projects/{project}/secrets/{secret_name} if the secret is in a different project"
    (``k8s.min.proto``, ``SecretKeySelector.secret``); ``own`` holds the project's id and number as known."""
    parts = secret.split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "secrets" and parts[1] not in own:
        return f"{secret}:{version or 'latest'}"
    return f"{parts[-1]}:{version or 'latest'}"


def _own_projects(config: Configuration, rev: Any) -> frozenset[str]:
    """The service's project as the deployment names it and as the revision's name does (id or number)."""
    names = [config.service, getattr(rev, "name", "") or ""]
    return frozenset(n.split("/")[1] for n in names if n.startswith("projects/") and n.count("/") >= 2)


def _secrets(rev: Any, own: frozenset[str]) -> dict[str, str]:
    """Env var name or mounted file path -> ``SECRET:VERSION``, as the revision has them."""
    out = {
        name: _secret_ref(e.value_source.secret_key_ref.secret, e.value_source.secret_key_ref.version, own)
        for name, e in _env(rev).items()
        if _is_secret(e)
    }
    container = _container(rev)
    mounts: dict[str, list[tuple[str, str]]] = {}
    for m in container.volume_mounts if container is not None else ():
        mounts.setdefault(m.name, []).append((m.mount_path.rstrip("/"), m.sub_path.strip("/")))
    for volume in rev.volumes:
        source = volume.secret
        if not source.secret or volume.name not in mounts:
            continue
        # "If unspecified, the volume will expose a file whose name is the secret, relative to
        # VolumeMount.mount_path + VolumeMount.sub_path" (k8s.min.proto), at its latest version
        files = [(item.path, item.version) for item in source.items] or [(source.secret.rsplit("/", 1)[-1], "latest")]
        for base, sub in mounts[volume.name]:
            for path, version in files:
                shown = _under(path.strip("/"), sub)
                if shown is not None:
                    out[f"{base}/{shown}" if shown else base] = _secret_ref(source.secret, version, own)
    return out


def _under(path: str, sub: str) -> str | None:
    """Where the volume's file ``path`` shows under a mount of the volume's ``sub`` directory
    (``''``: the mount path itself is the file; None: not under it)."""
    if not sub:
        return path
    if path == sub:
        return ""
    return path[len(sub) + 1 :] if path.startswith(sub + "/") else None


def _seconds(duration: Any) -> float:
    if hasattr(duration, "total_seconds"):
        return float(duration.total_seconds())
    return float(getattr(duration, "seconds", 0)) + float(getattr(duration, "nanos", 0)) / 1e9


def _judge_one(key: str, want: RevisionConfig, short: str, rev: Any, config: Configuration) -> Verdict:
    has = f"revision {short} has"
    container = _container(rev)
    limits = dict(container.resources.limits) if container is not None else {}
    if key == "image":
        return _judge_image(want.image or "", short, rev, config)
    if key == "memory":
        raw = limits.get("memory") or DEFAULT_MEMORY
        try:
            got = memory_bytes(raw)
        except QuantityError:
            return Verdict("fail", f"memory: the checklist wants {want.memory}, {has} {raw!r}, not a memory size")
        wanted = memory_bytes(str(want.memory))
        if got != wanted:
            return Verdict("fail", f"memory: the checklist wants {_both(want.memory, format_bytes(wanted))}, {has} {_both(raw, format_bytes(got))}")
        return Verdict("pass")
    if key == "cpu":
        raw = limits.get("cpu") or DEFAULT_CPU
        try:
            got: Decimal = cpu_cores(raw)
        except QuantityError:
            return Verdict("fail", f"cpu: the checklist wants {want.cpu}, {has} {raw!r}, not a CPU limit")
        wanted = cpu_cores(want.cpu)  # type: ignore[arg-type]
        if got != wanted:
            return Verdict("fail", f"cpu: the checklist wants {format_cores(wanted)} CPU, {has} {format_cores(got)} CPU" + ("" if str(raw) == format_cores(got) else f" ({raw})"))
        return Verdict("pass")
    if key == "timeout_s":
        got_s = _seconds(rev.timeout)
        if got_s != want.timeout_s:
            return Verdict("fail", f"timeout_s: the checklist wants {want.timeout_s} s, {has} a request timeout of {got_s:g} s")
        return Verdict("pass")
    if key == "concurrency":
        got_c, why = rev.max_instance_request_concurrency, ""
        if not got_c:
            try:
                below_one = cpu_cores(limits.get("cpu") or DEFAULT_CPU) < 1
            except QuantityError:
                below_one = False
            got_c = 1 if below_one else DEFAULT_CONCURRENCY
            why = f" (unset: Cloud Run's default for {'CPU < 1' if below_one else 'CPU >= 1'})"
        if got_c != want.concurrency:
            return Verdict("fail", f"concurrency: the checklist wants {want.concurrency} requests per instance, {has} {got_c}{why}")
        return Verdict("pass")
    if key in ("min_instances", "max_instances"):
        return _judge_scaling(key, want, short, rev, config)
    if key == "port":
        got_p = (container.ports[0].container_port if container is not None and container.ports else 0) or DEFAULT_PORT
        if got_p != want.port:
            return Verdict("fail", f"port: the checklist wants container port {want.port}, {has} {got_p}")
        return Verdict("pass")
    if key == "service_account":
        if rev.service_account != want.service_account:
            return Verdict("fail", f"service_account: the checklist wants {want.service_account}, {has} {rev.service_account or 'none'}")
        return Verdict("pass")
    if key == "env":
        names = _env(rev)
        missing = [n for n in want.env if n not in names]  # names only: a value is never shown
        if missing:
            return Verdict("fail", f"env: the checklist wants {', '.join(want.env)} set; {has} no {', '.join(missing)}")
        return Verdict("pass")
    if key == "env_values":
        return _judge_env_values(want, short, _env(rev))
    if key == "secrets":
        return _judge_secrets(want, short, rev, _own_projects(config, rev))
    if key == "allow_unauthenticated":
        return _judge_public(want, config)
    raise NotImplementedError(f"[revision] key {key!r}")  # pragma: no cover - REVISION_KEYS are all handled


def _judge_public(want: RevisionConfig, config: Configuration) -> Verdict:
    """Public when the invoker IAM check is disabled (Google's recommended way) or ``allUsers`` holds
    ``roles/run.invoker``; private only when neither."""
    wants = "public (allUsers has roles/run.invoker)" if want.allow_unauthenticated else "private (no allUsers in roles/run.invoker)"
    if config.invoker_iam_disabled:
        if want.allow_unauthenticated:
            return Verdict("pass")
        return Verdict(
            "fail",
            f"allow_unauthenticated: the checklist wants the service {wants.replace(')', ', invoker IAM check on)')}; "
            "it disables the invoker IAM check (invoker_iam_disabled: anyone may call it, public)",
        )
    if config.invoker_iam_disabled is None and config.service_error is not None and not (config.public and want.allow_unauthenticated):
        return Verdict("not verified", f"allow_unauthenticated: {config.service_error}; invoker_iam_disabled was not read")
    if config.public is None:
        return Verdict("not verified", f"allow_unauthenticated: {config.iam_error or 'the IAM policy was not read'}")
    if config.public != want.allow_unauthenticated:
        says = "binds allUsers to roles/run.invoker (public)" if config.public else "does not bind allUsers to roles/run.invoker (private)"
        if not config.public:
            says += " and the invoker IAM check is on"
        return Verdict("fail", f"allow_unauthenticated: the checklist wants the service {wants}; its IAM policy {says}")
    return Verdict("pass")


def _judge_scaling(key: str, want: RevisionConfig, short: str, rev: Any, config: Configuration) -> Verdict:
    """The service-level limit when the service sets one (it applies to every revision with traffic,
    divided among them), else the revision's own."""
    wanted = want.min_instances if key == "min_instances" else want.max_instances
    revision_level = rev.scaling.min_instance_count if key == "min_instances" else (rev.scaling.max_instance_count or DEFAULT_MAX)
    service_level = config.service_min if key == "min_instances" else config.service_max
    if config.manual_instances is not None:
        return Verdict(
            "fail",
            f"{key}: the checklist wants {wanted}; the service scales manually ({config.manual_instances} instances, "
            "Service.scaling manual_instance_count): no minimum or maximum applies",
        )
    if service_level:
        if service_level != wanted:
            return Verdict(
                "fail",
                f"{key}: the checklist wants {wanted}, the service-level limit (Service.scaling, divided among the "
                f"revisions with traffic) is {service_level} (revision {short}'s own: {revision_level})",
            )
        return Verdict("pass")
    if config.service_error is not None:
        return Verdict("not verified", f"{key}: {config.service_error}; a service-level limit would apply before the revision's")
    if revision_level != wanted:
        return Verdict(
            "fail", f"{key}: the checklist wants {wanted}, revision {short} has {revision_level} (revision-level; the service sets none)"
        )
    return Verdict("pass")


def _judge_image(expected: str, short: str, rev: Any, config: Configuration) -> Verdict:
    container = _container(rev)
    actual = container.image if container is not None else ""
    want: ImageRef = parse_image(expected)
    try:
        got = parse_image(actual)
    except ValueError:
        return Verdict("fail", f"image: the checklist wants {expected}, revision {short} runs {actual!r}")
    if not got.by_digest:
        # The Admin API names this revision's image by the tag the deploy gave: a Revision has no digest
        # field in v2 (ContainerStatus.image_digest, "regardless of whether a tag or digest was originally
        # specified", is only on an Instance), so the tag is what can be compared.
        if want.by_digest:
            return Verdict(
                "not verified",
                f"image: the checklist wants digest {want.digest}; the Admin API names revision {short}'s image by "
                f"its tag ({actual}) and gives no digest for a revision: give --expect-image {got.tagged()} to "
                "compare the tag, or deploy by digest",
            )
        if got.repository != want.repository or (got.tag or "latest") != (want.tag or "latest"):
            return Verdict("fail", f"image: the checklist wants {want.tagged()}, revision {short} runs {got.tagged()}")
        return Verdict("pass")
    if want.by_digest:
        if got.digest != want.digest:
            return Verdict("fail", f"image: the checklist wants digest {want.digest}, revision {short} runs {got.digest}")
        return Verdict("pass")
    # a tag: the repository of the digest the revision runs, then the tag the deploy named (the template)
    if got.repository != want.repository:
        return Verdict("fail", f"image: the checklist wants {want.tagged()}, revision {short} runs {actual} (another repository)")
    if config.service_error is not None:
        return Verdict("not verified", f"image: {config.service_error}; the tag {want.tag or 'latest'} was not checked")
    if config.template_revision != short or config.template_image is None:
        return Verdict(
            "not verified",
            f"image: revision {short} runs {actual}; the tag it was deployed from is kept only in the service's "
            f"template, which now describes {config.template_revision or 'no revision'}: give --expect-image "
            f"{got.repository}@{got.digest or 'sha256:...'} to compare the digest",
        )
    try:
        deployed = parse_image(config.template_image)
    except ValueError:
        deployed = None
    if deployed is not None and deployed.by_digest:
        if deployed.digest == got.digest:
            return Verdict("not verified", f"image: revision {short} was deployed by digest ({config.template_image}), not from tag {want.tag or 'latest'}: compare the digest with --expect-image")
    if deployed is None or deployed.repository != want.repository or (deployed.tag or "latest") != (want.tag or "latest"):
        return Verdict("fail", f"image: the checklist wants {want.tagged()}, revision {short} was deployed from {config.template_image} ({actual})")
    return Verdict("pass")


def _judge_env_values(want: RevisionConfig, short: str, env: dict[str, Any]) -> Verdict:
    problems = []
    for name in want.env_equals:  # only these names' values are ever compared or shown
        expected = want.env_values[name]
        var = env.get(name)
        if var is None:
            problems.append(f"{name} is not set")
        elif _is_secret(var):
            problems.append(f"{name} is a secret reference, not a plain value")
        elif var.value != expected:
            problems.append(f"{name} is {var.value!r}, the checklist wants {expected!r}")
    if problems:
        return Verdict("fail", f"env_values: revision {short}: {'; '.join(problems)}")
    return Verdict("pass")


def _judge_secrets(want: RevisionConfig, short: str, rev: Any, own: frozenset[str]) -> Verdict:
    have = _secrets(rev, own)
    env = _env(rev)
    problems = []
    for key, ref in want.secrets.items():
        expected = _secret_ref(*ref.rsplit(":", 1), own)
        got = have.get(key)
        if got == expected:
            continue
        if got is not None:
            problems.append(f"{key} is {got}, the checklist wants {expected}")
        elif key in env:
            problems.append(f"{key} is a plain value, not the secret {expected}")
        else:
            where = "mounted" if key.startswith("/") else "set"
            problems.append(f"{key} is not {where} (the checklist wants {expected})")
    if problems:
        return Verdict("fail", f"secrets: revision {short}: {'; '.join(problems)}")
    return Verdict("pass")


def judge(key: str, want: RevisionConfig, config: Configuration) -> Verdict:
    """One key against every revision under test: FAIL if any differs, NOT VERIFIED if any could not be checked."""
    verdicts = [_judge_one(key, want, short, rev, config) for short, rev in config.revisions.items()]
    if key == "allow_unauthenticated" and verdicts:
        verdicts = verdicts[:1]  # a property of the service, the same for every revision
    failed = [v.message for v in verdicts if v.outcome == "fail"]
    if failed:
        return Verdict("fail", f"[revision] {'; '.join(failed)}")
    unverified = [v.message for v in verdicts if v.outcome == "not verified"]
    if unverified:
        return Verdict("not verified", f"[revision] {'; '.join(unverified)}")
    return Verdict("pass")


def _both(given: str, normal: str) -> str:
    """``1024Mi (1Gi)``: a quantity as written, and its normal form when that reads differently."""
    return given if str(given).replace(" ", "") == normal.replace(" ", "") else f"{given} ({normal})"

"""The Google-signed ID token an IAM-protected Cloud Run service wants (``--id-token``).

Cloud Run's IAM check wants an ID token whose audience (``aud``) is the
service's ``*.run.app`` URL (cloud.google.com/run/docs/authenticating/service-to-service,
/run/docs/configuring/custom-audiences); a tag URL ``TAG---SERVICE-HASH.a.run.app``
is served by the same service, so the audience is the service URL without the
``TAG---`` prefix and without any path. The token goes in
``X-Serverless-Authorization``, which Cloud Run's IAM check reads before
``Authorization`` (GoogleCloudPlatform/cloud-run-proxy#25), so the
application's own ``Authorization`` stays free.

Where the token comes from, in order:

1. ``REVGATE_ID_TOKEN`` holding a token (a JWT, not ``1``/``true``/``yes``):
   used as is, such as the one google-github-actions/auth mints with
   ``token_format: id_token``. A value that is neither is a usage error, and
   it is never repeated.
2. ``--id-token`` (or ``REVGATE_ID_TOKEN=1``) with the credentials of the
   environment (``GOOGLE_APPLICATION_CREDENTIALS``, else gcloud's application
   default credentials file, else the metadata server):

   - a service-account key, or the metadata server (Compute Engine, Cloud Run,
     Cloud Build, GKE): google-auth's ``fetch_id_token``;
   - ``external_account`` (Workload Identity Federation, what
     google-github-actions/auth writes) or ``impersonated_service_account``
     credentials: the IAM Service Account Credentials API's
     ``generateIdToken`` for the service account they impersonate, called
     with the source credentials' access token (the federated token, or the
     source account's), at the host of the file's
     ``service_account_impersonation_url``
     (cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateIdToken).

A token that cannot be had is a usage error (exit 4, one line naming the
audience and what to do), before any check: the gate's own missing
credentials must never fail, and so roll back, a revision.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .credentials import Secret

__all__ = ["ID_TOKEN_ENV", "audience_for", "resolve_id_token"]

ID_TOKEN_ENV = "REVGATE_ID_TOKEN"
TRUE = ("1", "true", "yes")
FALSE = ("", "0", "false", "no")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
TIMEOUT = 30.0
"""Seconds allowed to each request for a token."""


def audience_for(url: str) -> str:
    """The audience Cloud Run checks for ``url``: its origin, without a ``TAG---`` prefix on a run.app host."""
    parts = urlsplit(url)
    host = parts.netloc
    name = parts.hostname or ""
    if name.endswith(".run.app") and "---" in name:
        host = host.split("---", 1)[1]
    return f"{parts.scheme}://{host}"


def _claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _checked(token: Any, audience: str) -> Secret:
    """A token the credentials gave: a JWT (so visible ASCII, fit for a header), else ConfigError."""
    if not token or not isinstance(token, str):
        raise ConfigError(f"--id-token: the credentials gave an empty ID token for {audience}: check them")
    if not _JWT.match(token.strip()):
        raise ConfigError(f"--id-token: the credentials gave something that is not an ID token (a JWT) for {audience}")
    return Secret(token.strip())


def _given(value: str, *, now: float | None = None) -> Secret:
    """A token from the environment, used as is: it must look like a JWT and must not have expired."""
    token = value.strip()
    if not _JWT.match(token):
        raise ConfigError(
            f"{ID_TOKEN_ENV} is neither 1 (fetch one with the environment's credentials) nor an ID token "
            "(a JWT: three base64url parts separated by dots); its value is not shown"
        )
    exp = _claims(token).get("exp")
    if isinstance(exp, (int, float)) and exp <= (time.time() if now is None else now):
        raise ConfigError(f"{ID_TOKEN_ENV}: the ID token expired {int((now or time.time()) - exp)} s ago; mint a new one")
    return Secret(token)


def resolve_id_token(url: str, *, option: bool | None, env: Mapping[str, str] | None = None) -> Secret | None:
    """The ID token for ``url`` (None when none is wanted), in the order of the module docstring."""
    env = os.environ if env is None else env
    raw = env.get(ID_TOKEN_ENV)
    if raw is not None and raw.strip().lower() not in TRUE + FALSE:
        return _given(raw)
    wanted = option or (raw is not None and raw.strip().lower() in TRUE)
    if not wanted:
        return None
    return fetch_id_token(audience_for(url), env=env)


def _credentials_file(env: Mapping[str, str]) -> Path | None:
    explicit = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if explicit:
        return Path(explicit)
    config = Path(env.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    well_known = config / "application_default_credentials.json"
    return well_known if well_known.is_file() else None


def _cannot(audience: str, reason: str) -> ConfigError:
    return ConfigError(
        f"--id-token: cannot get an ID token for {audience} ({reason}); use a service account's key, "
        "Workload Identity Federation with a service account, or impersonated credentials "
        "(GOOGLE_APPLICATION_CREDENTIALS), run on Google Cloud, or give the token in REVGATE_ID_TOKEN"
    )


def fetch_id_token(audience: str, *, env: Mapping[str, str] | None = None) -> Secret:
    """An ID token for ``audience`` with the environment's credentials; ConfigError (one line) when none."""
    env = os.environ if env is None else env
    import google.auth.exceptions
    import google.auth.transport.requests

    request = google.auth.transport.requests.Request()
    path = _credentials_file(env)
    info: dict[str, Any] = {}
    if path is not None and path.is_file():
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise _cannot(audience, f"{path} is not a credentials JSON file: {exc}") from None
        if not isinstance(info, dict):
            raise _cannot(audience, f"{path} is not a credentials JSON file")
    try:
        kind = info.get("type")
        if kind in ("external_account", "impersonated_service_account"):
            return _checked(_generate_id_token(info, audience, request), audience)
        if kind == "authorized_user":
            raise _cannot(audience, f"{path} holds a user's credentials, which cannot mint an ID token for a service URL")
        import google.oauth2.id_token

        return _checked(google.oauth2.id_token.fetch_id_token(request, audience), audience)
    except google.auth.exceptions.GoogleAuthError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _cannot(audience, reason[:300]) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # an answer google-auth did not expect
        raise _cannot(audience, f"unexpected answer from the token endpoint: {type(exc).__name__}") from None


def _generate_id_token(info: dict[str, Any], audience: str, request: Any) -> str:
    """IAM Credentials ``generateIdToken`` for the service account ``info`` impersonates."""
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession

    url = info.get("service_account_impersonation_url") or ""
    match = re.match(r"^(https?://[^/]+)/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$", url)
    if not match:
        raise google.auth.exceptions.DefaultCredentialsError(
            f"{info.get('type')} credentials without a service_account_impersonation_url: an ID token needs a service "
            "account (google-github-actions/auth: give service_account, or token_format: id_token and REVGATE_ID_TOKEN)"
        )
    base, email = match.groups()
    if info["type"] == "external_account":
        source_info = {k: v for k, v in info.items() if k not in ("service_account_impersonation_url", "service_account_impersonation")}
        delegates: list[str] = []
    else:
        source_info = info.get("source_credentials") or {}
        delegates = list(info.get("delegates") or [])
    source = _source_credentials(source_info)
    session = AuthorizedSession(source, auth_request=request)
    try:
        answer = session.post(
            f"{base}/v1/projects/-/serviceAccounts/{email}:generateIdToken",
            json={"audience": audience, "includeEmail": True, "delegates": delegates},
            timeout=TIMEOUT,
        )
    except Exception as exc:  # requests' own errors: the endpoint did not answer
        raise google.auth.exceptions.TransportError(f"generateIdToken for {email}: {type(exc).__name__}") from None
    finally:
        session.close()
    try:
        token = answer.json().get("token") if answer.status_code == 200 else None
    except ValueError:
        token = None
    if not token:
        raise google.auth.exceptions.RefreshError(f"generateIdToken for {email} answered {answer.status_code}")
    return str(token)


def _source_credentials(info: dict[str, Any]) -> Any:
    """The credentials that call generateIdToken, built by the constructor of their type."""
    import google.auth.exceptions

    kind = info.get("type")
    if kind == "external_account":
        source = info.get("credential_source") or {}
        if str(source.get("environment_id", "")).startswith("aws"):
            from google.auth import aws as module
        elif "executable" in source:
            from google.auth import pluggable as module  # type: ignore[no-redef]
        else:
            from google.auth import identity_pool as module  # type: ignore[no-redef]
        return module.Credentials.from_info(info, scopes=[CLOUD_PLATFORM])
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_info(info, scopes=[CLOUD_PLATFORM])
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM])
    raise google.auth.exceptions.DefaultCredentialsError(f"source credentials of type {kind!r} are not supported")

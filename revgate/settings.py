"""The suite's options and their resolution into :class:`Settings`.

Precedence: command line > environment variable > ``pytest.ini`` > checklist
default. Options with a fallback default to ``None`` ("unset"). Resolution
happens once, in the controller; xdist workers receive the result through
``workerinput`` (see :mod:`revgate.plugin`).

Secrets (the API token, the ID token) never come from a command-line value and
are held in :class:`Secret`, whose ``repr`` and ``str`` are masked.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .checklist import Checklist, load_checklist, parse_checklist
from .errors import ConfigError

__all__ = ["Secret", "Settings", "add_options", "resolve_settings", "settings_key"]

TOKEN_ENV = "REVGATE_AUTH_TOKEN"
MIN_SECRET_LENGTH = 8
"""Shorter secrets are refused: every report is scrubbed of the secret's text, and scrubbing
a few characters would replace them wherever they occur (URLs, numbers, words) with ``***``."""


def _long_enough(value: str, where: str) -> Secret:
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{where}: the API token is {len(value)} characters long; revgate needs at least "
            f"{MIN_SECRET_LENGTH} (it hides the token in every report, and hiding so short a text would garble them)"
        )
    return Secret(value)


class Secret:
    """A secret string: masked wherever it might be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class Settings:
    revision_url: str
    checklist_path: Path
    checklist: Checklist
    checklist_data: dict[str, Any]
    request_timeout: float
    token: Secret | None = None
    token_source: str = "none"
    id_token: Secret | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Resolved values contributed by other revgate plugins (rollback, metrics)."""

    def secrets(self) -> list[str]:
        return [s.reveal() for s in (self.token, self.id_token) if s is not None and s.reveal()]

    def to_workerinput(self) -> dict[str, Any]:
        """A plain dict that execnet can send to xdist workers."""
        data = asdict(self)
        data["checklist_path"] = str(self.checklist_path)
        data["token"] = self.token.reveal() if self.token else None
        data["id_token"] = self.id_token.reveal() if self.id_token else None
        data.pop("checklist")
        return data

    @classmethod
    def from_workerinput(cls, data: dict[str, Any]) -> Settings:
        data = dict(data)
        path = Path(data.pop("checklist_path"))
        token, id_token = data.pop("token"), data.pop("id_token")
        return cls(
            checklist_path=path,
            checklist=parse_checklist(data["checklist_data"], source=str(path)),
            token=Secret(token) if token else None,
            id_token=Secret(id_token) if id_token else None,
            **data,
        )


settings_key = pytest.StashKey[Settings]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate", "revgate: post-deploy checks of a Cloud Run revision")
    group.addoption(
        "--revision-url",
        default=None,
        help="URL of the revision under test: its tag URL (https://TAG---SERVICE-HASH.a.run.app) "
        "or the service URL. Env: REVGATE_REVISION_URL.",
    )
    group.addoption(
        "--checklist",
        default=None,
        help="The checklist TOML file. Env: REVGATE_CHECKLIST; ini: revgate_checklist; default: checklist.toml.",
    )
    group.addoption(
        "--auth-token-file",
        default=None,
        help=f"File holding the API bearer token (else env {TOKEN_ENV}); never pass a token on the command line.",
    )
    group.addoption(
        "--id-token",
        action="store_true",
        default=None,
        help="Send a Google-signed ID token for the URL (Application Default Credentials) "
        "in X-Serverless-Authorization, for IAM-protected services. Env: REVGATE_ID_TOKEN=1.",
    )
    group.addoption(
        "--request-timeout",
        type=float,
        default=None,
        help="Seconds allowed to each request. Env: REVGATE_REQUEST_TIMEOUT; ini: revgate_request_timeout; "
        "default: the checklist's [defaults] timeout.",
    )
    parser.addini("revgate_checklist", "The checklist TOML file (relative to the rootdir).", default="checklist.toml")
    parser.addini("revgate_request_timeout", "Seconds allowed to each request.", default=None)


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def check_url(url: str) -> str:
    """Return the URL without a trailing slash, or raise ConfigError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--revision-url {url!r} is not an http(s) URL: give the revision's full URL, "
            "such as https://TAG---SERVICE-HASH.a.run.app"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"--revision-url {url!r} has a query or fragment: give the revision's base URL")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(f"--revision-url {url!r} has an invalid port") from None
    return url.rstrip("/")


def _read_token(path: str) -> Secret:
    try:
        value = Path(path).read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"--auth-token-file {path!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a text file"
        raise ConfigError(f"--auth-token-file {path!r}: cannot read it ({reason})") from None
    if not value:
        raise ConfigError(f"--auth-token-file {path!r} is empty: put the API token in it")
    if any(c.isspace() for c in value):
        raise ConfigError(f"--auth-token-file {path!r} holds more than one line or word: it must hold the token alone")
    return _long_enough(value, f"--auth-token-file {path!r}")


def _fetch_id_token(audience: str) -> Secret:
    try:
        import google.auth.exceptions
        import google.auth.transport.requests
        import google.oauth2.id_token
    except ImportError as exc:  # pragma: no cover - google-auth is a dependency
        raise ConfigError(f"--id-token needs google-auth and requests ({exc})") from None
    try:
        token = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except google.auth.exceptions.GoogleAuthError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"--id-token: cannot get an ID token for {audience} ({reason}); "
            "use a service account's credentials (GOOGLE_APPLICATION_CREDENTIALS) or run on Google Cloud"
        ) from None
    return Secret(token)


def _default_checklist(config: pytest.Config) -> Path:
    """Without --checklist: ``checklist.toml`` of the directory revgate runs from (what
    ``revgate init`` writes) when there is one outside the suite, else the ini's (the shipped one)."""
    here = config.invocation_params.dir / "checklist.toml"
    if config.invocation_params.dir != config.rootpath and here.is_file():
        return here
    return config.rootpath / config.getini("revgate_checklist")


def resolve_settings(config: pytest.Config) -> Settings:
    """Resolve every option once; raises ConfigError/ChecklistError with a one-line message."""
    env = os.environ
    url = _first(config.getoption("revision_url"), env.get("REVGATE_REVISION_URL"))
    if url is None:
        raise ConfigError(
            "no revision to check: give --revision-url https://TAG---SERVICE-HASH.a.run.app "
            "(or set REVGATE_REVISION_URL)"
        )
    url = check_url(url)

    checklist_opt = _first(config.getoption("checklist"), env.get("REVGATE_CHECKLIST"))
    path = Path(checklist_opt) if checklist_opt else _default_checklist(config)
    checklist, data = load_checklist(path)

    timeout_raw = _first(
        config.getoption("request_timeout"), env.get("REVGATE_REQUEST_TIMEOUT"), config.getini("revgate_request_timeout")
    )
    if timeout_raw is None:
        timeout = checklist.defaults.timeout
    else:
        try:
            timeout = float(timeout_raw)
        except ValueError:
            raise ConfigError(f"request timeout {timeout_raw!r} is not a number of seconds") from None
        if timeout <= 0:
            raise ConfigError(f"request timeout {timeout_raw!r} must be a positive number of seconds")

    token_file = config.getoption("auth_token_file")
    if token_file:
        token, source = _read_token(token_file), f"file {token_file}"
    elif env.get(TOKEN_ENV):
        token, source = _long_enough(env[TOKEN_ENV].strip(), TOKEN_ENV), f"env {TOKEN_ENV}"
    else:
        token, source = None, "none"

    want_id_token = _first(config.getoption("id_token"), env.get("REVGATE_ID_TOKEN") in ("1", "true", "yes") or None)
    id_token = _fetch_id_token(url) if want_id_token else None

    return Settings(
        revision_url=url,
        checklist_path=path,
        checklist=checklist,
        checklist_data=data,
        request_timeout=timeout,
        token=token,
        token_source=source,
        id_token=id_token,
    )

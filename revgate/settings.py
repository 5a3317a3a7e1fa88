"""The suite's options and their resolution into :class:`Settings`.

Precedence: command line > environment variable > ``pytest.ini`` > checklist
default. Options with a fallback default to ``None`` ("unset"). Resolution
happens once, in the controller; xdist workers receive the result through
``workerinput`` (see :mod:`revgate.plugin`).

Secrets (the API token, the ID token) never come from a command-line value and
are held in :class:`Secret`, whose ``repr`` and ``str`` are masked.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .checklist import Checklist, load_checklist, parse_checklist
from .credentials import MIN_SECRET_LENGTH, USER_ENV, Secret, basic_forms, secret_forms
from .errors import ChecklistError, ConfigError

__all__ = ["Secret", "Settings", "add_options", "resolve_settings", "settings_key"]

TOKEN_ENV = "REVGATE_AUTH_TOKEN"
def _header_safe(value: str, where: str, what: str = "the API token") -> None:
    """A secret sent in a header: visible ASCII only (RFC 9110 token68 and header field values; httpx
    encodes header values as ASCII). The message says where the bad character is, never the secret."""
    for index, char in enumerate(value):
        if not 0x21 <= ord(char) <= 0x7E:
            kind = (
                "a space or line break" if char.isspace() else
                "a control character" if ord(char) < 0x20 or ord(char) == 0x7F else
                "a non-ASCII character"
            )
            raise ConfigError(
                f"{where}: {what} has {kind} at character {index + 1}, which an HTTP header cannot carry: "
                "give the token alone, as visible ASCII"
            )


def _long_enough(value: str, where: str) -> Secret:
    _header_safe(value, where)
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{where}: the API token is {len(value)} characters long; revgate needs at least "
            f"{MIN_SECRET_LENGTH} (it hides the token in every report, and hiding so short a text would garble them)"
        )
    return Secret(value)


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
    extra_secrets: tuple[str, ...] = ()
    """Other secret values contributed by revgate plugins (webhook URLs and their parts): scrubbed like the token."""

    def secrets(self) -> list[str]:
        """Every form of every secret a report might show, longest first: the value itself, its
        URL-encoded forms, and its base64 forms (standard and URL-safe, at each of the three
        alignments a base64 stream can place it at, e.g. inside ``Basic`` credentials)."""
        forms: list[str] = []
        for secret in (self.token, self.id_token):
            if secret is not None and secret.reveal():
                forms += secret_forms(secret.reveal())
        if self.token is not None and self.token.reveal():
            # HTTP Basic: the user:password pair, in every form

            for form in basic_forms(self.token.reveal(), os.environ.get(USER_ENV)):
                forms += [f for f in (form, *secret_forms(form)) if len(f) >= MIN_SECRET_LENGTH]
        for value in self.extra_secrets:
            forms += secret_forms(value)
        return sorted(dict.fromkeys(forms), key=len, reverse=True)

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

CHECK_SECTIONS = ("health", "api", "websocket", "latency", "metric_limits", "baseline_limits", "page", "revision_keys", "logs")
"""The checklist sections that make checks (:data:`revgate.plugin.PARAMETRIZED`)."""


def _one_line_option_errors(parser: pytest.Parser) -> None:
    """argparse errors about a revgate option in one line (``ERROR: argument --X: ...``), instead of
    pytest's usage line, error line and inifile/rootdir lines; errors about other options are left
    exactly as pytest prints them (installing revgate changes nothing in other pytest runs)."""
    optparser = getattr(parser, "optparser", None)
    if optparser is None or getattr(optparser, "_revgate_one_line", False):
        return
    pytest_error = optparser.error

    def revgate_names() -> set[str]:
        names: set[str] = set()
        for group in getattr(parser, "_groups", []):
            if str(getattr(group, "name", "")).startswith("revgate"):
                for option in getattr(group, "options", []):
                    names.update(option.names())
        return names

    def error(message: str) -> Any:
        if any(f"argument {name}" in message for name in revgate_names()):
            raise pytest.UsageError(f"{message} (see --help)")
        return pytest_error(message)

    optparser.error = error
    optparser._revgate_one_line = True


def add_options(parser: pytest.Parser) -> None:
    _one_line_option_errors(parser)
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
        help="Send a Google-signed ID token for the service URL in X-Serverless-Authorization, for "
        "IAM-protected services (a service-account key, Workload Identity Federation, impersonated "
        "credentials or the metadata server). Env: REVGATE_ID_TOKEN=1, or REVGATE_ID_TOKEN=TOKEN (used as is).",
    )
    group.addoption(
        "--expect-image",
        default=None,
        metavar="IMAGE",
        help="The image the revision must run (REPO@sha256:DIGEST, or REPO:TAG): sets [revision] image. "
        "Env: REVGATE_EXPECT_IMAGE.",
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


MIN_TIMEOUT = 0.1
"""Seconds: the shortest request timeout accepted (the checklist's timeouts have the same floor)."""
MAX_URL_LENGTH = 2048
"""A longer --revision-url is refused (browsers and proxies cut URLs around 2 KiB; Cloud Run's are short)."""
MAX_TIMEOUT = 600.0
"""Seconds: the largest request timeout accepted (Cloud Run's own request timeout is at most 3600 s,
a post-deploy check that needs more than 10 minutes per request is a misconfiguration)."""
MAX_CHECKLIST_BYTES = 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
MAX_TOML_DEPTH = 16
"""Nesting levels of tables and arrays a checklist may have (the shipped one has 3)."""
PRESCAN_DEPTH = 64
"""Brackets nested deeper than this (counted before parsing) are refused without parsing:
Python's TOML parser recurses, and raises RecursionError at some hundred levels."""
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$")


def finite_number(raw: Any, what: str, *, low: float, high: float, integer: bool = False) -> float:
    """``raw`` as a finite number within ``[low, high]`` (``low`` excluded when it is 0), else ConfigError."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} {raw!r} is not a finite number")
    if integer and value != int(value):
        raise ConfigError(f"{what} {raw!r} is not a whole number")
    if value > high or value < low or (low == 0 and value == 0):
        bound = f"more than 0 and at most {high:g}" if low == 0 else f"from {low:g} to {high:g}"
        raise ConfigError(f"{what} {raw!r} is out of range: give {bound}")
    return value


def check_url(url: str, *, what: str = "--revision-url") -> str:
    """Return the URL without a trailing slash, or raise ConfigError saying what is wrong (one line;
    credentials in the URL are never repeated). A path is kept as the base path of every check."""
    if len(url) > MAX_URL_LENGTH:
        raise ConfigError(f"{what} is {len(url)} characters long; give the revision's base URL (at most {MAX_URL_LENGTH})")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{what} contains spaces or control characters: give the revision's base URL")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        shown = url if "@" not in url else "(a URL with credentials)"
        raise ConfigError(f"{what} {shown!r} is not a valid URL ({exc})") from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"{what} has credentials in it ({parts.scheme}://***@{parts.netloc.rpartition('@')[2]}): "
            "revgate never sends URL credentials; give the API token in REVGATE_AUTH_TOKEN or --auth-token-file"
        )
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"{what} {url!r} is not an http(s) URL: give the revision's full URL, "
            "such as https://TAG---SERVICE-HASH.a.run.app"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} {url!r} has a query or fragment: give the revision's base URL")
    if port == 0:
        raise ConfigError(f"{what} {url!r} has an invalid port (0)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.match(host):
            raise ConfigError(f"{what} {url!r}: {host!r} is not a valid host name") from None
    return url.rstrip("/")


def read_regular_file(path: Path, what: str, *, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ConfigError for anything else
    (a FIFO, a device, a directory would block, never end or fail late)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, device or socket)"
        raise ConfigError(f"{what} {str(path)!r} is {kind}: give a regular file")
    if info.st_size > limit:
        raise ConfigError(f"{what} {str(path)!r} is {info.st_size} bytes; at most {limit} are accepted")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped since the stat
                raise ConfigError(f"{what} {str(path)!r} is not a regular file: give a regular file")
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: cannot read it ({exc.strerror})") from None
    if len(data) > limit:
        raise ConfigError(f"{what} {str(path)!r} is over {limit} bytes; at most {limit} are accepted")
    return data


def _decode(data: bytes, path: Path, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start + 1}, line {line}): save it as UTF-8"
        ) from None


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_TOML_DEPTH:
        return level
    if isinstance(value, dict):
        return max([level + 1] + [_depth(v, level + 1) for v in value.values()])
    if isinstance(value, list):
        return max([level + 1] + [_depth(v, level + 1) for v in value])
    return level


def precheck_checklist(path: Path) -> None:
    """Before the checklist is parsed: a regular UTF-8 file of at most 1 MiB, valid TOML nested at
    most :data:`MAX_TOML_DEPTH` levels; raises ChecklistError (one line)."""
    import tomllib

    if not os.path.lexists(path):
        return  # load_checklist says so, with how to give one
    try:
        text = _decode(read_regular_file(path, "checklist", limit=MAX_CHECKLIST_BYTES), path, "checklist")
    except ConfigError as exc:
        raise ChecklistError(str(exc)) from None
    nesting = _bracket_depth(text)
    if nesting > PRESCAN_DEPTH:  # pathological nesting never reaches the (recursive) parser
        raise ChecklistError(f"checklist {str(path)!r} nests arrays or tables {nesting} deep; at most {MAX_TOML_DEPTH}")
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ChecklistError(f"checklist {str(path)!r} nests arrays or tables too deeply; at most {MAX_TOML_DEPTH}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChecklistError(f"{path}: not valid TOML: {exc}") from None
    depth = _depth(data)
    if depth > MAX_TOML_DEPTH:
        raise ChecklistError(f"checklist {str(path)!r} nests arrays or tables more than {MAX_TOML_DEPTH} deep")


def _bracket_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings and comments (a cheap bound before parsing)."""
    depth = best = 0
    quote = ""
    comment = escaped = False
    for c in text:
        if comment:
            comment = c != "\n"
        elif quote:
            if escaped:
                escaped = False
            elif c == "\\" and quote == '"':
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            comment = True
        elif c in "[{":
            depth += 1
            best = max(best, depth)
        elif c in "]}":
            depth = max(depth - 1, 0)
    return best


def check_report_path(raw: str, what: str) -> Path:
    """A report path checked before any check runs: its folder exists (created when missing) and is writable, and the path is
    absent or a regular file (never a directory, a symlink, a FIFO or a device, which a report written by
    rename would replace, or which would block or fail at the end); ConfigError otherwise."""
    if not raw or not raw.strip():
        raise ConfigError(f"{what} is empty: give the path of the file to write")
    path = Path(raw)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():  # created, as --output and --junitxml create theirs
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{what} {raw}: cannot create the directory {parent} ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK | os.X_OK) or not _can_create_in(parent):
        raise ConfigError(f"{what} {raw}: the directory {parent} is not writable (no file can be created in it)")
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise ConfigError(f"{what} {raw!r}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(f"{what} {raw!r} is a symbolic link: give the path of a regular file (it would be replaced)")
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a special file (FIFO, device or socket)"
        raise ConfigError(f"{what} {raw!r} is {kind}: give the path of a regular file")
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {raw!r} is not writable")
    return path


def _can_create_in(folder: Path) -> bool:
    """A file can be created in ``folder`` (tried, then removed: access() says yes to root for /proc,
    a read-only mount or a full quota, where the report would fail at the end)."""
    probe = folder / f".revgate-write-check.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return True
    except OSError:
        return False
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
    return True


def write_report_file(path: str | Path, text: str) -> str | None:
    """Write a report as a regular file (a temporary file renamed over it, only when the path is still
    absent or a regular file); the one-line reason when it could not be written, else None."""
    target = Path(path)
    try:
        info = target.lstat()
        if not stat.S_ISREG(info.st_mode):
            return f"{target} is no longer a regular file: not replaced"
    except FileNotFoundError:
        pass
    except OSError as exc:
        return f"{target}: {exc.strerror}"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        return f"{target}: {exc.strerror or exc}"
    return None


def _read_token(path: str) -> Secret:
    what = "--auth-token-file"
    value = _decode(read_regular_file(Path(path), what, limit=MAX_TOKEN_BYTES), Path(path), what).strip()
    if not value:
        raise ConfigError(f"--auth-token-file {path!r} is empty: put the API token in it")
    if any(c.isspace() for c in value):
        raise ConfigError(f"--auth-token-file {path!r} holds more than one line or word: it must hold the token alone")
    return _long_enough(value, f"--auth-token-file {path!r}")


def _given_token_env(env: Any) -> str | None:
    """The token of ``REVGATE_AUTH_TOKEN`` (surrounding whitespace removed); '' when the variable is set
    but empty (a CI secret misnamed: GitHub gives an empty string), None when it is not set."""
    if TOKEN_ENV not in env:
        return None
    return env[TOKEN_ENV].strip()


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
    precheck_checklist(path)
    checklist, data = load_checklist(path)
    expect_image = _first(config.getoption("expect_image"), env.get("REVGATE_EXPECT_IMAGE"))
    if expect_image:  # the image a CI just built: [revision] image, with or without a [revision] section
        from .revision_config import with_expected_image

        where = "--expect-image" if config.getoption("expect_image") else "REVGATE_EXPECT_IMAGE"
        data = with_expected_image(data, expect_image, source=where)
        checklist = parse_checklist(data, source=str(path))
    if not any(checklist.entries(section) for section in CHECK_SECTIONS):
        raise ChecklistError(
            f"{path}: the checklist has no checks (no [health], [[api]], [[websocket]], [[latency]], "
            "[[page]] or metric entries): revgate would verify nothing"
        )

    timeout_raw = _first(
        config.getoption("request_timeout"), env.get("REVGATE_REQUEST_TIMEOUT"), config.getini("revgate_request_timeout")
    )
    if timeout_raw is None:
        timeout = checklist.defaults.timeout
    else:
        timeout = finite_number(timeout_raw, "request timeout", low=0, high=MAX_TIMEOUT)
        if timeout < MIN_TIMEOUT:
            raise ConfigError(
                f"request timeout {timeout_raw!r} is out of range: give at least {MIN_TIMEOUT:g} s (a shorter timeout "
                "would fail a healthy revision)"
            )

    token_file = config.getoption("auth_token_file")
    if token_file:
        token, source = _read_token(token_file), f"file {token_file}"
    elif _given_token_env(env):
        token, source = _long_enough(env[TOKEN_ENV].strip(), TOKEN_ENV), f"env {TOKEN_ENV}"
    else:
        token, source = None, ("empty" if _given_token_env(env) == "" else "none")

    from .idtoken import resolve_id_token

    id_token = resolve_id_token(url, option=config.getoption("id_token"), env=env)

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

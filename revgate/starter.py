"""The starter checklist ``revgate init`` writes, optionally filled in by probing a URL.

Without a URL the starter holds a health check and commented examples of every
section. With ``--from-url`` it asks the service, without credentials, for the
usual health paths (frameworks' own too: ``/_stcore/health``, ``/healthz``,
``/api/health``), ``/``, common API paths, and two paths that cannot exist (one
under ``/api/``). A path that answers exactly as an unknown path does (a
single-page app's catch-all page, a proxy's blanket 401) proves nothing and is
left out; a 401 or 403 is an endpoint that needs the token only when it differs
from an unknown path's answer; a ``WWW-Authenticate`` header names the
``auth_scheme``. A ``[[page]]`` is always proposed for ``/``.

Then the checks it is about to write are run, by the gate itself, against the
URL it probed (with ``REVGATE_AUTH_TOKEN`` when set; never with a rollback), and
only those that pass are written. Each one dropped stays in the file as a
comment saying why, so the starter passes on the service it was made from. The
text is validated against the checklist schema before it is written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from .errors import ConfigError

__all__ = ["starter_checklist"]

HEALTH_PATHS = ("/health", "/healthz", "/_stcore/health", "/api/health", "/readyz", "/livez", "/_health", "/status", "/ping")
"""Tried in this order; the first that answers 200, and not as an unknown path does, is the health check."""
API_PATHS = ("/api", "/api/status", "/api/v1", "/api/version", "/version", "/openapi.json")
PROBE_TIMEOUT = 5.0
TRIAL_TIMEOUT = 180.0
"""Seconds the trial run of the proposed checks may take (a page in a browser, a cold revision)."""
KEPT_ENV = ("REVGATE_AUTH_TOKEN", "REVGATE_AUTH_USER", "REVGATE_ID_TOKEN", "CHROMIUM_EXECUTABLE")
"""The only REVGATE_ settings the trial run sees: never a service, so never a rollback or a promotion."""

HEADER = """\
# revgate checklist: what "this revision is good" means for this service.
# Validate it with `revgate check checklist.toml`; run it with
#   revgate --revision-url https://TAG---SERVICE-HASH.a.run.app --checklist=checklist.toml
# Every section is optional; a section left out adds no check. An unknown key
# is an error. Any check may say `advisory = true`: reported, never gating.
# The keys of every section are documented in the checklist.toml shipped with
# revgate (python -c "import revgate.suite as s; print(s.suite_dir() / 'checklist.toml')").

[defaults]
timeout = 10.0                  # seconds per request (--request-timeout overrides)
"""

EXAMPLES = """
# JSON API endpoints: `auth = true` (the default) sends the API token (REVGATE_AUTH_TOKEN or
# --auth-token-file) and also checks that the endpoint refuses a request without it.
# [[api]]
# id = "items"
# path = "/api/items"
# auth = true
# status = 200
# keys = { items = "array", next = "string|null" }

# A page in a real browser (Chromium): no console error, no failed request, no error box.
# [[page]]
# id = "home"
# path = "/"
# selectors = ["main"]
# absent_text = ["An internal error occurred"]

# A WebSocket exchange (forbid: frames that fail it).
# [[websocket]]
# id = "echo"
# path = "/ws"
# send = { type = "ping" }
# expect = { type = "pong" }
# forbid = ['"type": ?"error"']

# Cloud Monitoring thresholds of the revision (needs --service, --region, --project).
# [metrics]
# window = 600
# min_requests = 20
# max_error_rate = 0.05
# p99_latency_ms = 2000
"""


@dataclass
class _Seen:
    path: str
    status: int
    content_type: str
    body: bytes
    location: str = ""
    authenticate: str = ""

    @property
    def mime(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def data(self) -> Any:
        if "json" not in self.content_type:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def like(self, other: _Seen) -> bool:
        """Answers as ``other`` does: same status, same type, the same body (its own path aside)."""
        if (self.status, self.mime) != (other.status, other.mime):
            return False
        mine = self.body.replace(self.path.encode(), b"{path}")
        theirs = other.body.replace(other.path.encode(), b"{path}")
        if mine == theirs:
            return True
        if not mine or not theirs or min(len(mine), len(theirs)) / max(len(mine), len(theirs)) < 0.95:
            return False
        from difflib import SequenceMatcher

        # a page with a nonce or a timestamp: the same page all the same
        return SequenceMatcher(None, mine[:20000], theirs[:20000], autojunk=False).quick_ratio() > 0.97


@dataclass
class _Entry:
    """One check the starter proposes: its TOML, why it is proposed, and whether the trial kept it."""

    section: str
    values: dict[str, Any]
    found: str
    dropped: str = ""
    tests: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.values.get("id", self.section))

    @property
    def header(self) -> str:
        return f"[{self.section}]" if self.section == "health" else f"[[{self.section}]]"

    def label(self) -> str:
        where = self.values.get("path", "")
        return f"{self.section} {where}" + (" (auth)" if self.values.get("auth") and self.section != "health" else "")

    def lines(self) -> list[str]:
        body = [self.header, *(f"{key} = {_toml(value)}" for key, value in self.values.items())]
        if not self.dropped:
            return ["", f"# found: {self.found}", *body]
        return ["", f"# found: {self.found}", f"# dropped: {self.dropped}", *(f"# {line}" for line in body)]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")  # pragma: no cover


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _one_line(text: str, limit: int = 240) -> str:
    """Text fit for a TOML comment: one line, no control character, cut."""
    line = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())
    return line[:limit] + ("..." if len(line) > limit else "")


def _probe(url: str) -> tuple[dict[str, _Seen], dict[str, _Seen]]:
    """What each path answered, and what two unknown paths (``/`` and ``/api/`` ones) answered."""
    import httpx

    nonce = secrets.token_hex(6)
    unknown = {"/": f"/revgate-no-such-path-{nonce}", "/api/": f"/api/revgate-no-such-path-{nonce}"}
    seen: dict[str, _Seen] = {}
    try:
        with httpx.Client(timeout=PROBE_TIMEOUT, follow_redirects=False, headers={"User-Agent": "revgate-init"}) as client:
            for path in dict.fromkeys(("/", *HEALTH_PATHS, *API_PATHS, *unknown.values())):
                response = client.get(urljoin(url, path))
                seen[path] = _Seen(
                    path,
                    response.status_code,
                    response.headers.get("content-type", ""),
                    response.content[:65536],
                    location=response.headers.get("location", ""),
                    authenticate=response.headers.get("www-authenticate", ""),
                )
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot probe {url}: {type(exc).__name__} ({exc}); is the service up?") from None
    return seen, {prefix: seen.pop(path) for prefix, path in unknown.items()}


def _unknown_for(path: str, unknown: dict[str, _Seen]) -> _Seen:
    return unknown["/api/"] if path.startswith("/api/") else unknown["/"]


def _entry_id(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.strip("/")).strip("-.") or "root"


def _proposals(url: str) -> tuple[list[_Entry], list[str], list[str]]:
    """The checks to try, the [defaults] lines to add, and comments on what was left out."""
    seen, unknown = _probe(url)
    entries: list[_Entry] = []
    defaults: list[str] = []
    notes: list[str] = []

    schemes = [(s.path, s.authenticate.split()[0]) for s in seen.values() if s.status == 401 and s.authenticate.split()]
    if schemes:
        where, scheme = schemes[0]
        comment = f"  # from the WWW-Authenticate header of {where}"
        if scheme.lower() == "basic":
            comment += " (REVGATE_AUTH_USER is the user, the token the password)"
        defaults.append(f"auth_scheme = {_toml(scheme)}{comment}")

    health = None
    for path in HEALTH_PATHS:
        s = seen[path]
        if s.status != 200:
            continue
        if s.like(_unknown_for(path, unknown)):
            notes.append(f"# {path} answered 200 as an unknown path does (a catch-all page): not a health endpoint")
            continue
        health = s
        break
    if health is not None:
        values: dict[str, Any] = {"path": health.path, "status": 200}
        data = health.data
        if isinstance(data, dict) and isinstance(data.get("status"), (str, bool, int)):
            values["json"] = {"status": data["status"]}
        elif data is None and health.body.strip() and health.mime.startswith("text/") and "html" not in health.mime:
            values["contains"] = health.body.decode("utf-8", "replace").strip().splitlines()[0][:40]
        entries.append(_Entry("health", values, f"{health.path} answered 200 ({health.mime or 'no content type'})"))
    else:
        notes.append("# no health path answered 200 as only a health endpoint would (tried " + ", ".join(HEALTH_PATHS) + ")")

    for path in API_PATHS:
        s = seen[path]
        other = _unknown_for(path, unknown)
        if s.like(other):
            if s.status < 400 or s.status in (401, 403):
                notes.append(f"# {path} answered {s.status} as an unknown path does: no endpoint there")
            continue
        ident = _entry_id(path)
        if s.status in (401, 403):
            entries.append(_Entry(
                "api", {"id": ident, "path": path, "auth": True, "status": 200},
                f"{path} answered {s.status} without a token (an unknown path answers {other.status}): "
                "checked with the token, and refused without",
            ))
        elif s.status == 200 and s.data is not None:
            data = s.data
            keys = {k: _json_type(v) for k, v in list(data.items())[:12]} if isinstance(data, dict) else {}
            values = {"id": ident, "path": path, "auth": False, "status": 200}
            if keys:
                values["keys"] = keys
            entries.append(_Entry("api", values, f"{path} answered 200 with JSON"))
        elif s.status == 200 and s.mime and "html" not in s.mime:
            entries.append(_Entry(
                "api", {"id": ident, "path": path, "auth": False, "status": 200, "content_type": s.mime},
                f"{path} answered 200 with {s.mime}",
            ))

    entries += _openapi_entries(url, seen.get("/openapi.json"), taken={e.values.get("path") for e in entries}, notes=notes)

    root = seen["/"]
    page: dict[str, Any] = {"id": "home", "path": "/"}
    found = f"/ answered {root.status}" + (f" ({root.mime})" if root.mime else "")
    if root.status in (301, 302, 303, 307, 308) and root.location:
        target = urljoin(url.rstrip("/") + "/", root.location)
        if urlsplit(target).netloc == urlsplit(url).netloc:
            page["allow_redirect_to"] = ["^" + re.escape(urlsplit(target).path or "/")]
        found += f", a redirect to {root.location}"
    elif root.status in (401, 403):
        page["auth"] = True
    entries.append(_Entry("page", page, found))
    return entries, defaults, notes


OPENAPI_MAX = 10
"""``[[api]]`` entries taken from an OpenAPI document at most (the first parameterless GET operations)."""


def _openapi_entries(url: str, doc: _Seen | None, *, taken: set[Any], notes: list[str]) -> list[_Entry]:
    """``[[api]]`` entries for the parameterless GET operations of the OpenAPI document the service
    serves (``/openapi.json``): a path without a ``{template}`` and without a required parameter.
    Each is then tried like every proposal; the responses' schemas are not trusted: what the service
    answers is."""
    if doc is None or doc.status != 200 or not isinstance(doc.data, dict) or not isinstance(doc.data.get("paths"), dict):
        return []
    found: list[_Entry] = []
    skipped = 0
    for path, item in doc.data["paths"].items():
        get = item.get("get") if isinstance(item, dict) else None
        if not isinstance(path, str) or not path.startswith("/") or not isinstance(get, dict):
            continue
        shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
        own = get.get("parameters") if isinstance(get.get("parameters"), list) else []
        required = [p for p in shared + own if isinstance(p, dict) and (p.get("required") or p.get("in") == "path")]
        if "{" in path or required or path in taken:
            continue
        if len(found) >= OPENAPI_MAX:
            skipped += 1
            continue
        secured = bool(get.get("security", doc.data.get("security")))
        values = {"id": _entry_id(path), "path": path, "auth": secured, "status": 200}
        found.append(_Entry("api", values, f"GET {path} in the service's OpenAPI document ({'needs' if secured else 'no'} security)"))
    if skipped:
        notes.append(f"# {skipped} more parameterless GET operations of /openapi.json were left out (at most {OPENAPI_MAX})")
    return found


def _render(entries: list[_Entry], defaults: list[str], notes: list[str], *, trial: bool) -> str:
    text = HEADER + "".join(f"{line}\n" for line in defaults)
    body: list[str] = []
    for entry in entries:
        body += entry.lines()
    if notes:
        body += ["", *notes]
    if trial:
        body = [line for line in body if not line.startswith("# found: ")]
    return text + "\n".join(body) + "\n" + ("" if trial else EXAMPLES)


def _test_entry(name: str) -> tuple[str, str]:
    """``test_api_requires_auth[items]`` -> ('api', 'items'); ``test_page[home-chromium]`` -> ('page', 'home')."""
    match = re.match(r"^test_(health|api|api_requires_auth|websocket|page)\[(.+)\]$", name)
    if not match:
        return "", ""
    section = {"api_requires_auth": "api"}.get(match.group(1), match.group(1))
    ident = match.group(2)
    if section == "page":
        ident = re.sub(r"-(chromium|firefox|webkit)$", "", ident)
    return section, ident


def _run_trial(url: str, text: str, folder: Path) -> tuple[int, dict[tuple[str, str], str], str]:
    """Run the gate on ``text``: (exit code, (section, id) -> '' passed / why not, the usage error line)."""
    checklist = folder / "trial.toml"
    checklist.write_text(text, encoding="utf-8")
    junit = folder / f"trial-{len(list(folder.glob('trial-*.xml')))}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVGATE_", "PYTEST_")) or k in KEPT_ENV}
    cmd = [
        sys.executable, "-m", "revgate", "--revision-url", url, f"--checklist={checklist}", f"--junitxml={junit}",
        f"--output={folder / 'pages'}", "-q", "-p", "no:cacheprovider",
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=TRIAL_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the trial run of the proposed checks took more than {TRIAL_TIMEOUT:g} s against {url}") from None
    results: dict[tuple[str, str], str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            key = _test_entry(case.get("name", ""))
            why = ""
            for child in case:
                if child.tag in ("failure", "error"):
                    why = child.get("message", "") or (child.text or "").strip() or child.tag
                elif child.tag == "skipped":
                    why = "skipped: " + (child.get("message", "") or "not run")
            if why.startswith("Failed: "):
                why = why.removeprefix("Failed: ")
            results[key] = results.get(key) or _one_line(why)
    errors = [line.removeprefix("ERROR: ") for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    return proc.returncode, results, errors[0] if errors else ""


def _try(url: str, entries: list[_Entry], defaults: list[str]) -> None:
    """Run the proposed checks against ``url``; mark each that did not pass with why."""
    from .target import USER_ENV

    has_token = bool(os.environ.get("REVGATE_AUTH_TOKEN"))
    for entry in entries:
        needs_token = entry.values.get("auth") is True
        if needs_token and not has_token:
            entry.dropped = "not tried, it needs the API token: set REVGATE_AUTH_TOKEN and run revgate init --from-url again"
    basic = any("basic" in line.lower() for line in defaults)
    if basic and has_token and not os.environ.get(USER_ENV) and ":" not in os.environ.get("REVGATE_AUTH_TOKEN", ""):
        for entry in entries:
            if entry.values.get("auth") is True:
                entry.dropped = f"not tried: Basic auth needs {USER_ENV} (the user; the token is the password)"
    with tempfile.TemporaryDirectory(prefix="revgate-init-") as tmp:
        folder = Path(tmp)
        for _ in range(3):
            tried = [e for e in entries if not e.dropped]
            if not tried:
                return
            code, results, error = _run_trial(url, _render(tried, defaults, [], trial=True), folder)
            if code == 4 and error:
                # a usage error (no Chromium for the page, a token the gate refuses): drop what it names, or the pages
                pages = [e for e in tried if e.section == "page"]
                if pages and ("chromium" in error.lower() or "browser" in error.lower() or "page" in error.lower()):
                    for entry in pages:
                        entry.dropped = f"not tried: {_one_line(error)}"
                    continue
                raise ConfigError(f"cannot try the proposed checks against {url}: {_one_line(error, 400)}")
            for entry in tried:
                outcome = [why for (section, ident), why in results.items() if section == entry.section and ident == entry.id]
                if not outcome:
                    entry.dropped = "the trial run did not run it" + (f" ({_one_line(error)})" if error else "")
                elif any(outcome):
                    entry.dropped = f"it failed on {url}: " + next(w for w in outcome if w)
            return


def _scrub(text: str) -> str:
    for name in ("REVGATE_AUTH_TOKEN",):
        value = os.environ.get(name, "").strip()
        if len(value) >= 4:
            from .credentials import secret_forms

            for form in sorted(secret_forms(value) + [value], key=len, reverse=True):
                text = text.replace(form, "***")
    return text


def starter_checklist(*, from_url: str | None = None) -> tuple[str, str]:
    """The starter text and a one-line account of what the probe found (empty without a URL)."""
    from .checklist import parse_checklist
    from .settings import check_url

    if from_url is None:
        body = ["", "# The health endpoint.", "[health]", 'path = "/health"', "status = 200"]
        text = HEADER + "\n".join(body) + "\n" + EXAMPLES
        found = ""
    else:
        try:
            url = check_url(from_url)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("--revision-url", "--from-url", 1)) from None
        entries, defaults, notes = _proposals(url)
        _try(url, entries, defaults)
        text = _scrub(_render(entries, defaults, notes, trial=False))
        kept = [e.label() for e in entries if not e.dropped]
        dropped = [e for e in entries if e.dropped]
        found = ", ".join(kept) if kept else "no check passed on the URL: only the examples"
        if dropped:
            found += f"; {len(dropped)} dropped (" + ", ".join(e.label() for e in dropped) + "): the file says why"
    import tomllib

    parse_checklist(tomllib.loads(text), source="the starter checklist")  # what we write must be valid
    return text, found

"""The starter checklist ``revgate init`` writes, optionally filled in by probing a URL.

Without a URL the starter holds a health check and commented examples of every
section. With ``--from-url`` it asks the service, without credentials, for the
usual health paths, ``/`` and common API paths, and writes a check for each
path that answered: the status seen, the JSON keys and their types, ``auth =
true`` where the answer was 401 or 403. The text is validated against the
checklist schema before it is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from .errors import ConfigError

__all__ = ["starter_checklist"]

HEALTH_PATHS = ("/health", "/healthz", "/readyz", "/_health", "/api/health", "/status")
API_PATHS = ("/api", "/api/status", "/api/v1", "/api/version", "/version", "/openapi.json")
PROBE_TIMEOUT = 5.0

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
# JSON API endpoints: `auth = true` sends the API token (REVGATE_AUTH_TOKEN or
# --auth-token-file) and also checks that the endpoint refuses a request without it.
# [[api]]
# id = "items"
# path = "/api/items"
# auth = true
# status = 200
# keys = { items = "array", next = "string|null" }

# A page in a real browser (Chromium): no console error, no failed request.
# [[page]]
# id = "home"
# path = "/"
# selectors = ["main"]

# A WebSocket exchange.
# [[websocket]]
# id = "echo"
# path = "/ws"
# send = { type = "ping" }
# expect = { type = "pong" }

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

    @property
    def data(self) -> Any:
        if "json" not in self.content_type:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


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


def _probe(url: str) -> dict[str, _Seen]:
    import httpx

    seen: dict[str, _Seen] = {}
    try:
        with httpx.Client(timeout=PROBE_TIMEOUT, follow_redirects=False) as client:
            for path in ("/", *HEALTH_PATHS, *API_PATHS):
                response = client.get(urljoin(url, path))
                seen[path] = _Seen(path, response.status_code, response.headers.get("content-type", ""), response.content[:65536])
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot probe {url}: {type(exc).__name__} ({exc}); is the service up?") from None
    return seen


def _section(lines: list[str], header: str, values: dict[str, Any], comment: str = "") -> None:
    lines.append("")
    if comment:
        lines.append(f"# {comment}")
    lines.append(header)
    lines.extend(f"{key} = {_toml(value)}" for key, value in values.items())


def _filled(url: str) -> tuple[list[str], list[str]]:
    from .checklist import Health

    seen = _probe(url)
    lines: list[str] = []
    found: list[str] = []
    health = next((s for p, s in seen.items() if p in HEALTH_PATHS and s.status == 200), None)
    if health is not None:
        values: dict[str, Any] = {"path": health.path, "status": 200}
        data = health.data
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            values["json"] = {"status": data["status"]}
        elif data is None and "contains" in Health.model_fields and health.body.strip():
            text = health.body.decode("utf-8", "replace").strip().splitlines()[0][:40]
            values["contains"] = text
        _section(lines, "[health]", values, f"found: {health.path} answered 200")
        found.append(f"health {health.path}")
    else:
        lines.append("\n# no health path answered 200 (tried " + ", ".join(HEALTH_PATHS) + ")")
    for path in API_PATHS:
        s = seen[path]
        data = s.data
        if s.status in (401, 403):
            _section(
                lines,
                "[[api]]",
                {"id": path.strip("/").replace("/", "-") or "root", "path": path, "auth": True, "status": 200},
                f"found: {path} answered {s.status} without a token: checked with the token, and refused without",
            )
            found.append(f"api {path} (auth)")
        elif s.status == 200 and data is not None:
            keys = {k: _json_type(v) for k, v in list(data.items())[:12]} if isinstance(data, dict) else {}
            values = {"id": path.strip("/").replace("/", "-").replace(".", "-"), "path": path, "auth": False, "status": 200}
            if keys:
                values["keys"] = keys
            _section(lines, "[[api]]", values, f"found: {path} answered 200 with JSON")
            found.append(f"api {path}")
    root = seen["/"]
    if root.status == 200 and "html" in root.content_type:
        _section(lines, "[[page]]", {"id": "home", "path": "/"}, "found: / answered 200 with HTML")
        found.append("page /")
    elif root.status in (301, 302, 303, 307, 308):
        lines.append(f"\n# / answered {root.status} (a redirect): add a [[page]] for where it leads")
    return lines, found


def starter_checklist(*, from_url: str | None = None) -> tuple[str, str]:
    """The starter text and a one-line account of what the probe found (empty without a URL)."""
    from .checklist import parse_checklist
    from .settings import check_url

    if from_url is None:
        body = ["", "# The health endpoint.", "[health]", 'path = "/health"', "status = 200"]
        found = ""
    else:
        try:
            url = check_url(from_url)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("--revision-url", "--from-url", 1)) from None
        lines, seen = _filled(url)
        body, found = lines, (", ".join(seen) if seen else "nothing answered: only the examples")
    text = HEADER + "\n".join(body) + "\n" + EXAMPLES
    import tomllib

    parse_checklist(tomllib.loads(text), source="the starter checklist")  # what we write must be valid
    return text, found

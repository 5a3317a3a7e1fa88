"""The sample service: a small stand-in for "Emergence", with fault injection.

The local Cloud Run sandbox runs one process of this service per revision::

    python -m sandbox.app --host 127.0.0.1 --port PORT [--faults LIST] [--token TOKEN] [--revision NAME]

Environment fallbacks: ``SAMPLE_FAULTS`` (comma-separated), ``SAMPLE_API_TOKEN``
(default ``sandbox-token``), ``SAMPLE_REVISION`` (then ``K_REVISION``, as Cloud
Run sets it) and ``SAMPLE_SEED`` (seeds the ``error_rate`` draw). The revision
name is sent in the ``X-Revision`` header of every HTTP response; bodies never
carry it. An unknown fault or a bad value prints one line on stderr and exits
with status 2.

Routes
------
``GET /health``                 ``{"status": "ok"}``
``GET /api/memory/user/stats``  needs ``Authorization: Bearer TOKEN``; 401 with
                                ``WWW-Authenticate: Bearer`` otherwise
``GET /api/hints``              public JSON list of proactive hints
``GET /``                       the ProactiveHints page (``/static/hints.js``)
``GET /memory``                 the memory dashboard (``/static/memory.js``)
``/static/...``                 assets from ``sandbox/static/``
``GET /favicon.ico``            204
``WS  /ws/{session_id}``        the session WebSocket (below)

WebSocket protocol (JSON text frames)
-------------------------------------
On connect the server sends nothing. Then, for each client frame:

* ``{"type": "ping", "id": N}`` → ``{"type": "pong", "id": N, "session_id": S}``
* ``{"type": "message", "text": T}`` → ``{"type": "ack", "session_id": S, "text": T}``
* anything else (not JSON, not an object, unknown type, missing field) →
  ``{"type": "error", "detail": "..."}``; the connection stays open.

The client ends the session with close code 1000; the server answers the
close handshake.

Faults (``--faults``, comma-separated, fixed at start)
-----------------------------------------------------
``health_500``        /health answers 500
``health_slow[:S]``   /health takes S seconds (default 5)
``stats_500``         the stats endpoint answers 500
``stats_schema``      the stats JSON lacks ``concepts``
``stats_open``        the stats endpoint answers 200 without any token
``stats_slow[:S]``    the stats endpoint takes S seconds (default 5)
``ws_reject``         the WebSocket handshake is refused (HTTP 403)
``ws_silent``         the WebSocket is accepted and never answers
``error_rate:P``      a share P in [0, 1] of all HTTP requests answer 500
``latency_ms:N``      every HTTP request takes N ms more
``latency:D``         the same, written as a duration (``2s``, ``500ms``)
``...@after=D``       ``error_rate``, ``latency_ms`` and ``latency`` may start late: ``error_rate:0.5@after=30s``
                      answers normally for 30 s after the process started, then fails half the
                      requests (a canary that breaks mid-soak); D is ``Ns``, ``Nm`` or a number of seconds
``startup_delay:S``   every HTTP route answers 503 ``{"detail": "starting"}``
                      for S seconds after start
``js_error``          the ``/`` page throws an uncaught Error after rendering
``missing_asset``     the ``/`` page references ``/static/missing.css`` (404)
``console_error``     the ``/`` page calls ``console.error``
``hints_missing``     the ProactiveHints section is never rendered
``slow_asset:S``      ``/static/hints.js`` is delayed S seconds
``log_errors``        every HTTP request writes one ERROR-severity structured log line (a JSON
                      object with ``severity`` and ``message``) on stdout, naming the request and
                      the credentials it carried (a leak a log check must not repeat)
``log_traceback``     every HTTP request prints a Python traceback on stderr, as an unhandled
                      exception handler does; the request is still answered as usual

Logging: the healthy service writes nothing at ERROR (uvicorn logs warnings only, as plain lines);
it writes one plain access line per HTTP request on stdout, as uvicorn's access log does
(``SAMPLE_ACCESS_LOG=0``: none, a quiet service).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import html
import json
import os
import random
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["DEFAULT_TOKEN", "FaultError", "Faults", "create_app", "main", "parse_faults"]

DEFAULT_TOKEN = "sandbox-token"
STATIC_DIR = Path(__file__).resolve().parent / "static"
PROG = "sandbox.app"


class FaultError(ValueError):
    """A fault list names an unknown fault or gives a fault a bad value."""


@dataclass(frozen=True)
class Faults:
    """The faults a revision was started with; all off by default (0 means off)."""

    health_500: bool = False
    health_slow: float = 0.0
    stats_500: bool = False
    stats_schema: bool = False
    stats_open: bool = False
    stats_slow: float = 0.0
    ws_reject: bool = False
    ws_silent: bool = False
    error_rate: float = 0.0
    latency_ms: float = 0.0
    startup_delay: float = 0.0
    js_error: bool = False
    missing_asset: bool = False
    console_error: bool = False
    hints_missing: bool = False
    slow_asset: float = 0.0
    log_errors: bool = False
    log_traceback: bool = False
    error_rate_after: float = 0.0
    """Seconds after the start before ``error_rate`` applies (``@after=``)."""
    latency_after: float = 0.0
    """Seconds after the start before ``latency_ms`` applies (``@after=``)."""

    def active(self) -> list[str]:
        """The enabled faults, in the ``--faults`` syntax."""
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _ONSETS.values():
                continue
            if value is True:
                out.append(f.name)
            elif value and not isinstance(value, bool):
                after = getattr(self, _ONSETS[f.name]) if f.name in _ONSETS else 0
                out.append(f"{f.name}:{value:g}" + (f"@after={after:g}s" if after else ""))
        return out

    def on(self, name: str, since_start: float) -> bool:
        """Whether the valued fault ``name`` applies ``since_start`` seconds after the process started."""
        return bool(getattr(self, name)) and since_start >= getattr(self, _ONSETS[name], 0.0)


_ONSETS = {"error_rate": "error_rate_after", "latency_ms": "latency_after"}
"""Faults that may start late (``@after=``), and the field holding their onset."""


# name -> (syntax shown to users, default value when none is given, or None when a value is required)
_VALUED: dict[str, tuple[str, float | None]] = {
    "health_slow": ("health_slow[:S]", 5.0),
    "stats_slow": ("stats_slow[:S]", 5.0),
    "error_rate": ("error_rate:P", None),
    "latency_ms": ("latency_ms:N", None),
    "startup_delay": ("startup_delay:S", None),
    "slow_asset": ("slow_asset:S", None),
}


def _known() -> str:
    names = [f.name for f in fields(Faults) if f.name not in _ONSETS.values()]
    return ", ".join(_VALUED[n][0] if n in _VALUED else n for n in names) + ", latency:D, FAULT@after=D"


def _seconds(text: str) -> float:
    """``30s``, ``2m``, ``500ms`` or a plain number of seconds; ValueError otherwise."""
    text = text.strip().lower()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def _bad(item: str, why: str = "") -> FaultError:
    detail = f"{why}; known: " if why else "known: "
    return FaultError(f"unknown fault {item!r} ({detail}{_known()})")


def parse_faults(text: str) -> Faults:
    """Parse ``"health_500,latency_ms:200"`` into :class:`Faults`; raise :class:`FaultError`."""
    values: dict[str, Any] = {}
    names = {f.name for f in fields(Faults)} - set(_ONSETS.values())
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        item, at, onset = item.partition("@")
        name, sep, arg = item.partition(":")
        name = name.strip()
        if name == "latency" and sep:  # latency:2s, a duration
            try:
                name, arg = "latency_ms", f"{_seconds(arg) * 1000:g}"
            except ValueError:
                raise _bad(raw.strip(), "latency:D needs a duration such as 2s or 500ms") from None
        if name not in names:
            raise _bad(raw.strip())
        if at:
            key, _, when = onset.partition("=")
            if name not in _ONSETS or key.strip() != "after":
                raise _bad(raw.strip(), f"only {', '.join(_ONSETS)} and latency take @after=D")
            try:
                after = _seconds(when)
            except ValueError:
                after = -1.0
            if not (0 <= after < 86400):
                raise _bad(raw.strip(), "@after=D needs a duration such as 30s or 2m")
            values[_ONSETS[name]] = after
        if name not in _VALUED:
            if sep:
                raise _bad(item, f"{name} takes no value")
            values[name] = True
            continue
        syntax, default = _VALUED[name]
        if not sep:
            if default is None:
                raise _bad(item, f"{syntax} needs a value")
            values[name] = default
            continue
        try:
            number = float(arg)
        except ValueError:
            raise _bad(item, f"{syntax} needs a number") from None
        if number != number or number in (float("inf"), float("-inf")) or number < 0:
            raise _bad(item, f"{syntax} needs a finite number >= 0")
        if name == "error_rate" and number > 1:
            raise _bad(item, "error_rate:P needs P in [0, 1]")
        values[name] = number
    return Faults(**values)


# --- content -------------------------------------------------------------------------------------------------

HINTS: list[dict[str, str]] = [
    {
        "id": "review-concepts",
        "kind": "tip",
        "title": "Review your concepts",
        "body": "Three concepts gained new memories this week. A short review keeps them connected.",
    },
    {
        "id": "resume-session",
        "kind": "reminder",
        "title": "Pick up where you left off",
        "body": "Your last session on Cloud Run traffic splitting ended mid-way.",
    },
    {
        "id": "export-memories",
        "kind": "suggestion",
        "title": "Export your memories",
        "body": "Download a copy of your memory graph as JSON from the memory dashboard.",
    },
]


def _stats_body(*, with_concepts: bool) -> dict[str, Any]:
    last_active = datetime.now(timezone.utc) - timedelta(minutes=12)
    body: dict[str, Any] = {
        "preferences": {"language": "en", "theme": "dark", "proactive_hints": True, "timezone": "Europe/Paris"},
        "concepts": {"cloud-run": 17, "python": 42, "observability": 9, "websockets": 6},
        "stats": {
            "total_memories": 74,
            "sessions": 31,
            "concepts": 4,
            "last_active": last_active.isoformat(timespec="seconds"),
        },
    }
    if not with_concepts:
        del body["concepts"]
    return body


def _page(*, title: str, body_attrs: str, main: str, head: str = "", script: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(title)} · Emergence</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/app.css">{head}
  <script src="{script}" defer></script>
</head>
<body{body_attrs}>
  <header class="topbar">
    <a class="brand" href="/">Emergence</a>
    <nav><a href="/">Home</a><a href="/memory">Memory</a></nav>
  </header>
  <main>
{main}
  </main>
</body>
</html>
"""


# --- the application -----------------------------------------------------------------------------------------


def _json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class _FaultMiddleware:
    """Faults that apply to every HTTP request, and the ``X-Revision`` header."""

    def __init__(
        self, app: ASGIApp, *, faults: Faults, revision: str, rng: random.Random, started: list[float]
    ) -> None:
        self.app = app
        self.faults = faults
        self.revision = revision
        self.rng = rng
        self.started = started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_revision(message: Message) -> None:
            if message["type"] == "http.response.start" and self.revision:
                message["headers"] = [*message.get("headers", []), (b"x-revision", self.revision.encode("latin-1"))]
            if message["type"] == "http.response.start":
                _access_line(scope, int(message["status"]))
            await send(message)

        faults = self.faults
        since_start = time.monotonic() - self.started[0]
        if faults.log_errors or faults.log_traceback:
            _log_faults(faults, scope)
        if faults.on("latency_ms", since_start):
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.startup_delay and time.monotonic() - self.started[0] < faults.startup_delay:
            await _json_error(503, "starting", {"Retry-After": "1"})(scope, receive, send_with_revision)
            return
        if faults.on("error_rate", since_start) and self.rng.random() < faults.error_rate:
            await _json_error(500, "internal error")(scope, receive, send_with_revision)
            return
        if faults.slow_asset and scope["path"] == "/static/hints.js":
            await asyncio.sleep(faults.slow_asset)
        await self.app(scope, receive, send_with_revision)


def _access_line(scope: Scope, status: int) -> None:
    """One plain line on stdout per HTTP request, in uvicorn's access log format (most web servers log
    each request by default); ``SAMPLE_ACCESS_LOG=0`` makes a quiet service that logs nothing."""
    if os.environ.get("SAMPLE_ACCESS_LOG", "1") == "0":
        return
    client = scope.get("client") or ("-", 0)
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope.get("path", "/") + (f"?{query}" if query else "")
    print(f'{client[0]}:{client[1]} - "{scope.get("method", "GET")} {target} HTTP/{scope.get("http_version", "1.1")}" {status}', flush=True)


def _log_faults(faults: Faults, scope: Scope) -> None:
    """``log_errors`` and ``log_traceback``: what a broken revision writes for every request."""
    path = scope.get("path", "/")
    method = scope.get("method", "GET")
    if faults.log_errors:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        carried = headers.get("authorization")
        message = f"simulated error while handling {method} {path}" + (f" (credentials: {carried})" if carried else "")
        print(json.dumps({"severity": "ERROR", "message": message, "path": path}), flush=True)
    if faults.log_traceback:
        import traceback

        try:
            raise RuntimeError(f"simulated unhandled error in {method} {path}")
        except RuntimeError:
            traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()


def _bearer_ok(request: Request, token: str) -> str:
    """'' when the request carries the right bearer token, else the reason it does not."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        return "Not authenticated"
    if scheme.lower() != "bearer" or not value.strip():
        return "Invalid authorization scheme; expected Bearer"
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        return "Invalid token"
    return ""


def _ws_reply(session_id: str, text: str) -> dict[str, Any]:
    try:
        msg = json.loads(text)
    except ValueError:
        return {"type": "error", "detail": "invalid JSON"}
    if not isinstance(msg, dict):
        return {"type": "error", "detail": "expected a JSON object"}
    kind = msg.get("type")
    if kind == "ping":
        if "id" not in msg:
            return {"type": "error", "detail": "ping needs an 'id'"}
        return {"type": "pong", "id": msg["id"], "session_id": session_id}
    if kind == "message":
        if not isinstance(msg.get("text"), str):
            return {"type": "error", "detail": "message needs a string 'text'"}
        return {"type": "ack", "session_id": session_id, "text": msg["text"]}
    return {"type": "error", "detail": f"unknown message type {kind!r}; expected 'ping' or 'message'"}


def create_app(*, faults: Faults, token: str, revision: str = "", seed: int | None = None) -> Starlette:
    """The sample service with ``faults`` injected; ``token`` guards the stats API."""
    started = [time.monotonic()]
    rng = random.Random(seed)

    async def health(request: Request) -> Response:
        if faults.health_slow:
            await asyncio.sleep(faults.health_slow)
        if faults.health_500:
            return JSONResponse({"status": "error"}, status_code=500)
        return JSONResponse({"status": "ok"})

    async def user_stats(request: Request) -> Response:
        if not faults.stats_open:
            problem = _bearer_ok(request, token)
            if problem:
                return _json_error(401, problem, {"WWW-Authenticate": "Bearer"})
        if faults.stats_slow:
            await asyncio.sleep(faults.stats_slow)
        if faults.stats_500:
            return _json_error(500, "internal error")
        return JSONResponse(_stats_body(with_concepts=not faults.stats_schema))

    async def hints(request: Request) -> Response:
        return JSONResponse(HINTS)

    async def index(request: Request) -> Response:
        page_faults = [n for n in ("js_error", "console_error", "hints_missing") if getattr(faults, n)]
        attrs = f' data-faults="{",".join(page_faults)}"' if page_faults else ""
        head = '\n  <link rel="stylesheet" href="/static/missing.css">' if faults.missing_asset else ""
        main = (
            '    <h1>Welcome back</h1>\n'
            '    <p class="lead">Emergence keeps what you learn connected. Here is what it noticed.</p>\n'
            '    <div id="hints-root" aria-live="polite"></div>'
        )
        return HTMLResponse(_page(title="Home", body_attrs=attrs, main=main, head=head, script="/static/hints.js"))

    async def memory(request: Request) -> Response:
        main = (
            '    <h1>Memory</h1>\n'
            '    <p class="lead">What Emergence remembers about your work.</p>\n'
            '    <div id="memory-root" aria-live="polite"></div>'
        )
        return HTMLResponse(_page(title="Memory", body_attrs="", main=main, script="/static/memory.js"))

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def session_ws(websocket: WebSocket) -> None:
        if faults.ws_reject:
            await websocket.close(code=1008)  # before accept: the client sees HTTP 403
            return
        await websocket.accept()
        session_id = websocket.path_params["session_id"]
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if faults.ws_silent:
                    continue
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                await websocket.send_json(_ws_reply(session_id, text))
        except WebSocketDisconnect:
            return

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started[0] = time.monotonic()
        yield

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/api/memory/user/stats", user_stats),
            Route("/api/hints", hints),
            Route("/", index),
            Route("/memory", memory),
            Route("/favicon.ico", favicon),
            WebSocketRoute("/ws/{session_id}", session_ws),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(_FaultMiddleware, faults=faults, revision=revision, rng=rng, started=started)
    return app


# --- command line ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {PROG}", description="The sample service, with fault injection.")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    p.add_argument("--port", type=int, required=True, help="Port to listen on.")
    p.add_argument("--faults", default=None, help="Comma-separated faults (env SAMPLE_FAULTS).")
    p.add_argument("--token", default=None, help="The API bearer token (env SAMPLE_API_TOKEN).")
    p.add_argument("--revision", default=None, help="Revision name for the X-Revision header (env SAMPLE_REVISION).")
    return p


def _seed(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return int.from_bytes(text.encode(), "big")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until interrupted; 2 on a bad fault list."""
    args = _parser().parse_args(argv)
    env = os.environ
    try:
        faults = parse_faults(args.faults if args.faults is not None else env.get("SAMPLE_FAULTS", ""))
    except FaultError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    token = args.token or env.get("SAMPLE_API_TOKEN") or DEFAULT_TOKEN
    revision = args.revision or env.get("SAMPLE_REVISION") or env.get("K_REVISION") or ""
    app = create_app(faults=faults, token=token, revision=revision, seed=_seed(env.get("SAMPLE_SEED")))

    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

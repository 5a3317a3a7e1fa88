"""The revision's WebSocket endpoints: connect, send a message, get the expected reply, close cleanly."""

from __future__ import annotations

import json
import time
import uuid

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from revgate_support.checklist import WebSocket
from revgate_support.judge import fail, missing_subset
from revgate_support.target import Target


def _matches(reply: str, expect: dict | str) -> str:
    """'' when the reply is as expected, else what is wrong with it."""
    if isinstance(expect, str):
        return "" if expect in reply else f"the reply does not contain {expect!r}"
    try:
        value = json.loads(reply)
    except ValueError:
        return "the reply is not JSON"
    problems = missing_subset(value, expect)
    return "; ".join(problems)


def test_websocket(target: Target, ws_check: WebSocket) -> None:
    url = target.ws_url(ws_check.path.replace("{session}", f"revgate-{uuid.uuid4().hex[:12]}"))
    message = ws_check.send if isinstance(ws_check.send, str) else json.dumps(ws_check.send)
    started = time.perf_counter()
    try:
        with connect(
            url,
            additional_headers=target.headers(auth=ws_check.auth),
            open_timeout=ws_check.timeout,
            close_timeout=ws_check.timeout,
            max_size=1024 * 1024,
            user_agent_header="revgate",
        ) as ws:
            ws.send(message)
            try:
                reply = ws.recv(timeout=ws_check.timeout)
            except TimeoutError:
                fail(f"WebSocket {url}: no reply within {ws_check.timeout:g} s to {message!r}")
            reply_text = reply if isinstance(reply, str) else reply.decode("utf-8", errors="replace")
            ws.close(code=1000)
            clean = ws.protocol.close_rcvd is not None
    except InvalidStatus as exc:
        fail(f"WebSocket {url}: handshake refused with HTTP {exc.response.status_code}")
    except ConnectionClosed as exc:
        fail(f"WebSocket {url}: the server closed the connection before replying (code {exc.code})")
    except (InvalidHandshake, TimeoutError) as exc:
        fail(f"WebSocket {url}: handshake failed within {ws_check.timeout:g} s ({exc or type(exc).__name__})")
    except OSError as exc:
        fail(f"WebSocket {url}: cannot connect ({exc.strerror or exc})")
    elapsed = time.perf_counter() - started
    problem = _matches(reply_text, ws_check.expect)
    if problem:
        fail(f"WebSocket {url}: {problem}; sent {message!r}, got {reply_text[:200]!r} after {elapsed:.3f} s")
    if not clean:
        fail(f"WebSocket {url}: the server did not answer the close handshake within {ws_check.timeout:g} s")

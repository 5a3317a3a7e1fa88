"""The revision's WebSocket endpoints: connect, send a message, get the expected reply, close cleanly."""

from __future__ import annotations

import json
import time
import uuid

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from revgate.checklist import WebSocket
from revgate.judge import fail, missing_subset
from revgate.target import Target


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


def _exchange(target: Target, check: WebSocket, url: str, message: str) -> tuple[str, bool, str]:
    """(reply, closed cleanly, error): error is '' when a reply came."""
    try:
        with connect(
            url,
            additional_headers=target.headers(auth=check.auth),
            open_timeout=check.timeout,
            close_timeout=check.timeout,
            max_size=1024 * 1024,
            user_agent_header="revgate",
        ) as ws:
            ws.send(message)
            try:
                reply = ws.recv(timeout=check.timeout)
            except TimeoutError:
                return "", False, f"no reply within {check.timeout:g} s to {message!r}"
            ws.close(code=1000)
            text = reply if isinstance(reply, str) else reply.decode("utf-8", errors="replace")
            return text, ws.protocol.close_rcvd is not None, ""
    except InvalidStatus as exc:
        return "", False, f"handshake refused with HTTP {exc.response.status_code}"
    except ConnectionClosed as exc:
        return "", False, f"the server closed the connection before replying (code {exc.code})"
    except (InvalidHandshake, TimeoutError) as exc:
        return "", False, f"handshake failed within {check.timeout:g} s ({exc or type(exc).__name__})"
    except OSError as exc:
        return "", False, f"cannot connect ({exc.strerror or exc})"


def test_websocket(target: Target, ws_check: WebSocket) -> None:
    url = target.ws_url(ws_check.path.replace("{session}", f"revgate-{uuid.uuid4().hex[:12]}"))
    message = ws_check.send if isinstance(ws_check.send, str) else json.dumps(ws_check.send)
    started = time.perf_counter()
    reply, clean, error = _exchange(target, ws_check, url, message)
    elapsed = time.perf_counter() - started
    if error:
        fail(f"WebSocket {url}: {error}")
    problem = _matches(reply, ws_check.expect)
    if problem:
        fail(f"WebSocket {url}: {problem}; sent {message!r}, got {reply[:200]!r} after {elapsed:.3f} s")
    if not clean:
        fail(f"WebSocket {url}: the server did not answer the close handshake within {ws_check.timeout:g} s")

"""The revision's WebSocket endpoints: connect, exchange messages, get the expected frames, close cleanly.

Real protocols send frames of their own (a kernel's status frames, presence
updates) before the one asked for: each step waits for the first frame that
matches ``expect`` within ``timeout``, and lists the frames it skipped when
none did.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from revgate.checklist import WebSocket, WsStep
from revgate.judge import fail, missing_subset
from revgate.target import Target

SKIPPED_SHOWN = 5
"""Skipped frames quoted in a failure message (the count says how many there were)."""


def _matches(reply: str, expect: dict | str) -> str:
    """'' when the frame is as expected, else what is wrong with it."""
    if isinstance(expect, str):
        return "" if expect in reply else f"does not contain {expect!r}"
    try:
        value = json.loads(reply)
    except ValueError:
        return "not JSON"
    return "; ".join(missing_subset(value, expect))


def _text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")


@dataclass
class Exchange:
    error: str = ""
    """'' when every step got its frame."""
    clean: bool = False
    elapsed: float = 0.0
    matched: list[str] = field(default_factory=list)


def _wait_for(ws, step: WsStep, timeout: float, sent: str) -> str:  # noqa: ANN001 - websockets' ClientConnection
    """'' when a frame matching ``step.expect`` comes within ``timeout``, else why not (with the skipped frames)."""
    deadline = time.monotonic() + timeout
    skipped: list[tuple[str, str]] = []
    after = f" after sending {sent[:120]!r}" if sent else ""
    while True:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            frame = _text(ws.recv(timeout=remaining))
        except TimeoutError:
            return f"no frame matching {step.expect!r} within {timeout:g} s{after}{_skipped(skipped)}"
        except ConnectionClosed as exc:
            return f"the server closed the connection (code {exc.rcvd.code if exc.rcvd else 'none'}) before a frame matching {step.expect!r}{after}{_skipped(skipped)}"
        why = _matches(frame, step.expect)  # type: ignore[arg-type]
        if not why:
            return ""
        skipped.append((frame, why))


def _skipped(skipped: list[tuple[str, str]]) -> str:
    if not skipped:
        return "; no frame came"
    shown = "; ".join(f"{frame[:120]!r} ({why[:120]})" for frame, why in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return f"; skipped {len(skipped)} frame{'s' if len(skipped) != 1 else ''}: {shown}{more}"


def _exchange(target: Target, check: WebSocket, url: str, session: str) -> Exchange:
    result = Exchange()
    started = time.perf_counter()
    try:
        with connect(
            url,
            additional_headers=target.headers(auth=check.auth, check=check),
            subprotocols=check.subprotocols or None,  # type: ignore[arg-type]
            open_timeout=check.timeout,
            close_timeout=check.timeout,
            max_size=4 * 1024 * 1024,
            user_agent_header="revgate",
        ) as ws:
            if check.subprotocols and ws.subprotocol not in check.subprotocols:
                result.error = f"the server accepted none of the subprotocols {check.subprotocols}"
                return result
            for step in check.exchanges():
                message = "" if step.send is None else step.send if isinstance(step.send, str) else json.dumps(step.send)
                message = message.replace("{session}", session)
                if message:
                    ws.send(message)
                why = _wait_for(ws, step, check.timeout, message)
                if why:
                    result.error = why
                    return result
            ws.close(code=1000)
            result.clean = ws.protocol.close_rcvd is not None
    except InvalidStatus as exc:
        result.error = f"handshake refused with HTTP {exc.response.status_code}"
    except ConnectionClosed as exc:
        result.error = f"the server closed the connection (code {exc.rcvd.code if exc.rcvd else 'none'})"
    except (InvalidHandshake, TimeoutError) as exc:
        result.error = f"handshake failed within {check.timeout:g} s ({exc or type(exc).__name__})"
    except OSError as exc:
        result.error = f"cannot connect ({exc.strerror or exc})"
    finally:
        result.elapsed = time.perf_counter() - started
    return result


def test_websocket(target: Target, ws_check: WebSocket) -> None:
    if ws_check.auth and not target.has_token:
        fail(f"WebSocket {target.ws_url(ws_check.path)} needs the API token (auth = true), and none was given: "
             "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE")
    session = f"revgate-{uuid.uuid4().hex[:12]}"
    url = target.ws_url(ws_check.path.replace("{session}", session))
    auth = " (with token)" if ws_check.auth else ""
    result = _exchange(target, ws_check, url, session)
    if result.error:
        fail(f"WebSocket {url}{auth}: {result.error} ({result.elapsed:.3f} s)")
    if not result.clean:
        fail(f"WebSocket {url}{auth}: the server did not answer the close handshake within {ws_check.timeout:g} s")

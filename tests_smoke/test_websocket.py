"""The revision's WebSocket endpoints: connect, exchange messages, get the expected frames, close cleanly.

Real protocols send frames of their own (a kernel's status frames, presence
updates) before the one asked for: each step waits for the first frame that
matches ``expect`` within ``timeout``, and lists the frames it skipped when
none did. A frame matching ``forbid`` (a kernel's error frame) fails the check
whenever it comes: before the awaited frame, or after it while the socket is
held open (``hold_ms``). With neither ``send`` nor ``expect`` the check is the
handshake, the socket staying open ``hold_ms`` (1 s by default) and a clean
close. ``binary = true``: bytes are sent as binary frames and matched as bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from revgate.checklist import WebSocket, WsStep, body_pattern, ws_bytes
from revgate.judge import fail, missing_subset
from revgate.target import SENT, Target

SKIPPED_SHOWN = 5
"""Skipped frames quoted in a failure message (the count says how many there were)."""
DRAIN_FRAMES = 100
"""After the awaited frame (and ``hold_ms``), frames already received are read for ``forbid``, this many at most."""


def _matches(reply: str | bytes, expect: dict | str, *, binary: bool = False) -> str:
    """'' when the frame is as expected, else what is wrong with it."""
    if binary:
        want = ws_bytes(expect)  # type: ignore[arg-type]
        data = reply if isinstance(reply, bytes) else reply.encode("utf-8")
        return "" if want in data else f"does not contain the bytes {want.hex()}"
    reply = _text(reply)
    if isinstance(expect, str):
        return "" if expect in reply else f"does not contain {expect!r}"
    try:
        value = json.loads(reply)
    except ValueError:
        return "not JSON"
    return "; ".join(missing_subset(value, expect))


def _text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")


def _shown(frame: str | bytes, limit: int = 120) -> str:
    """A frame as a message quotes it: text as text, bytes as hex."""
    if isinstance(frame, bytes):
        return f"bytes {frame[: limit // 2].hex()}" + ("..." if len(frame) > limit // 2 else "")
    return repr(frame[:limit])


class Forbidden:
    """``forbid``: RE2 patterns on a frame's text, and byte patterns (``hex:``/``base64:``) on its bytes."""

    def __init__(self, patterns: list[str]) -> None:
        self.texts = [(p, body_pattern(p)) for p in patterns if not p.startswith(("hex:", "base64:"))]
        self.bytes = [(p, ws_bytes(p)) for p in patterns if p.startswith(("hex:", "base64:"))]

    def hit(self, frame: str | bytes) -> str:
        """The pattern the frame matches, or ''."""
        data = frame if isinstance(frame, bytes) else frame.encode("utf-8")
        for pattern, want in self.bytes:
            if want in data:
                return pattern
        text = _text(frame)
        for pattern, compiled in self.texts:
            if compiled.search(text):
                return pattern
        return ""


@dataclass
class Exchange:
    error: str = ""
    """'' when every step got its frame."""
    clean: bool = False
    elapsed: float = 0.0
    matched: list[str] = field(default_factory=list)


def _forbidden(frame: str | bytes, forbid: Forbidden, when: str) -> str:
    pattern = forbid.hit(frame)
    return f"a frame {when} matches forbid {pattern!r}: {_shown(frame, 200)}" if pattern else ""


def _wait_for(ws, step: WsStep, timeout: float, sent: str, *, forbid: Forbidden, binary: bool = False) -> str:  # noqa: ANN001 - websockets' ClientConnection
    """'' when a frame matching ``step.expect`` comes within ``timeout``, else why not (with the skipped frames).
    A frame that matches ``forbid`` ends the wait with a failure."""
    deadline = time.monotonic() + timeout
    skipped: list[tuple[str | bytes, str]] = []
    after = f" after sending {sent[:120]!r}" if sent else ""
    while True:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            frame = ws.recv(timeout=remaining)
        except TimeoutError:
            return f"no frame matching {step.expect!r} within {timeout:g} s{after}{_skipped(skipped)}"
        except ConnectionClosed as exc:
            return f"the server closed the connection (code {exc.rcvd.code if exc.rcvd else 'none'}) before a frame matching {step.expect!r}{after}{_skipped(skipped)}"
        why = _forbidden(frame, forbid, f"before the one matching {step.expect!r}")
        if why:
            return why + after
        why = _matches(frame, step.expect, binary=binary)  # type: ignore[arg-type]
        if not why:
            return ""
        skipped.append((frame, why))


def _hold(ws, seconds: float, forbid: Forbidden) -> str:  # noqa: ANN001 - websockets' ClientConnection
    """'' when the socket stays open ``seconds`` (frames meanwhile read, none forbidden), else why not."""
    started = time.monotonic()
    deadline = started + seconds
    drained = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            drained += 1
            if drained > DRAIN_FRAMES:
                return ""  # a server that never stops talking: what was read is judged
        try:
            # after the hold, frames already received are still read (one sent with the awaited one)
            frame = ws.recv(timeout=max(remaining, 0))
        except TimeoutError:
            return ""
        except ConnectionClosed as exc:
            if remaining <= 0:
                return ""
            held = (time.monotonic() - started) * 1000
            return (f"the server closed the connection (code {exc.rcvd.code if exc.rcvd else 'none'}) after "
                    f"{held:.0f} ms; it must stay open {seconds * 1000:.0f} ms (hold_ms)")
        why = _forbidden(frame, forbid, "after the exchange")
        if why:
            return why


def _skipped(skipped: list[tuple[str | bytes, str]]) -> str:
    if not skipped:
        return "; no frame came"
    shown = "; ".join(f"{_shown(frame)} ({why[:120]})" for frame, why in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return f"; skipped {len(skipped)} frame{'s' if len(skipped) != 1 else ''}: {shown}{more}"


def _exchange(target: Target, check: WebSocket, url: str, session: str) -> Exchange:
    result = Exchange()
    started = time.perf_counter()
    forbid = Forbidden(check.forbid)
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
            SENT.append((time.time(), 101))  # the handshake: one request of the gate's own in Cloud Monitoring
            if check.subprotocols and ws.subprotocol not in check.subprotocols:
                result.error = f"the server accepted none of the subprotocols {check.subprotocols}"
                return result
            exchanges = check.exchanges()
            if not exchanges and check.send is not None:
                exchanges = [WsStep(send=check.send, expect="")]  # send, then only hold
            for step in exchanges:
                shown = ""
                if check.binary and isinstance(step.send, str):
                    ws.send(ws_bytes(step.send))
                    shown = step.send
                else:
                    message = "" if step.send is None else step.send if isinstance(step.send, str) else json.dumps(step.send)
                    message = message.replace("{session}", session)
                    if message:
                        ws.send(message)
                    shown = message
                if step.expect == "" and step.send is not None:
                    continue
                why = _wait_for(ws, step, check.timeout, shown, forbid=forbid, binary=check.binary)
                if why:
                    result.error = why
                    return result
            why = _hold(ws, check.hold, forbid)
            if why:
                result.error = why
                return result
            ws.close(code=1000)
            result.clean = ws.protocol.close_rcvd is not None
    except InvalidStatus as exc:
        SENT.append((time.time(), exc.response.status_code))
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


def _refused_by_serving_revision(config, target: Target, check: WebSocket, url: str, session: str, status: int) -> str | None:  # noqa: ANN001
    """The handshake refused 401/403: the same handshake to the revision a rollback would restore; refused
    there too, the gate's credentials are wrong (NOT VERIFIED), else None (the revision under test broke)."""
    import dataclasses

    from revgate.settings import settings_key
    from revgate.token_check import REFUSED, serving_urls

    settings = config.stash[settings_key]
    for base, what, attempts in serving_urls(config):
        other = Target(settings=dataclasses.replace(settings, revision_url=base))
        seen = []
        for _ in range(attempts):
            answer = _exchange(other, check, other.ws_url(check.path.replace("{session}", session)), session)
            code = next((c for c in REFUSED if answer.error == f"handshake refused with HTTP {c}"), None)
            if code is None:
                return None
            seen.append(str(code))
        return (
            f"the serving revision refuses the same WebSocket handshake as well: {url} answered {status}, and {what} "
            f"answered {', '.join(seen)}; the gate's credentials (the API token, or the ID token of an IAM-protected "
            "service) or the checklist are wrong, the revision is not judged, traffic unchanged"
        )
    return None


def test_websocket(target: Target, ws_check: WebSocket, pytestconfig) -> None:  # noqa: ANN001
    if ws_check.auth and not target.has_token:
        fail(f"WebSocket {target.ws_url(ws_check.path)} needs the API token (auth = true), and none was given: "
             "set REVGATE_AUTH_TOKEN or pass --auth-token-file FILE")
    session = f"revgate-{uuid.uuid4().hex[:12]}"
    url = target.ws_url(ws_check.path.replace("{session}", session))
    auth = " (with token)" if ws_check.auth else ""
    result = _exchange(target, ws_check, url, session)
    refused = next((c for c in (401, 403) if result.error == f"handshake refused with HTTP {c}"), None)
    if refused is not None:
        reason = _refused_by_serving_revision(pytestconfig, target, ws_check, url, session, refused)
        if reason is not None:
            from revgate.errors import not_verified

            not_verified(reason)
    if result.error:
        fail(f"WebSocket {url}{auth}: {result.error} ({result.elapsed:.3f} s)")
    if not result.clean:
        fail(f"WebSocket {url}{auth}: the server did not answer the close handshake within {ws_check.timeout:g} s")

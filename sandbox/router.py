"""The traffic-splitting router: an HTTP/1.1 and WebSocket reverse proxy on pure asyncio.

One listening loopback port per service URL and per tag URL; on a service port
the ``Host`` header may also name a Cloud Run-styled URL of the service or of
one of its tags (``TAG---SERVICE-HASH-RC.a.run.app``, see :mod:`sandbox.urls`).
Each request on a service port picks a revision by weighted random choice over the traffic in
force (``random.Random(seed)``, so ``--seed`` makes the sequence reproducible);
a tag port only ever reaches its revision. The routing table is swapped in one
assignment, so a change applies to the next request, also on a kept-alive
client connection, while requests in flight finish where they started.

The proxy works at the byte level: it reads the request head, forwards head and
body unchanged to a pooled keep-alive connection of the revision's process,
and relays the response by its framing (``Content-Length``, chunked, or until
close). ``Upgrade`` requests (WebSocket) get their own backend connection and
are piped both ways. Each request an instance answered is reported to
``on_request(service, revision, status_code, latency_ms)``; the router's own
answers (no instance, instance unreachable, connection closed: 502/503) are not,
as Cloud Run's ``request_count`` counts only requests that reached an instance.

Every request routed to a revision, also one the router answered itself (502/503:
Cloud Run's request log is the log of the requests sent to the service,
https://cloud.google.com/run/docs/logging, "request logs", whoever answered them),
is also reported to ``on_log(RequestRecord)``: the daemon writes it to Cloud
Logging as the revision's request log (``run.googleapis.com/requests``). A request
no revision could be picked for (no traffic, unknown tag) has no revision to log under.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from sandbox.ports import HOST
from sandbox.routes import RoutingTable

__all__ = ["RequestRecord", "Router"]

log = logging.getLogger("sandbox.router")

RequestHook = Callable[[str, str, int, float], None]


@dataclass(frozen=True)
class RequestRecord:
    """One request routed to a revision, as its request log entry needs it."""

    service: str
    revision: str
    method: str
    url: str
    protocol: str
    status: int
    started: float
    """Epoch seconds when the request head was read."""
    latency_s: float
    user_agent: str
    remote_ip: str
    by_router: bool
    """True: the router answered (no instance answered)."""


LogHook = Callable[[RequestRecord], None]
_CHUNK = 65536
_MAX_HEAD = 65536
_POOL_SIZE = 64


class _BadRequest(Exception):
    pass


class _Head:
    """The parts of an HTTP message head the proxy needs."""

    __slots__ = ("first", "version", "length", "chunked", "close", "upgrade", "host", "user_agent")

    def __init__(self, raw: bytes) -> None:
        lines = raw[:-4].split(b"\r\n")
        self.first = lines[0].split(b" ", 2)
        if len(self.first) < 2:
            raise _BadRequest(lines[0][:80])
        self.length: int | None = None
        self.chunked = False
        self.upgrade = False
        self.host = ""
        self.user_agent = ""
        connection = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    self.length = int(value)
                except ValueError:
                    raise _BadRequest(b"bad content-length") from None
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif name == b"connection":
                connection = value.strip().lower()
            elif name == b"upgrade":
                self.upgrade = True
            elif name == b"host":
                self.host = value.strip().decode("latin-1")
            elif name == b"user-agent":
                self.user_agent = value.strip().decode("latin-1")
        self.version = self.first[0] if self.first[0].startswith(b"HTTP/") else self.first[2] if len(self.first) > 2 else b""
        if self.version == b"HTTP/1.0":
            self.close = b"keep-alive" not in connection
        else:
            self.close = b"close" in connection
        self.upgrade = self.upgrade and b"upgrade" in connection


def _response(status: int, reason: str, message: str, *, close: bool = False) -> bytes:
    body = (message + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n{'connection: close' if close else 'connection: keep-alive'}\r\n\r\n"
    )
    return head.encode() + body


async def _read_body(reader: asyncio.StreamReader, head: _Head) -> bytes:
    """The raw body bytes as framed on the wire (chunked bodies stay chunked)."""
    if head.chunked:
        parts = []
        while True:
            line = await reader.readuntil(b"\r\n")
            parts.append(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    parts.append(trailer)
                    if trailer == b"\r\n":
                        return b"".join(parts)
            parts.append(await reader.readexactly(size + 2))
    if head.length:
        return await reader.readexactly(head.length)
    return b""


class Router:
    """Listens on the service and tag ports and proxies to the revision processes."""

    def __init__(
        self, *, seed: int | None = None, on_request: RequestHook | None = None, on_log: LogHook | None = None
    ) -> None:
        self.table = RoutingTable()
        self.rng = random.Random(seed)
        self.on_request = on_request
        self.on_log = on_log
        self._servers: dict[int, asyncio.AbstractServer] = {}
        self._pools: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self._tunnels: set[asyncio.Task[None]] = set()

    def set_table(self, table: RoutingTable) -> None:
        """Swap the routing table (safe from any thread: one assignment)."""
        self.table = table

    async def listen(self, ports: Iterable[int]) -> None:
        """Bind every port not bound yet."""
        for port in ports:
            if port not in self._servers:
                self._servers[port] = await asyncio.start_server(
                    partial(self._client, port), HOST, port, reuse_address=True, limit=_MAX_HEAD
                )

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        for pool in self._pools.values():
            for _, writer in pool:
                writer.close()
        self._pools.clear()
        for task in list(self._tunnels):
            task.cancel()
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers.clear()

    # -- one client connection --------------------------------------------------------

    async def _client(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    writer.write(_response(431, "Request Header Fields Too Large", "request head too large", close=True))
                    return
                start = time.perf_counter()
                wall = time.time()
                try:
                    head = _Head(raw)
                    body = await _read_body(reader, head)
                except (_BadRequest, ValueError):
                    writer.write(_response(400, "Bad Request", "malformed HTTP request", close=True))
                    return
                route = self.table.route(port, head.host)
                backend = route.pick(self.rng) if route is not None else None
                if backend is None:
                    what = "no revision serves this URL" if route is None or route.__class__.__name__ == "ServiceRoute" else "tag not found"
                    status = 503 if route is not None and route.__class__.__name__ == "ServiceRoute" else 404
                    writer.write(_response(status, "Service Unavailable" if status == 503 else "Not Found", what, close=head.close))
                    if head.close:
                        return
                    continue
                if head.upgrade:
                    status = await self._tunnel(route.service, backend.revision, backend.port, raw + body, reader, writer, start)
                    self._log(route.service, backend.revision, head, writer, status, wall, start, by_router=status in (502, 503))
                    return
                status, keep, own = await self._forward(backend.port, raw, body, head, writer)
                if self.on_request is not None and status is not None:  # None: the router answered itself
                    self.on_request(route.service, backend.revision, status, (time.perf_counter() - start) * 1000.0)
                self._log(route.service, backend.revision, head, writer, status if status is not None else own or 502,
                          wall, start, by_router=status is None)
                if not keep or head.close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()

    def _log(
        self,
        service: str,
        revision: str,
        head: _Head,
        writer: asyncio.StreamWriter,
        status: int,
        wall: float,
        start: float,
        *,
        by_router: bool,
    ) -> None:
        """Report the request to ``on_log`` (``by_router``: the router answered itself, its 502/503)."""
        if self.on_log is None:
            return
        target = head.first[1].decode("latin-1") if len(head.first) > 1 else "/"
        host = head.host or f"{HOST}:{writer.get_extra_info('sockname', (HOST, 0))[1]}"
        peer = writer.get_extra_info("peername") or (HOST, 0)
        try:
            self.on_log(
                RequestRecord(
                    service=service,
                    revision=revision,
                    method=head.first[0].decode("latin-1"),
                    url=f"http://{host}{target}",
                    protocol=head.version.decode("latin-1") or "HTTP/1.1",
                    status=status,
                    started=wall,
                    latency_s=time.perf_counter() - start,
                    user_agent=head.user_agent,
                    remote_ip=str(peer[0]),
                    by_router=by_router,
                )
            )
        except Exception:  # logging must never break the proxy
            log.exception("request log hook failed")

    async def _connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        pool = self._pools.get(port)
        while pool:
            reader, writer = pool.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(HOST, port, limit=_MAX_HEAD)
        return reader, writer, False

    def _release(self, port: int, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        pool = self._pools.setdefault(port, [])
        if len(pool) < _POOL_SIZE:
            pool.append(conn)
        else:
            conn[1].close()

    async def _forward(
        self, port: int | None, raw: bytes, body: bytes, head: _Head, writer: asyncio.StreamWriter
    ) -> tuple[int | None, bool, int | None]:
        """Relay one request; ``(status, client connection reusable, the router's own status or None)``.

        The status is ``None`` when the router answered itself (502/503: no instance answered): like
        Cloud Run's ``request_count``, which counts only requests that reached an instance, those are
        not recorded.
        """
        if port is None:
            writer.write(_response(503, "Service Unavailable", "the revision has no running instance"))
            return None, True, 503
        for attempt in range(2):
            try:
                b_reader, b_writer, pooled = await self._connect(port)
            except OSError:
                writer.write(_response(503, "Service Unavailable", "the revision's instance is not reachable"))
                return None, True, 503
            try:
                b_writer.write(raw + body if body else raw)
                resp_raw = await b_reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                b_writer.close()
                if pooled and attempt == 0:
                    continue  # a kept-alive connection the revision had closed: retry on a new one
                writer.write(_response(502, "Bad Gateway", "the revision closed the connection"))
                return None, True, 502
        resp = _Head(resp_raw)
        try:
            status = int(resp.first[1])
        except (IndexError, ValueError):
            b_writer.close()
            writer.write(_response(502, "Bad Gateway", "the revision answered a malformed response", close=True))
            return None, False, 502
        method = head.first[0]
        reusable = not resp.close
        try:
            if method == b"HEAD" or status in (204, 304) or status < 200:
                writer.write(resp_raw)
            elif resp.chunked:
                writer.write(resp_raw)
                while True:
                    line = await b_reader.readuntil(b"\r\n")
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        writer.write(line)
                        while True:
                            trailer = await b_reader.readuntil(b"\r\n")
                            writer.write(trailer)
                            if trailer == b"\r\n":
                                break
                        break
                    writer.write(line + await b_reader.readexactly(size + 2))
                    await writer.drain()
            elif resp.length is not None:
                if resp.length <= _CHUNK:
                    writer.write(resp_raw + await b_reader.readexactly(resp.length) if resp.length else resp_raw)
                else:
                    writer.write(resp_raw)
                    left = resp.length
                    while left:
                        data = await b_reader.readexactly(min(_CHUNK, left))
                        left -= len(data)
                        writer.write(data)
                        await writer.drain()
            else:  # delimited by close
                writer.write(resp_raw)
                while data := await b_reader.read(_CHUNK):
                    writer.write(data)
                    await writer.drain()
                reusable = False
                b_writer.close()
                return status, False, None
        except (asyncio.IncompleteReadError, ConnectionError):
            b_writer.close()
            return status, False, None
        if reusable:
            self._release(port, (b_reader, b_writer))
        else:
            b_writer.close()
        if writer.transport.get_write_buffer_size() > _CHUNK:
            await writer.drain()
        return status, True, None

    async def _tunnel(
        self,
        service: str,
        revision: str,
        port: int | None,
        request: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        start: float,
    ) -> int:
        """Forward an ``Upgrade`` request, then pipe bytes both ways until either side closes; the handshake's status."""
        if port is None:
            writer.write(_response(503, "Service Unavailable", "the revision has no running instance", close=True))
            return 503
        try:
            b_reader, b_writer = await asyncio.open_connection(HOST, port, limit=_MAX_HEAD)
        except OSError:
            writer.write(_response(503, "Service Unavailable", "the revision's instance is not reachable", close=True))
            return 503
        try:
            b_writer.write(request)
            resp_raw = await b_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            b_writer.close()
            writer.write(_response(502, "Bad Gateway", "the revision closed the connection", close=True))
            return 502
        writer.write(resp_raw)
        status: int | None
        try:
            status = int(resp_raw.split(b" ", 2)[1])
        except (IndexError, ValueError):
            status = None  # a malformed answer: the router's 502 is not the instance's (not recorded)
        if self.on_request is not None and status is not None:
            self.on_request(service, revision, status, (time.perf_counter() - start) * 1000.0)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(_CHUNK):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.write_eof() if dst.can_write_eof() else dst.close()

        task = asyncio.current_task()
        if task is not None:
            self._tunnels.add(task)
        try:
            await asyncio.gather(pipe(reader, b_writer), pipe(b_reader, writer))
        finally:
            b_writer.close()
            if task is not None:
                self._tunnels.discard(task)
        return status if status is not None else 502

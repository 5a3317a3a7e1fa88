"""Benchmark of the sandbox router against the sample service reached directly.

Measured in one run, on loopback, with a minimal keep-alive HTTP/1.1 client
(so that client overhead does not hide the router's):

- added latency: sequential ``GET /health``, direct and through the service URL,
  interleaved in blocks; p50 and p99 of each and the difference;
- throughput: ``--concurrency`` connections sending ``--requests`` requests in all;
- ``up``-to-ready and deploy-to-Ready times.

    .venv/bin/python bench/bench_router.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.control import Sandbox  # noqa: E402

REQUEST = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"


def _read_response(sock: socket.socket, buf: bytearray) -> int:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    buf[:] = rest[length:]
    return int(head.split(b" ", 2)[1])


def latencies(port: int, count: int) -> list[float]:
    """``count`` sequential requests on one kept-alive connection; milliseconds each."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(REQUEST)
            assert _read_response(sock, buf) == 200
            out.append((time.perf_counter() - start) * 1000.0)
    return out


async def throughput(port: int, total: int, concurrency: int) -> float:
    """Requests per second with ``concurrency`` kept-alive connections."""
    per_conn = total // concurrency

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per_conn):
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
        writer.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=120)
    return per_conn * concurrency / (time.perf_counter() - start)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="Requests per measurement (bounded).")
    parser.add_argument("--concurrency", type=int, default=16, help="Connections for the throughput run.")
    args = parser.parse_args()
    count = max(100, min(args.requests, 20000))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sb = Sandbox.up(Path(tmp) / "sandbox", seed=1)
        up_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            revision = sb.deploy("bench")
            deploy_s = time.perf_counter() - started
            status = sb.status("bench")["services"][0]
            direct_port = next(r["port"] for r in status["revisions"] if r["name"] == revision)
            router_port = int(status["uri"].rsplit(":", 1)[1])
            latencies(direct_port, 200)  # warm up both paths
            latencies(router_port, 200)
            direct: list[float] = []
            routed: list[float] = []
            block = max(50, count // 10)
            for _ in range(count // block):
                direct += latencies(direct_port, block)
                routed += latencies(router_port, block)
            tput_direct = asyncio.run(throughput(direct_port, count, args.concurrency))
            tput_router = asyncio.run(throughput(router_port, count, args.concurrency))
        finally:
            started = time.perf_counter()
            sb.down()
            down_s = time.perf_counter() - started
    rows = [
        ("p50 latency (ms)", statistics.median(direct), statistics.median(routed)),
        ("p99 latency (ms)", pct(direct, 99), pct(routed, 99)),
        (f"throughput (req/s, {args.concurrency} conns)", tput_direct, tput_router),
    ]
    print(f"{len(direct)} sequential requests per path, {count} for throughput, loopback")
    print(f"{'':34} {'direct':>10} {'router':>10} {'ratio':>8} {'added':>9}")
    for label, d, r in rows:
        print(f"{label:34} {d:10.3f} {r:10.3f} {r / d:8.2f} {r - d:9.3f}")
    print(f"{'up to ready (s)':34} {up_s:10.2f}")
    print(f"{'deploy to Ready (s)':34} {deploy_s:10.2f}")
    print(f"{'down (s)':34} {down_s:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

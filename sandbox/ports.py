"""Loopback port allocation: keep a persisted port when it is free, else take a new one."""

from __future__ import annotations

import socket

__all__ = ["HOST", "pick_port", "port_is_free"]

HOST = "127.0.0.1"


def port_is_free(port: int) -> bool:
    """Whether ``127.0.0.1:port`` can be bound right now."""
    if port <= 0:
        return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int = 0, *, taken: set[int] | frozenset[int] = frozenset()) -> int:
    """``preferred`` when it is free and not in ``taken``, otherwise a fresh free port."""
    if preferred and preferred not in taken and port_is_free(preferred):
        return preferred
    for _ in range(50):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port
    raise OSError("no free loopback port found")

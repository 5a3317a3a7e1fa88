"""Name resolution for the sandbox's Cloud Run-styled URLs: every ``*.run.app`` name is 127.0.0.1.

The sandbox lists ``http://SERVICE-HASH-REGIONCODE.a.run.app:PORT`` and
``http://SERVICE-PROJECTNUMBER.REGION.run.app:PORT`` in ``service.urls`` (and
``TAG---`` in front of either reaches a tag); its router tells them apart by
the ``Host`` header. Those names resolve nowhere, so a process that should use
them loads this module, which answers 127.0.0.1 for them, as an
``/etc/hosts`` entry would, and leaves every other name alone. It is a pytest
plugin too: ``pytest -p sandbox.resolver ...`` (what the selftests do for the
gate's own process). Nothing else changes: the request, its ``Host`` header
and the routing are the real ones.
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["install", "is_sandbox_name"]

_SUFFIX = ".run.app"
_original = socket.getaddrinfo


def is_sandbox_name(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return isinstance(host, str) and host.lower().rstrip(".").endswith(_SUFFIX)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    return _original("127.0.0.1" if is_sandbox_name(host) else host, *args, **kwargs)


def install() -> None:
    """Resolve ``*.run.app`` to 127.0.0.1 in this process (idempotent)."""
    socket.getaddrinfo = _getaddrinfo


install()

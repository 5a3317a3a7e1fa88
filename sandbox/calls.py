"""Call counts and injected faults of the fake Google APIs.

Every RPC the fakes receive is counted under its method name (``UpdateService``,
``GetService``, ``GetOperation``, ...); an ``UpdateService`` with
``validate_only=True`` is counted under ``UpdateService:validate_only`` instead,
so ``calls("UpdateService")`` is the number of real change requests received
(including those answered with an injected error).

``inject(method, code, times, after=0)`` makes the next ``times`` calls of ``method``
(``times=-1``: every call until cleared) fail with the gRPC status ``code``
before doing anything, once ``after`` more calls have been answered normally
(for example ``after=1``: the read a gate makes at session start passes, the
rollback's reads fail).
"""

from __future__ import annotations

import threading
from collections import Counter

import grpc

__all__ = ["VALIDATE_ONLY_SUFFIX", "CallLog"]

VALIDATE_ONLY_SUFFIX = ":validate_only"


class CallLog:
    """Thread-safe counts and fault queue, shared by every fake RPC handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._faults: dict[str, tuple[grpc.StatusCode, int]] = {}
        self._after: dict[str, int] = {}
        self._messages: dict[str, str] = {}

    def record(self, method: str, *, validate_only: bool = False) -> grpc.StatusCode | None:
        """Count a call; the status code to fail it with, if a fault is injected for ``method``."""
        key = method + VALIDATE_ONLY_SUFFIX if validate_only else method
        with self._lock:
            self._counts[key] += 1
            fault = self._faults.get(method)
            if fault is None:
                return None
            if self._after.get(method, 0) > 0:
                self._after[method] -= 1
                return None
            code, times = fault
            if times > 0:
                if times == 1:
                    del self._faults[method]
                else:
                    self._faults[method] = (code, times - 1)
            return code

    def inject(self, method: str, code: str, times: int, message: str = "", *, after: int = 0) -> None:
        """Fail the next ``times`` calls of ``method`` with ``code`` (``-1``: always; ``0``: clear),
        after ``after`` calls answered normally.

        ``message``: the error message to answer (e.g. Cloud Run's own words); default ``injected fault: ...``.
        """
        status = parse_code(code)
        with self._lock:
            if times == 0:
                self._faults.pop(method, None)
                self._messages.pop(method, None)
                self._after.pop(method, None)
            else:
                self._faults[method] = (status, times)
                self._messages[method] = message
                self._after[method] = max(0, int(after))

    def message_of(self, method: str, code: grpc.StatusCode) -> str:
        """The message an injected fault answers with."""
        with self._lock:
            return self._messages.get(method) or f"injected fault: {method} answers {code.name}"

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._messages.clear()
            self._after.clear()
            self._counts.clear()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def parse_code(code: str) -> grpc.StatusCode:
    """``"UNAVAILABLE"`` → ``grpc.StatusCode.UNAVAILABLE``; ``ValueError`` for an unknown name."""
    try:
        status = grpc.StatusCode[code.strip().upper()]
    except KeyError:
        names = ", ".join(c.name for c in grpc.StatusCode if c is not grpc.StatusCode.OK)
        raise ValueError(f"unknown gRPC status code {code!r}; one of: {names}") from None
    if status is grpc.StatusCode.OK:
        raise ValueError("OK is not a fault; use times=0 to clear an injected fault")
    return status

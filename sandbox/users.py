"""Users of a service in the sandbox: requests to its URL from a background thread, bounded in count
and time, each answer recorded with the revision that gave it (the sample service's ``X-Revision``).

The demo, the rollout selftests and the rollout benchmark send their user traffic with it.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Users"]


class Users:
    """``Users(url).start()`` … ``stop()``: ``rate`` requests a second to ``url + path``, at most
    ``limit`` of them and for at most ``seconds``."""

    def __init__(self, url: str, *, path: str = "/api/hints", rate: float = 40.0, limit: int = 6000,
                 seconds: float = 300.0) -> None:
        self.url, self.path, self.rate, self.limit, self.seconds = url, path, rate, limit, seconds
        self.answers: list[tuple[float, str, int]] = []
        """``(epoch seconds, revision that answered, status)``."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="users", daemon=True)

    def start(self) -> Users:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def first_error_of(self, revision: str) -> float | None:
        """When ``revision`` first answered 5xx, or None."""
        return next((at for at, rev, status in list(self.answers) if rev == revision and status >= 500), None)

    def _run(self) -> None:
        import httpx

        deadline = time.monotonic() + self.seconds
        with httpx.Client(timeout=5) as client:
            for _ in range(self.limit):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    answer = client.get(self.url + self.path)
                    self.answers.append((time.time(), answer.headers.get("x-revision", ""), answer.status_code))
                except httpx.HTTPError:
                    pass
                time.sleep(1 / self.rate)

"""The routing table the router reads: which loopback port reaches which revision(s).

The table is immutable; the daemon builds a new one after every change and the
router swaps it in one assignment, so a traffic change applies to the next
request while requests in flight finish where they started.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

__all__ = ["Backend", "ServiceRoute", "TagRoute", "RoutingTable"]


@dataclass(frozen=True)
class Backend:
    """A revision and the port of its process (``None`` when it is not running)."""

    revision: str
    port: int | None


@dataclass(frozen=True)
class ServiceRoute:
    """The service URL: requests split over ``backends`` by percent (``cumulative`` ends at 100)."""

    service: str
    backends: tuple[Backend, ...] = ()
    cumulative: tuple[int, ...] = ()

    def pick(self, rng: random.Random) -> Backend | None:
        if not self.backends:
            return None
        if len(self.backends) == 1:
            return self.backends[0]
        return self.backends[bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]


@dataclass(frozen=True)
class TagRoute:
    """A tag URL: only ever its revision (``backend`` is ``None`` when the tag is gone)."""

    service: str
    tag: str
    backend: Backend | None = None

    def pick(self, rng: random.Random) -> Backend | None:
        return self.backend


@dataclass(frozen=True)
class RoutingTable:
    """Listening port → route, and Cloud Run-styled host name → route (``Host``-based routing)."""

    routes: dict[int, ServiceRoute | TagRoute] = field(default_factory=dict)
    hosts: dict[str, ServiceRoute | TagRoute] = field(default_factory=dict)
    """``SERVICE-HASH-RC.a.run.app``, ``SERVICE-NUMBER.REGION.run.app`` and ``TAG---`` before either."""

    def route(self, port: int, host: str = "") -> ServiceRoute | TagRoute | None:
        """The route of a request: its ``Host`` when it is a styled name, else the port it came in on.

        ``TAG---`` before a known service host with an unknown tag is a tag
        route without a backend (404, as Cloud Run answers an unknown tag).
        """
        if host:
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
            name = name.lower().rstrip(".")
            found = self.hosts.get(name)
            if found is not None:
                return found
            tag, sep, base = name.partition("---")
            if sep and base in self.hosts:
                return TagRoute(self.hosts[base].service, tag, None)
        return self.routes.get(port)

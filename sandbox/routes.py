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
    """Listening port → route."""

    routes: dict[int, ServiceRoute | TagRoute] = field(default_factory=dict)

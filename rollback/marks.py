"""revgate's verdicts kept on the service itself: two ``Service.annotations``.

- ``revgate.dev/failed-revisions``: revisions that failed a gate (or were
  rolled back away from). No rollback or promotion ever sends traffic to one.
  A person marks a revision bad by adding its name (names separated by commas
  or spaces; full resource names are accepted) with the Admin API v2: an
  ``UpdateService`` whose ``update_mask`` is ``annotations``, sending the whole
  map as read (REST: ``PATCH .../services/SERVICE?updateMask=annotations``).
- ``revgate.dev/last-serving``: the split revgate last wrote (``REV=PCT,...``).
  When the revision under test had all the traffic, the rollback gives it back
  to those revisions first: the ones that held traffic before it.

They are written only in the same ``UpdateService`` as the traffic
(``update_mask`` = ``traffic,annotations``), from the map of a fresh
``GetService``: every other annotation is sent back unchanged (the field is a
map, replaced as a whole when the mask names it; service.proto: annotations
"should be preserved when modifying objects").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["FAILED_KEY", "LAST_SERVING_KEY", "Marks", "read_marks", "with_marks"]

FAILED_KEY = "revgate.dev/failed-revisions"
LAST_SERVING_KEY = "revgate.dev/last-serving"
MAX_FAILED = 100
"""The failed list keeps the newest names only, so the annotation stays far below Kubernetes' 256 KiB."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True, kw_only=True)
class Marks:
    failed: tuple[str, ...] = ()
    """Revisions known to be bad (short names), as the annotation lists them."""
    last_serving: dict[str, int] = field(default_factory=dict)
    """The split revgate last wrote; empty when none (or unreadable)."""


def _names(text: str) -> tuple[str, ...]:
    out = []
    for part in re.split(r"[\s,;]+", text or ""):
        name = part.strip().rsplit("/", 1)[-1].lower()
        if name and _NAME.match(name):
            out.append(name)
    return tuple(dict.fromkeys(out))


def _split(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in re.split(r"[\s,;]+", text or ""):
        rev, sep, pct = part.partition("=")
        rev = rev.strip().rsplit("/", 1)[-1].lower()
        if sep and _NAME.match(rev) and pct.strip().isdigit() and 0 < int(pct) <= 100:
            out[rev] = int(pct)
    return out


def read_marks(annotations: Mapping[str, str] | None) -> Marks:
    annotations = annotations or {}
    return Marks(failed=_names(annotations.get(FAILED_KEY, "")), last_serving=_split(annotations.get(LAST_SERVING_KEY, "")))


def with_marks(
    annotations: Mapping[str, str] | None, *, failed: Iterable[str] = (), last_serving: Mapping[str, int] | None = None
) -> dict[str, str]:
    """The whole annotation map to send: every annotation as read, ``failed`` added, ``last_serving`` set."""
    out = dict(annotations or {})
    add = tuple(failed)
    if add:
        names = [n for n in _names(out.get(FAILED_KEY, "")) if n not in add] + list(dict.fromkeys(add))
        out[FAILED_KEY] = ",".join(names[-MAX_FAILED:])
    if last_serving:
        out[LAST_SERVING_KEY] = ",".join(f"{rev}={pct}" for rev, pct in last_serving.items())
    return out

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

They are written with the rollback's traffic (``update_mask`` =
``traffic,annotations``), or, when the rollback sends no traffic (nothing to
shift, someone already acted, no plan), alone: an ``UpdateService`` whose
``update_mask`` is ``annotations``, with the etag read, re-read on a conflict
(:mod:`rollback.marking`). Always from the map of a fresh ``GetService``: every
other annotation is sent back unchanged (the field is a map, replaced as a
whole when the mask names it; service.proto: annotations "should be preserved
when modifying objects").

The failed list keeps every name while it fits :data:`FAILED_BUDGET` (128 KiB:
over 2,000 names of 63 characters, so at least :data:`MIN_KEPT` = 1,000 of
any length), and the whole map within Kubernetes' 256 KiB. When a name must
go, the names of revisions that no longer exist (deleted by hand, or by Cloud
Run past its 1,000 revisions) go first, oldest first; only then the oldest
names of existing revisions.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["FAILED_KEY", "LAST_SERVING_KEY", "Marks", "fit_failed", "read_marks", "with_marks"]

FAILED_KEY = "revgate.dev/failed-revisions"
LAST_SERVING_KEY = "revgate.dev/last-serving"
ANNOTATIONS_LIMIT = 256 * 1024
"""Kubernetes: "The total size of annotations (keys and values) must be 256 KiB or smaller" (service.proto:
``annotations`` follows "Kubernetes annotations' namespacing, limits, and rules")."""
FAILED_BUDGET = 128 * 1024
"""Bytes the failed list may take: half the limit, the rest left to the service's other annotations."""
MIN_KEPT = 1000
"""Names kept at least (1,000 names of 63 characters and a comma are 64,000 bytes, within the budget)."""
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


def _size(annotations: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())


def fit_failed(
    names: list[str], *, keep: Collection[str] = (), existing: Collection[str] | None = None, budget: int = FAILED_BUDGET
) -> list[str]:
    """``names`` (oldest first) cut to fit ``budget`` bytes joined with commas: first the names not in
    ``existing`` (deleted revisions; none when ``existing`` is None), oldest first, then the oldest;
    never a name of ``keep`` (the ones being marked now)."""
    total = max(0, sum(len(n) + 1 for n in names) - 1)
    if total <= budget:
        return list(names)
    dropped: set[int] = set()
    alive = set(existing) if existing is not None else None
    passes = ([i for i, n in enumerate(names) if n not in alive] if alive is not None else []) + list(range(len(names)))
    for i in passes:
        if total <= budget:
            break
        if i in dropped or names[i] in keep:
            continue
        dropped.add(i)
        total -= len(names[i]) + 1
    return [n for i, n in enumerate(names) if i not in dropped]


def with_marks(
    annotations: Mapping[str, str] | None,
    *,
    failed: Iterable[str] = (),
    last_serving: Mapping[str, int] | None = None,
    existing: Collection[str] | None = None,
) -> dict[str, str]:
    """The whole annotation map to send: every annotation as read, ``failed`` added, ``last_serving`` set.

    ``existing``: the service's revisions now, when known: the names of the others go first when the
    list must be cut (see the module docstring)."""
    out = dict(annotations or {})
    if last_serving:
        out[LAST_SERVING_KEY] = ",".join(f"{rev}={pct}" for rev, pct in last_serving.items())
    add = tuple(dict.fromkeys(failed))
    if add:
        names = [n for n in _names(out.get(FAILED_KEY, "")) if n not in add] + list(add)
        others = _size({k: v for k, v in out.items() if k != FAILED_KEY}) + len(FAILED_KEY.encode())
        budget = min(FAILED_BUDGET, ANNOTATIONS_LIMIT - others)
        out[FAILED_KEY] = ",".join(fit_failed(names, keep=add, existing=existing, budget=budget))
    return out

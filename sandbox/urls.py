"""The sandbox's service and tag URLs, in both of Cloud Run's styles.

Cloud Run gives every service a hash-based URL
``https://SERVICE-HASH-REGIONCODE.a.run.app`` and, when the name is short
enough, a deterministic one ``https://SERVICE-PROJECTNUMBER.REGION.run.app``;
a tag is reached at ``TAG---`` in front of the host of either
(docs/cloud-run-fidelity.md). The sandbox serves:

- ``service.uri``: ``http://127.0.0.1:PORT``, the loopback address every client
  reaches without any name resolution (what the demo and most tests use);
- ``service.urls``: that address and both Cloud Run styles on the same port,
  ``http://SERVICE-HASH-REGIONCODE.a.run.app:PORT`` and
  ``http://SERVICE-PROJECTNUMBER.REGION.run.app:PORT``; the router picks the
  service or the tag by the ``Host`` header (``TAG---`` prefix included);
- ``traffic_statuses[].uri``: one loopback port per tag, as before.

The styled names do not resolve by themselves: a client sends them to
127.0.0.1 (``Host`` header), or loads :mod:`sandbox.resolver`, which answers
127.0.0.1 for every ``*.run.app`` name, as an ``/etc/hosts`` entry would.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["TAG_SEPARATOR", "deterministic_host", "hash_host", "project_number", "region_code", "styled_hosts"]

TAG_SEPARATOR = "---"


def region_code(region: str) -> str:
    """``europe-west1`` -> ``ew``, ``us-central1`` -> ``uc``: the initials of the region's words."""
    return "".join(word[0] for word in re.sub(r"\d+", "", region).split("-") if word)


def project_number(project: str) -> str:
    """A stable 12-digit project number for a project id (Cloud Run uses the real one)."""
    return str(10**11 + int(hashlib.sha256(project.encode()).hexdigest()[:16], 16) % (9 * 10**11))


def _hash(project: str, service: str) -> str:
    digest = int(hashlib.sha256(f"{project}/{service}".encode()).hexdigest(), 16)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    out = ""
    for _ in range(10):
        digest, rest = divmod(digest, len(alphabet))
        out += alphabet[rest]
    return out


def hash_host(project: str, region: str, service: str) -> str:
    """``SERVICE-HASH-REGIONCODE.a.run.app``."""
    return f"{service}-{_hash(project, service)}-{region_code(region)}.a.run.app"


def deterministic_host(project: str, region: str, service: str) -> str:
    """``SERVICE-PROJECTNUMBER.REGION.run.app``."""
    return f"{service}-{project_number(project)}.{region}.run.app"


def styled_hosts(project: str, region: str, service: str) -> list[str]:
    """Both Cloud Run host names of the service: hash style, then deterministic style."""
    return [hash_host(project, region, service), deterministic_host(project, region, service)]

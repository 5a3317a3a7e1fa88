"""Container image references, and what "the revision runs this image" can mean on Cloud Run.

A reference is ``[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]``
(https://github.com/distribution/reference: the grammar Docker and Artifact Registry use).

What the Admin API tells, and what it does not promise: a v2 ``Revision`` has no image-digest
field (google/cloud/run/v2/revision.proto; ``ContainerStatus.image_digest``, which "holds the
digest value regardless of whether a tag or digest was originally specified", exists only on an
``Instance``, instance.proto, and the v1 API's ``RevisionStatus.imageDigest``). Cloud Run resolves
a tag to a digest at deploy ("If you deploy from a container image tag, it will be resolved to a
digest", https://cloud.google.com/artifact-registry/docs/integrate-cloud-run), but no proto comment
promises that ``Revision.containers[].image`` is rewritten to that digest. So both shapes are handled:

- the revision's image by digest (``REPO@sha256:...``): an expected digest is compared with it (the
  content; a registry reachable under two host names still compares equal); an expected tag
  (``REPO:TAG``, ``REPO`` meaning ``:latest``) needs the repository to match, and the tag is checked
  where the Admin API keeps it: the service's template, when it describes the revision under test
  (the latest deploy). For an older revision the tag it was deployed from is not recorded anywhere
  the API answers: that check is NOT VERIFIED (give the digest with ``--expect-image
  REPO@sha256:...`` to compare it);
- the revision's image by tag (the API kept what the deploy named): an expected tag is compared with
  it; an expected digest cannot be, and is NOT VERIFIED (never a FAIL: that would roll back every
  tag-based deploy).

A tag is mutable: what the tag points to *now* is not asked of the registry; only the deploy's own
resolution is trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ImageRef", "parse_image"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def by_digest(self) -> bool:
        return self.digest is not None

    def tagged(self) -> str:
        """``REPO:TAG`` (``:latest`` when the reference names no tag)."""
        return f"{self.repository}:{self.tag or 'latest'}"


def parse_image(text: str) -> ImageRef:
    """ValueError (one line) for something that is not an image reference."""
    if not isinstance(text, str) or not text or text != text.strip() or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} is not a container image reference like REPO:TAG or REPO@sha256:DIGEST")
    name, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"{text!r}: the digest must be sha256: and 64 lowercase hex digits")
    head, slash, last = name.rpartition("/")
    tag = None
    if ":" in last:
        last, tag = last.split(":", 1)
        if not _TAG.match(tag):
            raise ValueError(f"{text!r}: {tag!r} is not an image tag")
    parts = (head.split("/") if slash else []) + [last]
    host = parts[0] if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost") else None
    path = parts[1:] if host else parts
    if (host and not _HOST.match(host)) or not path or not all(_COMPONENT.match(p) for p in path):
        raise ValueError(f"{text!r} is not a container image reference like REPO:TAG or REPO@sha256:DIGEST")
    return ImageRef(repository="/".join(parts), tag=tag, digest=digest or None)

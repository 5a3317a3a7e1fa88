"""The revision under test, as seen by the checks: its URL, its auth, one HTTP client.

:meth:`Target.request` never raises for what a target does (refuse, hang,
redirect, answer 10 MB of garbage): it returns a :class:`Probe` that a check
judges, and whose :meth:`Probe.describe` is the failure message a user reads
(method, URL, status, elapsed, body excerpt), never a header or a token.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .settings import Secret, Settings

__all__ = ["MAX_BODY_BYTES", "Probe", "Target"]

MAX_BODY_BYTES = 1024 * 1024
"""A body larger than this is not read further: the probe records it as too large."""


@dataclass
class Probe:
    """One request and what came back (or why nothing did)."""

    method: str
    url: str
    auth: str
    """How the request was authenticated, as the message says it: 'with token', 'no token' ..."""
    status: int | None = None
    elapsed: float = 0.0
    body: bytes = b""
    content_type: str = ""
    location: str = ""
    too_large: bool = False
    error: str = ""
    """Set when no HTTP answer came: 'cannot connect to URL (...)', 'no answer within ...'."""

    @property
    def answered(self) -> bool:
        return self.status is not None and not self.too_large

    def json(self) -> tuple[Any, str]:
        """(value, '') or (None, why it is not JSON)."""
        try:
            return json.loads(self.body), ""
        except (ValueError, UnicodeDecodeError) as exc:
            kind = self.content_type or "no content type"
            return None, f"the body is not JSON ({kind}: {exc})"

    def excerpt(self, limit: int = 200) -> str:
        text = self.body[:limit].decode("utf-8", errors="replace")
        return repr(text) + ("..." if len(self.body) > limit else "")

    def describe(self, expected: str = "") -> str:
        """The failure message: what was sent, what was ``expected``, what came back."""
        head = f"{self.method} {self.url} ({self.auth})"
        if self.error:
            return f"{head}: {self.error}"
        want = f"expected {expected}, " if expected else ""
        if self.too_large:
            return f"{head}: {want}answered {self.status} with a body over {MAX_BODY_BYTES // 1024} KiB after {self.elapsed:.3f} s"
        where = f", Location: {self.location} (revgate does not follow redirects)" if self.location else ""
        return f"{head}: {want}answered {self.status} after {self.elapsed:.3f} s{where}; body: {self.excerpt()}"


class Target:
    """The revision under test. Session-scoped: one HTTP client for every check."""

    def __init__(self, *, settings: Settings) -> None:
        self.base_url = settings.revision_url
        self.timeout = settings.request_timeout
        self._token: Secret | None = settings.token
        self._id_token: Secret | None = settings.id_token
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"Target({self.base_url!r}, token={'***' if self._token else None})"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def url(self, path: str) -> str:
        return self.base_url + path

    def ws_url(self, path: str) -> str:
        return "ws" + self.base_url.removeprefix("http") + path

    def headers(self, *, auth: bool) -> dict[str, str]:
        """Headers for a request; ``auth`` adds the API bearer token."""
        headers: dict[str, str] = {}
        if self._id_token is not None:
            headers["X-Serverless-Authorization"] = f"Bearer {self._id_token.reveal()}"
        if auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return headers

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout,
                follow_redirects=False,
                headers={"User-Agent": "revgate"},
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request(self, method: str, path: str, *, auth: bool, body: Any = None, bearer: str | None = None) -> Probe:
        """One request; ``auth`` sends the API token, ``bearer`` sends that (non-secret) value instead."""
        url = self.url(path)
        headers = self.headers(auth=auth)
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
            label = "invalid token"
        else:
            label = "with token" if "Authorization" in headers else "no token"
        probe = Probe(method=method, url=url, auth=label)
        started = time.perf_counter()
        # The whole exchange (connect + every read) shares one deadline, so a
        # server that trickles bytes cannot stretch a check past its timeout.
        deadline = started + self.timeout
        try:
            with self.client.stream(method, url, headers=headers, json=body) as response:
                probe.status = response.status_code
                probe.content_type = response.headers.get("content-type", "")
                probe.location = response.headers.get("location", "") if response.is_redirect else ""
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        probe.too_large = True
                        break
                    if time.perf_counter() > deadline:
                        raise httpx.ReadTimeout("body not complete within the timeout")
                probe.body = b"".join(chunks)[:MAX_BODY_BYTES]
        except httpx.ConnectTimeout:
            probe.error = f"cannot connect to {url} within {self.timeout:g} s (connect timeout)"
        except httpx.ConnectError as exc:
            probe.error = f"cannot connect to {url} ({_reason(exc)})"
        except httpx.TimeoutException:
            probe.status = None
            probe.error = f"no complete answer within {self.timeout:g} s (timeout; raise --request-timeout if the revision is just slow)"
        except httpx.RemoteProtocolError as exc:
            probe.status = None
            probe.error = f"the server broke the HTTP exchange ({_reason(exc)})"
        except httpx.HTTPError as exc:
            probe.status = None
            probe.error = f"request failed: {type(exc).__name__} ({_reason(exc)})"
        probe.elapsed = time.perf_counter() - started
        return probe


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]

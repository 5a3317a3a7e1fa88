"""The revision under test, as seen by the checks: its URL, its auth, one HTTP client.

:meth:`Target.request` never raises for what a target does (refuse, hang,
redirect, answer 10 MB of garbage): it returns a :class:`Probe` that a check
judges, and whose :meth:`Probe.describe` is the failure message a user reads
(method, URL, status, elapsed, body excerpt), never a header or a token.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .credentials import USER_ENV, Secret, basic_forms, basic_pair
from .settings import Settings

__all__ = ["MAX_BODY_BYTES", "USER_ENV", "Probe", "Target", "basic_forms", "basic_pair"]

SENT: list[tuple[float, int | None]] = []
"""``(epoch seconds, status or None)`` of every request the gate sent in this process: a rollout's
soak takes them out of the revision's Cloud Monitoring counts, which cannot tell them from users'."""

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
    response_headers: dict[str, str] = field(default_factory=dict)
    """Lower-case names."""
    redirects: list[str] = field(default_factory=list)
    """URLs followed (``follow_redirects``)."""
    final_url: str = ""

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
        if self.redirects:
            head += f" -> {' -> '.join(self.redirects)}"
        if self.error:
            return f"{head}: {self.error}"
        want = f"expected {expected}, " if expected else ""
        if self.too_large:
            return f"{head}: {want}answered {self.status} with a body over {MAX_BODY_BYTES // 1024} KiB after {self.elapsed:.3f} s"
        where = f", Location: {self.location} (not followed: set follow_redirects = true to follow it)" if self.location else ""
        return f"{head}: {want}answered {self.status} after {self.elapsed:.3f} s{where}; body: {self.excerpt()}"


class _NoCookies(CookieJar):
    """A cookie jar that keeps nothing: checks do not share cookies unless an entry asks for a session."""

    def set_cookie(self, cookie: Cookie) -> None:  # noqa: D102
        return

    def extract_cookies(self, response: Any, request: Any) -> None:  # noqa: D102
        return


REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10


class Target:
    """The revision under test. Session-scoped: one HTTP client for every check.

    Cookies: the shared client keeps none, so a check never rides on a cookie an
    earlier check received (a token-auth app sets a session cookie, and a "no token"
    probe would then be authenticated by it); entries with ``session = true`` share
    a second client that keeps them. Probes that must be refused get a client of their own.
    """

    def __init__(self, *, settings: Settings) -> None:
        self.base_url = settings.revision_url
        self.origin = _origin(self.base_url)
        self.timeout = settings.request_timeout
        defaults = settings.checklist.defaults
        self.auth_header = defaults.auth_header
        self.auth_scheme = defaults.auth_scheme
        self._token: Secret | None = settings.token
        self._user: str | None = os.environ.get(USER_ENV) or None
        """``auth_scheme = "Basic"``: the user name; the token is the password."""
        self._id_token: Secret | None = settings.id_token
        self._client: httpx.Client | None = None
        self._session_client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"Target({self.base_url!r}, token={'***' if self._token else None})"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def url(self, path: str) -> str:
        return self.base_url + path

    def ws_url(self, path: str) -> str:
        return "ws" + self.base_url.removeprefix("http") + path

    def auth_of(self, check: Any = None) -> tuple[str, str]:
        """(header, scheme) a check sends the token with: its own, else ``[defaults]``."""
        header = getattr(check, "auth_header", None) or self.auth_header
        scheme = getattr(check, "auth_scheme", None)
        return header, self.auth_scheme if scheme is None else scheme

    def headers(self, *, auth: bool, check: Any = None, token: str | None = None) -> dict[str, str]:
        """Headers for a request; ``auth`` adds the API token (``token``: that non-secret value instead)."""
        headers: dict[str, str] = {}
        if self._id_token is not None:
            headers["X-Serverless-Authorization"] = f"Bearer {self._id_token.reveal()}"
        value = token if token is not None else (self._token.reveal() if auth and self._token is not None else None)
        if value is not None:
            name, scheme = self.auth_of(check)
            if scheme.lower() == "basic":
                # a refusal probe's wrong token goes as well-formed credentials: the app's check refuses it, not its parser
                pair = basic_pair(value, self._user) if token is None else f"{self._user or 'revgate'}:{value}"
                value = base64.b64encode(pair.encode("utf-8")).decode("ascii") if pair is not None else value
            headers[name] = f"{scheme} {value}" if scheme else value
        return headers

    def secret_header_names(self, check: Any = None) -> set[str]:
        """Lower-case names of the headers that carry a secret (dropped on a redirect to another origin)."""
        return {self.auth_of(check)[0].lower(), "x-serverless-authorization"}

    def _new_client(self, *, cookies: bool) -> httpx.Client:
        return httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": "revgate"},
            cookies=None if cookies else _NoCookies(),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        )

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = self._new_client(cookies=False)
        return self._client

    @property
    def session_client(self) -> httpx.Client:
        if self._session_client is None:
            self._session_client = self._new_client(cookies=True)
        return self._session_client

    def close(self) -> None:
        for client in (self._client, self._session_client):
            if client is not None:
                client.close()
        self._client = self._session_client = None

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool,
        body: Any = None,
        bearer: str | None = None,
        check: Any = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = False,
        session: bool = False,
        fresh: bool = False,
    ) -> Probe:
        """One request (and its redirects, with ``follow_redirects``).

        ``auth`` sends the API token, ``bearer`` sends that (non-secret) value instead; ``check``
        gives the auth header and scheme; ``session`` keeps cookies across session checks;
        ``fresh`` uses a new client (no cookie, no connection from earlier requests)."""
        url = self.url(path)
        sent = {**(headers or {}), **self.headers(auth=auth, check=check, token=bearer)}
        # header values as Latin-1 bytes (RFC 9110 obs-text; httpx would encode a str as ASCII)
        sent = {k: v.encode("latin-1") if isinstance(v, str) else v for k, v in sent.items()}
        if bearer is not None:
            label = "invalid token"
        else:
            label = "with token" if auth and self._token is not None else "no token"
        probe = Probe(method=method, url=url, auth=label)
        started = time.perf_counter()
        # The whole exchange (connect + every read, every redirect) shares one deadline, so a
        # server that trickles bytes cannot stretch a check past its timeout.
        deadline = started + self.timeout
        client = self._new_client(cookies=False) if fresh else (self.session_client if session else self.client)
        secret_names = self.secret_header_names(check)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self._once(client, probe, method, url, sent, body, deadline)
                if not (follow_redirects and probe.status in REDIRECTS and probe.location):
                    break
                next_url = urljoin(url, probe.location)
                probe.redirects.append(next_url)
                if _origin(next_url) != _origin(url):
                    # a secret never leaves the origin it was meant for
                    sent = {k: v for k, v in sent.items() if k.lower() not in secret_names}
                if probe.status == 303 or (probe.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                url = next_url
            else:
                probe.error = f"more than {MAX_REDIRECTS} redirects (last: {url})"
        finally:
            if fresh:
                client.close()
        probe.elapsed = time.perf_counter() - started
        SENT.append((time.time(), probe.status))
        return probe

    def _once(
        self, client: httpx.Client, probe: Probe, method: str, url: str, headers: dict[str, str], body: Any, deadline: float
    ) -> None:
        probe.final_url = url
        probe.status, probe.body, probe.location, probe.too_large = None, b"", "", False
        try:
            with client.stream(method, url, headers=headers, json=body) as response:
                probe.status = response.status_code
                probe.content_type = response.headers.get("content-type", "")
                probe.response_headers = {k.lower(): v for k, v in response.headers.items()}
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
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol):
            raise  # the gate's own request could not be formed: NOT VERIFIED (revgate.plugin), never the revision's
        except httpx.HTTPError as exc:
            probe.status = None
            probe.error = f"request failed: {type(exc).__name__} ({_reason(exc)})"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port or default
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]

"""Credentials as revgate holds and hides them: :class:`Secret` (masked wherever it might be
printed), the forms of a secret a report might show (:func:`secret_forms`), and HTTP Basic auth's
``user:password`` pair (:func:`basic_pair`, :func:`basic_forms`).

A module of its own, importing nothing of revgate's, so that the settings, the HTTP target and the
ID tokens all use it without importing one another.
"""

from __future__ import annotations

import base64

__all__ = ["MIN_SECRET_LENGTH", "USER_ENV", "Secret", "basic_forms", "basic_pair", "secret_forms"]

MIN_SECRET_LENGTH = 8
"""Shorter secrets are refused: every report is scrubbed of the secret's text, and scrubbing
a few characters would replace them wherever they occur (URLs, numbers, words) with ``***``."""


def secret_forms(value: str) -> list[str]:
    """``value``, its URL-encoded forms and the parts of its base64 encodings that do not depend on
    the bytes around it (only those at least :data:`MIN_SECRET_LENGTH` long)."""
    from urllib.parse import quote, quote_plus

    raw = value.encode("utf-8")
    forms = [value, quote(value, safe=""), quote_plus(value, safe=""), quote(value)]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        start = {0: 0, 1: 2, 2: 3}[shift]  # characters that mix bits of the bytes before
        end = len(encoded) if (shift + len(raw)) % 3 == 0 else len(encoded) - 4  # and of the bytes after
        core = encoded[start:end]
        forms += [core, core.replace("+", "-").replace("/", "_")]
    return [f for f in dict.fromkeys(forms) if len(f) >= MIN_SECRET_LENGTH]



class Secret:
    """A secret string: masked wherever it might be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


USER_ENV = "REVGATE_AUTH_USER"
"""With ``auth_scheme = "Basic"``: the user name, the token being the password."""


def basic_pair(token: str, user: str | None) -> str | None:
    """The ``user:password`` that HTTP Basic auth encodes: ``REVGATE_AUTH_USER`` and the token as the
    password, or a token that is itself ``user:password`` (a token file); None for a token given
    already encoded (base64 of ``user:password``), which is sent as it is."""
    if user:
        return f"{user}:{token}"
    return token if ":" in token else None


def basic_forms(token: str, user: str | None) -> list[str]:
    """What a report might show of Basic credentials, beside the token's own forms: the decoded
    ``user:password`` (and its URL-encoded forms), and the whole base64 value the header carries."""
    from urllib.parse import quote, quote_plus

    pair = basic_pair(token, user)
    if pair is None:  # given encoded: the decoded pair is a secret too
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return []
        if ":" not in decoded:
            return []
        pair = decoded
    encoded = base64.b64encode(pair.encode("utf-8")).decode("ascii")
    forms = [pair, quote(pair, safe=""), quote_plus(pair, safe=""), quote(pair), encoded, encoded.rstrip("=")]
    forms += [encoded.replace("+", "-").replace("/", "_")]
    _, _, password = pair.partition(":")
    if password and password != token:
        forms.append(password)
    return forms

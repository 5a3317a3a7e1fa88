"""Durations as a person writes them: ``30s``, ``10m``, ``1h`` (decimals allowed: ``1.5m``).

One parser for the rollout's options and checklist keys (``--soak 10m``, ``probe_interval = "10s"``),
so that a bad value gets the same one-line message wherever it is written.
"""

from __future__ import annotations

import math
import re

__all__ = ["describe_duration", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*$")
_SCALE = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: object, *, what: str, minimum: float = 0.0, maximum: float = 24 * 3600) -> float:
    """Seconds; ValueError with a message naming ``what``, the value and the form to write."""
    match = _DURATION.match(str(text)) if isinstance(text, str) else None
    seconds = float(match.group(1)) * _SCALE[match.group(2)] if match else math.nan
    if not (minimum <= seconds <= maximum):  # also refuses nan
        if match:
            raise ValueError(
                f"{what} {text!r} is out of range: give {describe_duration(minimum)} to {describe_duration(maximum)}"
            )
        raise ValueError(f"{what} {text!r} is not a duration: write it as 30s, 10m or 1h")
    return seconds


def describe_duration(seconds: float) -> str:
    """``90`` -> ``1m30s``, ``600`` -> ``10m``, ``2.5`` -> ``2.5s``."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"

"""revgate's exceptions.

    RevgateError                 base of everything revgate raises on purpose
    ├── ChecklistError           the checklist file is missing, not TOML, or not valid
    └── ConfigError              an option, URL, token file or credential is wrong

Both subclasses surface as pytest usage errors (exit code 4): one line naming
what is wrong and what to do, no traceback, nothing changed.
"""

from __future__ import annotations

__all__ = ["RevgateError", "ChecklistError", "ConfigError"]


class RevgateError(Exception):
    """Base class of revgate's own errors."""


class ChecklistError(RevgateError):
    """The checklist cannot be used: the message names the file, the key and what was expected.

    ``problems`` holds every problem found, one line each (the message says the first)."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


class ConfigError(RevgateError):
    """A command-line option, environment variable or file given to revgate is wrong."""

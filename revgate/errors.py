"""revgate's exceptions.

    RevgateError                 base of everything revgate raises on purpose
    ├── ChecklistError           the checklist file is missing, not TOML, or not valid
    └── ConfigError              an option, URL, token file or credential is wrong

    NotVerified                  a check could not verify (no data, an API or a browser
                                 that cannot be used): raised by :func:`not_verified`

Both subclasses of RevgateError surface as pytest usage errors (exit code 4): one line naming
what is wrong and what to do, no traceback, nothing changed.

NotVerified is the gate's own failure to check, never the revision's: the check is
reported as skipped with the reason, it never triggers a rollback, and the run's
verdict is NOT VERIFIED (exit :data:`NOT_VERIFIED_EXIT`) unless a gating check failed.
"""

from __future__ import annotations

from _pytest.outcomes import Skipped

__all__ = ["NOT_VERIFIED_EXIT", "RevgateError", "ChecklistError", "ConfigError", "NotVerified", "not_verified"]

NOT_VERIFIED_EXIT = 6
"""The exit code of a NOT VERIFIED run: the first code pytest does not use (0-5), below the
ranges shells and tools give other meanings (64-78 sysexits, 124-127 timeout/exec, 128+N signals)."""


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


class NotVerified(Skipped):
    """The gate could not check: a skip (so never a failure, never a rollback) that the plugin
    classifies as "not verified". A ``BaseException``, as pytest's own skip is, so that a check's
    ``except Exception`` does not turn it into a failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(msg=f"NOT VERIFIED: {reason}", allow_module_level=False)
        self.reason = reason


def not_verified(reason: str) -> None:
    """Stop the current check as NOT VERIFIED (the gate could not check; the revision is not judged)."""
    raise NotVerified(reason)

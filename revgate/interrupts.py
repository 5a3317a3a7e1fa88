"""SIGTERM and SIGINT during a run: the checks stop once, the rollback and the reports finish.

A CI runner sends SIGTERM, then SIGKILL some seconds later. :func:`install_signal_handlers`
turns the first signal into pytest's KeyboardInterrupt (the checks stop), never the rollback;
the session then finishes within :func:`interrupt_grace`. :func:`interrupted_by` tells the
plugins that finish the session (the rollback, the notifications) that it was interrupted.
"""

from __future__ import annotations

from typing import Any

import pytest

from .errors import RevgateError

__all__ = [
    "Finishing",
    "GRACE_ENV",
    "SignalExit",
    "INTERRUPT_GRACE",
    "grace_left",
    "install_signal_handlers",
    "interrupt_grace",
    "interrupted_by",
    "wait_honouring_signals",
]

INTERRUPT_GRACE = 25.0
"""Seconds a rollback already started may still take after SIGTERM or SIGINT (CI runners send
SIGKILL some seconds after SIGTERM; a rollback normally completes in well under a second).
``REVGATE_INTERRUPT_GRACE`` (0.1-600 s) sets another bound."""
GRACE_ENV = "REVGATE_INTERRUPT_GRACE"


def interrupt_grace() -> float:
    """The grace period: ``REVGATE_INTERRUPT_GRACE`` when set (checked at session start), else the default."""
    import math
    import os

    raw = os.environ.get(GRACE_ENV)
    if not raw:
        return INTERRUPT_GRACE
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0.1 <= value <= 600):  # also refuses nan and inf
        raise RevgateError(f"{GRACE_ENV} {raw!r}: give the seconds a rollback may still take after a signal, 0.1 to 600")
    return value
interrupt_key = pytest.StashKey[dict[str, Any]]()


def interrupted_by(config: pytest.Config) -> str | None:
    """``SIGTERM`` or ``SIGINT`` when the run was stopped by a signal, else None."""
    state = config.stash.get(interrupt_key, None)
    return state["signal"] if state and state["signal"] else None


def install_signal_handlers(config: pytest.Config) -> None:
    """SIGTERM and SIGINT stop the checks once (a KeyboardInterrupt in the main thread, as pytest
    expects), never the rollback: the session then finishes (the rollback thread joined within
    :data:`INTERRUPT_GRACE`, the record and the summary written). A second signal, or one that
    arrives while the session is finishing, only says so."""
    import signal
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    import time

    if interrupt_key in config.stash:
        return
    state: dict[str, Any] = {"signal": None, "finishing": False, "count": 0, "at": None}
    config.stash[interrupt_key] = state

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        state["count"] += 1
        first = state["signal"] is None
        if first:
            state["signal"], state["at"] = name, time.monotonic()
            if not state["finishing"]:
                raise KeyboardInterrupt(f"{name}: stopping the checks")
        try:
            grace = interrupt_grace()
        except RevgateError:
            grace = INTERRUPT_GRACE
        left = max(grace - (time.monotonic() - state["at"]), 0.0)
        word = f"{name} after the checks" if first else f"{name} again"
        try:
            sys.stderr.write(f"revgate: {word}: finishing the rollback and the reports first (at most {left:.0f} s more)\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError):  # pragma: no cover - not the main thread, or no such signal
            pass


def wait_honouring_signals(config: pytest.Config, thread: Any, timeout: float) -> str | None:
    """Join ``thread`` for up to ``timeout`` seconds, but once a signal has come, only within the
    grace period counted from it; the signal's name when one came (the caller then finishes as an
    interrupted run), else None."""
    import time

    state = config.stash.get(interrupt_key, None)
    end = time.monotonic() + timeout
    while thread is not None and thread.is_alive():
        now = time.monotonic()
        if state is not None and state["signal"]:
            return str(state["signal"])
        if now >= end:
            break
        thread.join(min(0.1, end - now))
    return str(state["signal"]) if state is not None and state["signal"] else None


def grace_left(config: pytest.Config) -> float:
    """Seconds of the grace period left since the signal (the whole grace period when none came)."""
    import time

    state = config.stash.get(interrupt_key, None)
    try:
        grace = interrupt_grace()
    except RevgateError:
        grace = INTERRUPT_GRACE
    if state is None or state.get("at") is None:
        return grace
    return max(grace - (time.monotonic() - state["at"]), 0.0)


class SignalExit:
    """Registered at configure: a run a signal stopped exits 2 (interrupted), whatever the checks said
    before it (after a gating failure too: the rollback has then finished, or its record names it)."""

    @staticmethod
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Any:
        result = yield
        if interrupted_by(session.config) and session.exitstatus != pytest.ExitCode.USAGE_ERROR:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        return result


class Finishing:
    """Registered at configure: marks the session as finishing before any other sessionfinish hook."""

    @staticmethod
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
        state = session.config.stash.get(interrupt_key, None)
        if state is not None:
            state["finishing"] = True

"""Which Chromium the frontend checks launch, with which flags, and what it can record.

The browser is chosen in this order:

1. ``CHROMIUM_EXECUTABLE``: an explicit executable (a system or a pinned build);
2. Playwright's own build of the Chromium revision the installed Playwright
   drives, where Playwright itself looks for it (``PLAYWRIGHT_BROWSERS_PATH``,
   else its cache folder): for a headless run the headless shell
   (``playwright install --only-shell``, or ``playwright install chromium``),
   else the full build; a headless run takes the full build when the shell is
   missing (``playwright install --no-shell``);
3. a system Chromium on ``PATH`` (``chromium``, ``chromium-browser``);
4. otherwise Playwright launches as usual and says to run ``playwright install``
   (:func:`launch_error_line` turns that into one line).

Where the build lives (``chromium-REV/chrome-linux64/chrome`` and
``chromium_headless_shell-REV/chrome-headless-shell-linux64/chrome-headless-shell``
for Playwright 1.5x; ``chrome-linux/chrome`` and ``chrome-linux/headless_shell``
before) is read from Playwright's own ``browsers.json`` (the revision) and the
folder's contents, so the choice is made before any Playwright process starts.

Every Chromium gets ``--disable-features=LocalNetworkAccessChecks``: a response
the secret route (:mod:`revgate.pages_visit`) hands to the browser has
no remote address, so Chromium would count the page as public and block its
requests to loopback or private addresses, which the same page loaded straight
from the revision may make (a false failure, seen against loopback revisions).

A system Chromium is a full desktop browser: it gets flags that keep it from
talking to Google while it checks a page (sync, component updates, background
networking, QUIC) and ``--no-sandbox`` when running as root, where Chromium
refuses to start otherwise.

Video recording needs Playwright's own ffmpeg, which only ``playwright install``
provides: :func:`ffmpeg_path` finds it, so that ``--video`` without it is said
in one line instead of failing every test.

Nothing here imports Playwright: the choice is made from paths and the
environment, so a run without frontend checks does not pay for it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CHROMIUM_ENV",
    "CHROMIUM_FLAGS",
    "SYSTEM_CHROMIUM_FLAGS",
    "SYSTEM_CHROMIUM_NAMES",
    "BrowserChoice",
    "browsers_path",
    "choose_chromium",
    "chromium_revision",
    "playwright_build",
    "ffmpeg_path",
    "launch_error_line",
    "system_chromium_flags",
]

CHROMIUM_ENV = "CHROMIUM_EXECUTABLE"
SYSTEM_CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = ("--disable-features=LocalNetworkAccessChecks",)
SYSTEM_CHROMIUM_FLAGS = (
    "--disable-sync",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
INSTALL_HINT = (
    "run `python -m playwright install chromium`, install a system Chromium (chromium on PATH), "
    f"or set {CHROMIUM_ENV}=/path/to/chromium"
)


@dataclass(frozen=True)
class BrowserChoice:
    """The Chromium to launch: where it comes from, its executable, its extra flags."""

    source: str
    """'CHROMIUM_EXECUTABLE', 'playwright', 'system' or 'none' (Playwright's default, not installed)."""
    executable: str | None = None
    args: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if self.source == "playwright":
            return f"Playwright's Chromium ({self.executable})" if self.executable else "Playwright's Chromium"
        if self.executable:
            return f"{self.executable} (from {self.source})"
        return "Playwright's Chromium (not installed)"

    def apply(self, launch_args: Mapping[str, Any]) -> dict[str, Any]:
        """``launch_args`` with this executable and flags added (flags given by the user are kept)."""
        merged = dict(launch_args)
        if self.executable:
            merged["executable_path"] = self.executable
        if self.args:
            existing = list(merged.get("args") or [])
            merged["args"] = existing + [a for a in self.args if a not in existing]
        return merged


def empty_output_dir(config: Any) -> None:
    """Empty pytest-playwright's ``--output`` folder: once per run, by the controller."""
    output = config.getoption("--output", None)
    if output and os.path.isdir(output):
        shutil.rmtree(output, ignore_errors=True)


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def system_chromium_flags(*, root: bool | None = None) -> tuple[str, ...]:
    """The flags a system Chromium gets; ``--no-sandbox`` only as root (Chromium refuses to start otherwise)."""
    as_root = _is_root() if root is None else root
    return CHROMIUM_FLAGS + SYSTEM_CHROMIUM_FLAGS + (("--no-sandbox",) if as_root else ())


def browsers_path(env: Mapping[str, str] | None = None) -> Path:
    """Where ``playwright install`` puts browsers (and ffmpeg): ``PLAYWRIGHT_BROWSERS_PATH`` or the default."""
    env = os.environ if env is None else env
    configured = env.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured == "0":
        import importlib.util

        spec = importlib.util.find_spec("playwright")
        base = Path(spec.origin).parent if spec and spec.origin else Path(".")
        return base / "driver" / "package" / ".local-browsers"
    if configured:
        return Path(configured).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "ms-playwright"
    if sys.platform == "win32":
        return Path(env.get("LOCALAPPDATA", home / "AppData" / "Local")) / "ms-playwright"
    return Path(env.get("XDG_CACHE_HOME", home / ".cache")) / "ms-playwright"


FULL_NAMES = ("chrome", "chrome.exe", "Chromium", "Google Chrome for Testing")
SHELL_NAMES = ("chrome-headless-shell", "headless_shell", "chrome-headless-shell.exe", "headless_shell.exe")


def chromium_revision() -> str | None:
    """The Chromium revision the installed Playwright drives (its ``browsers.json``), or None."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("playwright")
    if spec is None or not spec.origin:
        return None
    try:
        data = json.loads((Path(spec.origin).parent / "driver" / "package" / "browsers.json").read_text())
    except (OSError, ValueError):
        return None
    revisions = {b.get("name"): b.get("revision") for b in data.get("browsers", []) if isinstance(b, dict)}
    return revisions.get("chromium-headless-shell") or revisions.get("chromium")


def _executable_in(folder: Path, names: tuple[str, ...]) -> Path | None:
    """``folder/*/NAME`` (or deeper, for a macOS app bundle), an executable file; None when absent."""
    try:
        candidates = [p for name in names for p in sorted(folder.glob(f"*/{name}"))]
        candidates += [p for name in names[2:3] for p in sorted(folder.glob(f"*/*.app/Contents/MacOS/{name}"))]
    except OSError:
        return None
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


def playwright_build(
    *, playwright_executable: str | None = None, headless: bool = True, env: Mapping[str, str] | None = None
) -> Path | None:
    """The executable of Playwright's own Chromium a launch would use (see the module docstring), or None.

    ``playwright_executable`` is ``browser_type.executable_path`` when a Playwright is running (it
    names the folder and revision Playwright uses); without it they are found from ``browsers.json``.
    """
    if playwright_executable:
        full_path = Path(playwright_executable)
        base, revision = None, None
        for parent in full_path.parents:
            if parent.name.startswith("chromium-"):
                base, revision = parent.parent, parent.name.removeprefix("chromium-")
                break
    else:
        full_path, base, revision = None, browsers_path(env), chromium_revision()
    if base is None or revision is None:
        return full_path if full_path is not None and full_path.is_file() else None
    full = full_path if full_path is not None and full_path.is_file() else _executable_in(base / f"chromium-{revision}", FULL_NAMES)
    if not headless:
        return full
    shell = _executable_in(base / f"chromium_headless_shell-{revision}", SHELL_NAMES)
    return shell or full


def choose_chromium(
    *,
    playwright_executable: str | None,
    headless: bool = True,
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    root: bool | None = None,
) -> BrowserChoice:
    """The Chromium to launch, in the order of the module docstring; raises ConfigError for a bad CHROMIUM_EXECUTABLE."""
    env = os.environ if env is None else env
    explicit = env.get(CHROMIUM_ENV, "").strip()
    if explicit:
        resolved = which(explicit) if os.sep not in explicit else explicit
        if not resolved or not Path(resolved).is_file():
            raise ConfigError(f"{CHROMIUM_ENV}={explicit!r} is not a file: point it at a Chromium executable, or unset it")
        if not os.access(resolved, os.X_OK):
            raise ConfigError(f"{CHROMIUM_ENV}={explicit!r} is not executable (chmod +x it, or unset it)")
        return BrowserChoice(CHROMIUM_ENV, resolved, system_chromium_flags(root=root))
    build = playwright_build(playwright_executable=playwright_executable, headless=headless, env=env)
    if build is not None:
        return BrowserChoice("playwright", str(build), CHROMIUM_FLAGS)
    for name in SYSTEM_CHROMIUM_NAMES:
        found = which(name)
        if found:
            return BrowserChoice("system", found, system_chromium_flags(root=root))
    return BrowserChoice("none", args=CHROMIUM_FLAGS)


def ffmpeg_path(env: Mapping[str, str] | None = None) -> Path | None:
    """Playwright's ffmpeg (needed by ``--video``), or None when ``playwright install`` has not provided it."""
    base = browsers_path(env)
    names = {"linux": "ffmpeg-linux", "darwin": "ffmpeg-mac", "win32": "ffmpeg-win64.exe"}
    wanted = names.get(sys.platform, "ffmpeg-linux")
    try:
        candidates = sorted(base.glob(f"ffmpeg-*/{wanted}"), reverse=True)
    except OSError:
        return None
    return next((c for c in candidates if c.is_file()), None)


def launch_error_line(error: BaseException, choice: BrowserChoice | None, *, browser_name: str = "chromium") -> str:
    """One line for a browser that would not start: Playwright's reason and what to do.

    ``choice`` is None for a browser revgate did not choose (Firefox, WebKit, a ``--browser-channel``).
    """
    lines = [line.strip(" ║╔╗╚╝═") for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    reason = lines[0] if lines else type(error).__name__
    reason = reason.removeprefix("BrowserType.launch: ")
    if choice is None:
        hint = f"; run `python -m playwright install {browser_name}`" if "Executable doesn't exist" in reason else ""
        return f"cannot start {browser_name}: {reason}{hint}"
    if "Executable doesn't exist" in reason or choice.source == "none":
        return f"cannot start Chromium: {reason}; {INSTALL_HINT}"
    return f"cannot start {choice.describe()}: {reason}"

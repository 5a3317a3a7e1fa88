"""Where the revgate suite lives, and how a run is pointed at it.

The suite is the gate's own pytest tree: ``conftest.py``, ``pytest.ini``, the
default ``checklist.toml`` and the test folders. An installed revgate carries it
as ``revgate/suite/`` (the wheel's build puts it there); a checkout of revgate
is the suite itself (its root holds the same files).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SECTIONS", "suite_args", "suite_dir"]

SECTIONS = {
    "smoke": "tests_smoke",
    "revision": "tests_revision",
    "metrics": "tests_metrics",
    "logs": "tests_logs",
    "frontend": "tests_frontend",
}
"""Section name (``--sections``) -> the suite's test folder."""


def suite_dir() -> Path:
    """The folder holding the suite's ``pytest.ini`` and ``conftest.py``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "suite", package.parent):
        if (candidate / "pytest.ini").is_file() and (candidate / "conftest.py").is_file():
            return candidate
    raise RuntimeError(f"revgate's suite is missing from {package}: reinstall revgate")  # a broken install


def suite_args(args: list[str], *, cwd: Path) -> list[str]:
    """pytest arguments that run the installed suite with the user's ``args``, from ``cwd``.

    The ini file and rootdir are the suite's, so pytest never collects the tests
    of ``cwd``; the suite's folders are the test paths. pytest's cache is off, so
    nothing is written into ``cwd`` (the team's repository) nor into the installed
    package; options that need it (``--lf``, ``--ff``, ``--sw`` ...) get it in the
    user's cache folder instead.
    """
    suite = suite_dir()
    return [
        "-c",
        str(suite / "pytest.ini"),
        "--rootdir",
        str(suite),
        *_cache_args(args, cwd),
        *args,
        *(str(suite / folder) for folder in _folders(args)),
    ]


CACHE_OPTIONS = ("--lf", "--last-failed", "--ff", "--failed-first", "--nf", "--new-first", "--sw", "--stepwise",
                 "--sw-skip", "--stepwise-skip", "--lfnf", "--last-failed-no-failures", "--cache-show", "--cache-clear")
"""pytest options that read or write its cache."""


def _cache_args(args: list[str], cwd: Path) -> list[str]:
    if not any(a.split("=", 1)[0] in CACHE_OPTIONS for a in args):
        return ["-p", "no:cacheprovider"]
    import hashlib
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:16]  # one cache per directory revgate runs from
    return ["-o", f"cache_dir={base / 'revgate' / 'pytest' / key}"]


def _folders(args: list[str]) -> list[str]:
    """The suite folders to collect: those of ``--sections`` when every name is known (collecting
    only them keeps a smoke run from importing Playwright and the Google clients), else all of
    them (the plugin then refuses a bad name with one line)."""
    raw = None
    for i, arg in enumerate(args):
        if arg == "--sections" and i + 1 < len(args):
            raw = args[i + 1]
        elif arg.startswith("--sections="):
            raw = arg.split("=", 1)[1]
    names = [name.strip() for name in (raw or "").split(",") if name.strip()]
    if names and all(name in SECTIONS for name in names):
        return [SECTIONS[name] for name in dict.fromkeys(names)]
    return list(SECTIONS.values())

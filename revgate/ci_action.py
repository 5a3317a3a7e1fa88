"""Helpers of the GitHub Action (``action.yml``), run with revgate's own Python: ``python -m revgate.ci_action``.

    python -m revgate.ci_action args            # IN_EXTRA -> the arguments, NUL-separated
    python -m revgate.ci_action needs-chromium  # 'true' or 'false'
    python -m revgate.ci_action outputs REPORT  # the step outputs, from the JSON report

- ``args``: the ``extra-args`` input parsed as a POSIX shell parses a command
  line (``shlex``): quotes group words (``-k "health or api"``), every line
  counts, ``#`` starts a comment. A quote left open is exit 4, one line.
- ``needs-chromium``: the browser is installed only when a page will be opened:
  the checklist revgate will use has ``[[page]]`` entries and the frontend
  section runs, or a team's ``--checks`` folder has a test that asks for
  ``page``. It reads the same inputs as the gate step (``IN_CHECKLIST``,
  ``IN_SECTIONS``, ``IN_CHECKS``, ``IN_EXTRA``).
- ``outputs``: ``verdict``, ``revision``, ``rollback-status`` and
  ``report-json`` for ``$GITHUB_OUTPUT``; ``ERROR`` when this use of the action
  wrote no report (each use has its own folder, so another use's report is
  never read).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["extra_args", "main", "needs_chromium", "outputs"]


def extra_args(text: str) -> list[str]:
    """``extra-args`` as a shell would split it; ValueError (one line) for an unbalanced quote."""
    try:
        return shlex.split(text, comments=True, posix=True)
    except ValueError as exc:
        raise ValueError(f"extra-args: {exc} (quote a value with spaces once: -k \"health or api\")") from None


def _option(args: list[str], name: str) -> list[str]:
    """The values given to ``--name`` in ``args`` (``--name V`` or ``--name=V``)."""
    found = []
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith(name + "="):
            found.append(arg.split("=", 1)[1])
    return found


def _checklist_path(workspace: Path, given: str) -> Path | None:
    if given:
        return (workspace / given) if not Path(given).is_absolute() else Path(given)
    here = workspace / "checklist.toml"
    if here.is_file():
        return here
    from .suite import suite_dir

    return suite_dir() / "checklist.toml"


_PAGE_ARG = re.compile(r"def\s+test\w*\s*\([^)]*\bpage\b", re.S)


def needs_chromium(env: Mapping[str, str] | None = None, *, workspace: Path | None = None) -> bool:
    """Whether the run will open a page (see the module docstring); unsure means True."""
    import tomllib

    env = os.environ if env is None else env
    workspace = Path.cwd() if workspace is None else workspace
    extra = extra_args(env.get("IN_EXTRA", ""))
    sections_raw = (_option(extra, "--sections") or [env.get("IN_SECTIONS", "")])[-1]
    sections = {s.strip() for s in sections_raw.split(",") if s.strip()}
    checklist_given = (_option(extra, "--checklist") or [env.get("IN_CHECKLIST", "")])[-1]
    path = _checklist_path(workspace, checklist_given)
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, ValueError):
            return True  # the gate will say what is wrong with it; do not hide that behind a missing browser
    if data.get("page") and (not sections or "frontend" in sections):
        return True
    suite = data.get("suite") if isinstance(data.get("suite"), dict) else {}
    folders = _option(extra, "--checks") or [
        f.strip() for f in env.get("IN_CHECKS", "").split(",") if f.strip()
    ]
    base = workspace
    if not folders and isinstance(suite, dict):
        folders = [str(f) for f in suite.get("checks") or []]
        base = path.parent if path is not None else workspace
    for folder in folders:
        root = Path(folder) if Path(folder).is_absolute() else base / folder
        for test in root.rglob("test_*.py"):
            try:
                if _PAGE_ARG.search(test.read_text(errors="replace")):
                    return True
            except OSError:
                return True
    return False


def outputs(report_path: Path) -> list[str]:
    """The action's outputs, one ``name=value`` line each."""
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    if not isinstance(report, dict):
        report = {}
    rollback = report.get("rollback") or {}
    target = report.get("target") or {}
    return [
        f"verdict={report.get('verdict', 'ERROR')}",
        f"revision={','.join(target.get('revisions') or [])}",
        f"rollback-status={rollback.get('status', '')}",
        f"report-json={report_path if report else ''}",
    ]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else ""
    try:
        if command == "args":
            sys.stdout.write("".join(arg + "\0" for arg in extra_args(os.environ.get("IN_EXTRA", ""))))
            return 0
        if command == "needs-chromium":
            print("true" if needs_chromium() else "false")
            return 0
        if command == "outputs" and len(argv) == 2:
            print("\n".join(outputs(Path(argv[1]))))
            return 0
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4
    print("usage: python -m revgate.ci_action args | needs-chromium | outputs REPORT", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``revgate`` command: the installed suite, run from any directory.

    revgate [run] --revision-url URL [--checklist=FILE] [any pytest option]
    revgate init [--from-url URL] [--force]
    revgate check FILE [FILE ...]
    revgate --version

``run`` (the default) is pytest underneath, with the suite's ini file and
rootdir, so it never collects the current directory's tests, and it exits with
pytest's codes as the suite sets them (0 pass, 1 fail, 4 bad input, 6 not
verified). ``init`` writes a starter checklist; ``check`` validates
checklists and lists every problem.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["main"]

USAGE = """\
usage: revgate [run] --revision-url URL [--checklist=FILE] [pytest options]
       revgate init [--from-url URL] [--force]
       revgate init --checks [DIR]
       revgate check FILE [FILE ...]
       revgate --version

Post-deploy verification gate for a Cloud Run revision: the checklist's checks
run against URL; with --service/--region/--project a gating failure shifts the
traffic back to the previous revision.

commands:
  run     run the gate (the default): every pytest option works, and revgate's
          own (revgate run --help lists them all under 'revgate')
  init    write a commented starter checklist.toml here (--from-url probes a URL);
          --checks writes a deploy_checks/ folder for the team's own pytest tests
  check   validate checklist files; every problem on its own line

exit codes: 0 PASS, 1 FAIL (a gating check failed), 2 interrupted or a bad command,
            4 bad input (one line says what), 6 NOT VERIFIED (the gate could not check:
            no rollback, no promotion)
"""


def _version() -> str:
    try:
        return version("revgate")
    except PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
        return "unknown (not installed)"


def run(args: list[str]) -> int:
    """The gate: pytest on the installed suite, from the current directory."""
    import pytest

    from .suite import suite_args

    return int(pytest.main(suite_args(args, cwd=Path.cwd())))


def check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="revgate check",
        description="Validate checklist files: every problem on its own line (file, entry, key, what was "
        "expected). Exit 0 when every file is valid, 4 otherwise.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path, help="a checklist TOML file")
    ns = parser.parse_args(argv)
    from .checklist import load_checklist
    from .errors import ChecklistError

    code = 0
    for path in ns.files:
        try:
            checklist, _ = load_checklist(path)
        except ChecklistError as exc:
            for line in exc.problems:
                print(line, file=sys.stderr)
            code = 4
            continue
        print(f"{path}: valid, {_describe(checklist)}")
    return code


def _describe(checklist: object) -> str:
    from .plugin import PARAMETRIZED

    counts = []
    for section in dict.fromkeys(section for section, _ in PARAMETRIZED.values()):
        n = len(checklist.entries(section))  # type: ignore[attr-defined]
        if n:
            counts.append(f"{n} {section.replace('_', ' ')}")
    text = ", ".join(counts) + " check(s)" if counts else "no checks (a run would verify nothing)"
    rollout = getattr(checklist, "rollout", None)
    if rollout is not None:
        text += f"; rollout {' -> '.join(f'{p} %' for p in rollout.steps)}"
    return text


def _untouched_starter(path: Path) -> bool:
    """The file is the plain starter ``revgate init`` wrote, never edited: ``init --from-url`` may replace it."""
    from .starter import starter_checklist

    try:
        return path.read_text() == starter_checklist()[0]
    except (OSError, UnicodeDecodeError):
        return False


def init(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="revgate init",
        description="Write a commented starter checklist.toml into the current directory. It refuses to "
        "overwrite an existing one unless --force is given.",
    )
    parser.add_argument(
        "--from-url",
        metavar="URL",
        help="probe this URL (health paths, '/', common API paths) and fill in what answers",
    )
    parser.add_argument("--output", default="checklist.toml", type=Path, metavar="FILE", help="default: checklist.toml")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument(
        "--checks", nargs="?", const="deploy_checks", default=None, type=Path, metavar="DIR",
        help="write a starter folder of the team's own pytest checks instead (default deploy_checks)",
    )
    ns = parser.parse_args(argv)
    if ns.checks is not None:
        from .checks_starter import init_checks

        return init_checks(ns.checks)
    from .errors import RevgateError
    from .starter import starter_checklist

    if ns.output.exists() and not ns.force and not (ns.from_url and _untouched_starter(ns.output)):
        again = " ".join(["revgate init", *(["--from-url", ns.from_url] if ns.from_url else []), "--force"])
        print(
            f"revgate init: {ns.output} already exists and is kept; edit it, replace it ({again}), "
            f"or write another file (--output FILE)",
            file=sys.stderr,
        )
        return 4
    try:
        text, found = starter_checklist(from_url=ns.from_url)
    except RevgateError as exc:
        print(f"revgate init: {exc}", file=sys.stderr)
        return 4
    ns.output.write_text(text)
    print(f"wrote {ns.output}" + (f": {found}" if found else ""))
    print(f"next: revgate check {ns.output}, then revgate --revision-url URL --checklist={ns.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    if argv and argv[0] == "--version":
        print(f"revgate {_version()}")
        return 0
    if argv and argv[0] == "init":
        return init(argv[1:])
    if argv and argv[0] == "check":
        return check(argv[1:])
    if argv and argv[0] == "run":
        argv = argv[1:]
    if not argv:
        print(USAGE, end="", file=sys.stderr)
        return 2
    return run(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

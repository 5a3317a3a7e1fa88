"""Run the gate against one target of a targets file: the one this Cloud Run Job task is for.

A Cloud Run Job started with ``--tasks N`` runs N copies of the container;
each gets ``CLOUD_RUN_TASK_INDEX`` (0 .. N-1). This script picks the target
with that index from the targets file (``REVGATE_TARGETS``, default
``targets.toml`` beside this script) and runs ``revgate`` for it::

    [[target]]
    url = "https://emergence-abc123-ew.a.run.app"   # required
    service = "emergence"                            # optional: service, region, project
    region = "europe-west1"
    project = "my-project"

Monitoring defaults: rollback off (``REVGATE_ROLLBACK=off`` unless set), one
retry (``REVGATE_RETRIES=1`` unless set). Extra arguments go to revgate as
they are. ``--print`` prints the revgate command instead of running it. The
checklist is ``checklist.toml`` of the working directory unless
``--checklist=FILE`` is given (the image of ``Dockerfile`` here copies both
files in).

Exit codes are pytest's; a bad targets file or index exits 4 with one line.
"""

from __future__ import annotations

import os
import shlex
import sys
import tomllib
from pathlib import Path

DEFAULT_TARGETS = Path(__file__).resolve().parent / "targets.toml"
KEYS = {"url": "--revision-url", "service": "--service", "region": "--region", "project": "--project"}


class TargetError(Exception):
    pass


def select(targets_path: Path, index_raw: str | None) -> dict[str, str]:
    """The target for this task index; raises TargetError with a one-line reason."""
    try:
        data = tomllib.loads(targets_path.read_text())
    except FileNotFoundError:
        raise TargetError(f"targets file {targets_path}: no such file (set REVGATE_TARGETS)") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"targets file {targets_path}: not TOML ({exc})") from None
    targets = data.get("target")
    if not isinstance(targets, list) or not targets:
        raise TargetError(f"targets file {targets_path}: no [[target]] entries")
    try:
        index = int(index_raw or "0")
    except ValueError:
        raise TargetError(f"CLOUD_RUN_TASK_INDEX {index_raw!r} is not a number") from None
    if not 0 <= index < len(targets):
        raise TargetError(
            f"CLOUD_RUN_TASK_INDEX {index} is outside the {len(targets)} targets of {targets_path}: "
            f"create the job with --tasks {len(targets)}"
        )
    target = targets[index]
    unknown = set(target) - set(KEYS)
    if unknown or not isinstance(target.get("url"), str):
        what = f"unknown key {sorted(unknown)[0]!r}" if unknown else "no url"
        raise TargetError(f"targets file {targets_path}: target {index}: {what} (keys: {', '.join(KEYS)})")
    return {k: str(v) for k, v in target.items()}


def command(target: dict[str, str], extra: list[str]) -> list[str]:
    args = [f"{KEYS[k]}={v}" for k, v in target.items()]
    return [sys.executable, "-m", "revgate", *args, *extra]


def main(argv: list[str]) -> int:
    show = "--print" in argv
    extra = [a for a in argv if a != "--print"]
    targets = Path(os.environ.get("REVGATE_TARGETS") or DEFAULT_TARGETS)
    try:
        target = select(targets, os.environ.get("CLOUD_RUN_TASK_INDEX"))
    except TargetError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4
    cmd = command(target, extra)
    if show:
        print(shlex.join(cmd))
        return 0
    os.environ.setdefault("REVGATE_ROLLBACK", "off")
    os.environ.setdefault("REVGATE_RETRIES", "1")
    os.execv(sys.executable, cmd)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

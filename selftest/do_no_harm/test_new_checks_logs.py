"""The ``[[logs]]`` checks must neither pass a broken revision nor fail a healthy one when the machine the
gate runs on does not share Cloud Logging's clock, or when the logs hold what the gate must not show.

A CI runner's clock is the gate's; the timestamps of the entries are Cloud Logging's (Cloud Run's). The
gate's clock is shifted here, in the gate's process only, by a ``sitecustomize`` module: what a runner
whose clock is off by half a minute would do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from log_checks.conftest import CHECKLIST, ERRORS, send, serving  # noqa: F401 - helpers

SKEW = 30.0
REPO = Path(__file__).resolve().parents[2]


def _skewed_env(tmp_path: Path, seconds: float) -> dict[str, str]:
    """PYTHONPATH with a ``sitecustomize`` that moves the wall clock the gate's own code reads by ``seconds``.

    Only the project's code (files of this repository outside the venv) reads the shifted clock: the gRPC
    runtime computes its deadlines with ``time.time()`` and hands them to its C core, which reads the real
    clock; a shifted OS clock would shift both, a shifted ``time.time`` alone would expire every call."""
    folder = tmp_path / f"clock{seconds:+g}"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys, time\n"
        f"_ROOT, _VENV, _SHIFT = {str(REPO)!r}, {str(REPO / '.venv')!r}, {seconds!r}\n"
        "_real = time.time\n"
        "def _time():\n"
        "    name = sys._getframe(1).f_code.co_filename\n"
        "    own = name.startswith(_ROOT) and not name.startswith(_VENV)\n"
        "    return _real() + _SHIFT if own else _real()\n"
        "time.time = _time\n"
    )
    return {"PYTHONPATH": str(folder)}


@pytest.fixture
def logs_gate(sandbox, run_suite, tmp_path) -> Callable[..., object]:  # noqa: ANN001
    def run(service: str, url: str, *args: str, logs: str = ERRORS, env: dict[str, str] | None = None) -> object:
        checklist = tmp_path / f"checklist-{len(list(tmp_path.glob('checklist-*.toml')))}.toml"
        checklist.write_text(CHECKLIST.format(logs=logs))
        extra = [] if any(a.startswith("--rollback") for a in args) else ["--rollback=off"]
        return run_suite(
            "tests_logs", f"--checklist={checklist}", f"--revision-url={url}", f"--service={service}",
            "--logs-timeout=20", *extra, *args, env={**sandbox.env, **(env or {})}, timeout=120,
        )

    return run


def test_new_checks_logs_a_gate_clock_behind_still_sees_the_errors_and_rolls_back(sandbox, logs_gate, tmp_path):
    service = "skew-behind"
    stable = sandbox.deploy(service)
    canary = sandbox.deploy(service, tag="canary", no_traffic=True, faults=["log_errors"])
    sandbox.update_traffic(service, to_revisions={stable: 90, canary: 10})
    send(sandbox.tag_url(service, "canary"), 2)
    run = logs_gate(service, sandbox.tag_url(service, "canary"), "--rollback=on-failure", env=_skewed_env(tmp_path, -SKEW))
    assert run.returncode == 1, run  # the errors were logged before the probe: a runner's clock must not hide them
    assert run.failed() == {"test_logs[errors]"}, run
    assert f"ERROR stdout {canary}: simulated error while handling GET /health" in run.stdout, run
    assert serving(sandbox, service) == {stable: 100}, run


def test_new_checks_logs_a_gate_clock_ahead_still_judges_the_run_since_its_start(sandbox, logs_gate, tmp_path):
    service = "skew-ahead"
    canary = sandbox.deploy(service, faults=["log_errors"])
    since_run = '[[logs]]\nid = "errors"\nsince = "run"\n'
    run = logs_gate(service, sandbox.service_url(service), logs=since_run, env=_skewed_env(tmp_path, SKEW))
    assert run.returncode == 1, run  # the probe's own request logged an error during this run
    assert f"ERROR stdout {canary}: simulated error while handling GET /health" in run.stdout, run


def test_new_checks_logs_a_healthy_revision_passes_whatever_the_gate_clock(sandbox, logs_gate, tmp_path):
    service = "skew-healthy"
    rev = sandbox.deploy(service)
    send(sandbox.service_url(service), 2)
    for seconds in (-SKEW, SKEW):
        run = logs_gate(service, sandbox.service_url(service), env=_skewed_env(tmp_path, seconds))
        assert run.returncode == 0, run
        assert "Cloud Logging shows the probe request's log of " + rev in run.stdout, run


def test_new_checks_logs_a_cut_message_never_shows_part_of_the_token_nor_terminal_escapes(sandbox, logs_gate):
    from log_checks.conftest import write_entry

    service = "cut-token"
    rev = sandbox.deploy(service)
    token = sandbox.env["REVGATE_AUTH_TOKEN"]
    # the token straddles the cut of the one-line summary (100 characters) and of an entry's line (160)
    write_entry(sandbox, service, rev, "upstream call failed, credentials=" + "x" * 50 + token, severity="ERROR")
    write_entry(sandbox, service, rev, "y" * 150 + " " + token, severity="ERROR")
    write_entry(sandbox, service, rev, "\x1b[1A\x1b[2K\x1b]8;;https://example.invalid\x07all checks passed", severity="ERROR")
    run = logs_gate(service, sandbox.service_url(service))
    assert run.returncode == 1, run
    assert "upstream call failed, credentials=xxxxx" in run.stdout, run
    for size in range(1, len(token) + 1):  # not a piece of the token where the cut fell
        for before in ("x" * 10 + token[:size], "y" * 10 + " " + token[:size]):
            assert before not in run.output and before not in run.junit_text(), (before, run.output[-2500:])
    assert "\x1b" not in run.output and "\x07" not in run.output, run
    assert "\\x1b[1A\\x1b[2K" in run.stdout, run  # shown, escaped: the reader sees what the line held

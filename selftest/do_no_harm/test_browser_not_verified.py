"""A browser that cannot start is the gate's problem, never the revision's: the page checks are
NOT VERIFIED (exit 6), the healthy canary keeps its traffic, nothing is marked, nothing promoted."""

from __future__ import annotations

import os
import stat

from conftest import SAMPLE_TOKEN
from do_no_harm.conftest import FAILED_KEY, last_line

CHECKLIST = """
[health]
ready_budget = 5

[[page]]
id = "home"
path = "/"
selectors = ["#proactive-hints"]
auth = false
"""


def test_a_chromium_that_cannot_start_is_not_verified_and_never_rolls_back(sb, run_suite, service, traffic, annotations, canary, tmp_path):
    stable, candidate, url = canary(faults=())
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'chromium: cannot open display' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    checklist = tmp_path / "pages.toml"
    checklist.write_text(CHECKLIST)
    before = traffic(service)
    sb.reset_calls()

    run = run_suite(
        "tests_smoke", "tests_frontend", f"--revision-url={url}", f"--service={service}", f"--checklist={checklist}",
        "--promote=50", f"--rollback-report={tmp_path / 'rb.json'}",
        env={**sb.env, "CHROMIUM_EXECUTABLE": str(broken), "REVGATE_AUTH_TOKEN": SAMPLE_TOKEN, "PATH": os.environ["PATH"]},
        timeout=120,
    )

    assert run.returncode == 6, run
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0
    assert FAILED_KEY not in annotations(service)
    assert last_line(run.stdout, "revgate verdict:").startswith(f"revgate verdict: NOT VERIFIED {candidate}"), run
    assert "NOT VERIFIED test_page[home-chromium]: the browser could not be used: cannot start" in run.stdout, run
    assert "ROLLBACK" not in run.stdout
    assert "not promoted to 50 %: the verdict is NOT VERIFIED" in run.stdout, run

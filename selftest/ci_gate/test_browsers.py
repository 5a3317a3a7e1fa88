"""The page checks with Playwright's own Chromium where Playwright puts it, and no ``chromium`` on PATH.

This is the machine of the README's install, the Dockerfile and Cloud Build: no
distro Chromium, only what ``playwright install`` downloaded into
``PLAYWRIGHT_BROWSERS_PATH``. The build is laid out exactly where the installed
Playwright looks for it (its ``executable_path`` names the full build; the
headless shell sits in ``chromium_headless_shell-REV`` beside it), each
executable a link to the machine's Chromium binary, so the real gate launches
a real browser from that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKLIST = """
[[page]]
id = "home"
path = "/"
text = "Welcome back"
"""

REAL_CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and os.path.isfile(p)), None)


def _playwright_full_path(browsers: Path) -> Path:
    """Where this Playwright expects its full Chromium under ``browsers`` (asked from Playwright itself)."""
    code = "from playwright.sync_api import sync_playwright\nwith sync_playwright() as p: print(p.chromium.executable_path)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PLAYWRIGHT_BROWSERS_PATH": str(browsers)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def _link(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if REAL_CHROMIUM and REAL_CHROMIUM.startswith("/usr/lib/"):
        path.symlink_to(REAL_CHROMIUM)
    else:  # a launcher script: run it with a PATH of its own
        path.write_text(f'#!/bin/sh\nPATH=/usr/bin:/bin exec {REAL_CHROMIUM} "$@"\n')
        path.chmod(0o755)
    return path


@pytest.mark.skipif(REAL_CHROMIUM is None, reason="no Chromium binary on this machine to lay out as Playwright's")
@pytest.mark.parametrize("build", ["headless-shell", "full"])
def test_pages_pass_with_playwrights_own_build_and_no_chromium_on_path(
    build: str, sample_service, run_suite, auth_env, tmp_path: Path
) -> None:
    browsers = tmp_path / "ms-playwright"
    full = _playwright_full_path(browsers)
    revision = full.parent.parent.name.removeprefix("chromium-")
    if build == "full":  # playwright install --no-shell
        _link(full)
    else:  # playwright install --only-shell
        shell = browsers / f"chromium_headless_shell-{revision}" / "chrome-headless-shell-linux64" / "chrome-headless-shell"
        _link(shell)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    checklist = tmp_path / "pages.toml"
    checklist.write_text(CHECKLIST)
    env = {**auth_env, "PLAYWRIGHT_BROWSERS_PATH": str(browsers), "PATH": str(empty_bin), "HOME": str(tmp_path)}
    assert shutil.which("chromium", path=env["PATH"]) is None and shutil.which("chromium-browser", path=env["PATH"]) is None

    run = run_suite("--revision-url", sample_service(), f"--checklist={checklist}", "tests_frontend",
                    f"--output={tmp_path / 'out'}", env=env)

    assert run.returncode == 0, run
    assert run.passed() == {"test_page[home-chromium]"}, run
    assert "revgate verdict: PASS" in run.output

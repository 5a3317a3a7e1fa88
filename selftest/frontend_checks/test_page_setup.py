"""Bad [[page]] entries and a browser that cannot be found: one line, no traceback; the browser choice order."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from revgate.browser import CHROMIUM_FLAGS, SYSTEM_CHROMIUM_FLAGS, choose_chromium, ffmpeg_path
from revgate.errors import ConfigError


@pytest.mark.parametrize(
    ("entry", "fragments"),
    [
        ('ignore_console = ["("]', ["[[page]] 'p' key 'ignore_console'", "'(' is not a valid regular expression"]),
        ('selectors = "#main"', ["[[page]] 'p' key 'selectors'", "valid list"]),
        ('selectors = [""]', ["[[page]] 'p' key 'selectors'", "a selector must not be empty"]),
        ("load_ms = -5", ["[[page]] 'p' key 'load_ms'", "greater than 0"]),
        ('max_bytes = "1MB"', ["[[page]] 'p' key 'max_bytes'", "valid integer"]),
        ("allow_third_party = true", ["[[page]] 'p' key 'allow_third_party'", "unknown key"]),
    ],
)
def test_bad_page_entry_is_a_one_line_usage_error(run_suite, page_checklist, entry, fragments):
    checklist = page_checklist(f'[[page]]\nid = "p"\npath = "/"\n{entry}\n')
    run = run_suite("--revision-url", "http://127.0.0.1:9", "tests_frontend", f"--checklist={checklist}")
    run.assert_usage_error(str(checklist), *fragments)


def test_page_path_must_start_with_a_slash(run_suite, page_checklist):
    checklist = page_checklist('[[page]]\nid = "p"\npath = "memory"\n')
    run = run_suite("--revision-url", "http://127.0.0.1:9", "tests_frontend", f"--checklist={checklist}")
    run.assert_usage_error("[[page]] 'p' key 'path'", "a path must start with '/'")


def test_chromium_executable_pointing_nowhere_is_a_usage_error(run_suite, tmp_path):
    missing = tmp_path / "no-such-chromium"
    run = run_suite("--revision-url", "http://127.0.0.1:9", "tests_frontend", env={"CHROMIUM_EXECUTABLE": str(missing)})
    run.assert_usage_error(f"CHROMIUM_EXECUTABLE={str(missing)!r} is not a file")


def test_unparseable_selector_is_bad_input_before_any_check(sample_service, run_suite, auth_env, page_checklist, output_dir):
    """The checklist's mistake, found by the browser's own selector engine at start: exit 4, never the page's failure."""
    url = sample_service()
    checklist = page_checklist('[[page]]\nid = "p"\npath = "/"\nselectors = ["#a[", "h1"]\n')
    run = run_suite("--revision-url", url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=auth_env)
    run.assert_usage_error("#a[", "selectors")


def test_document_error_status_fails_the_page(sample_service, run_suite, auth_env, page_checklist, output_dir):
    url = sample_service()
    checklist = page_checklist('[[page]]\nid = "p"\npath = "/no-such-page"\nselectors = ["h1"]\n')
    run = run_suite("--revision-url", url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=auth_env)
    assert run.failed() == {"test_page[p-chromium]"}, run
    assert f"GET {url}/no-such-page (no token): 1 problem" in run.stdout, run
    assert "the document answered 404 (expected < 400)" in run.stdout, run


def test_video_without_ffmpeg_is_said_once_and_the_pages_still_pass(sample_service, run_suite, auth_env, output_dir):
    if ffmpeg_path() is not None:
        pytest.skip("Playwright's ffmpeg is installed here: --video works")
    url = sample_service()
    run = run_suite("--revision-url", url, "tests_frontend", "--video=on", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 0, run
    assert run.stdout.count("--video needs Playwright's ffmpeg (python -m playwright install ffmpeg)") == 1, run


# --- the choice of Chromium, on real files -------------------------------------------------------------------


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_explicit_chromium_executable_comes_first(tmp_path):
    explicit = _executable(tmp_path / "bin" / "my-chromium")
    own = _executable(tmp_path / "ms-playwright" / "chromium-1" / "chrome-linux64" / "chrome")
    choice = choose_chromium(playwright_executable=str(own), env={"CHROMIUM_EXECUTABLE": str(explicit)}, root=False)
    assert (choice.source, choice.executable) == ("CHROMIUM_EXECUTABLE", str(explicit))
    assert choice.args == CHROMIUM_FLAGS + SYSTEM_CHROMIUM_FLAGS


def test_playwrights_own_chromium_before_a_system_one(tmp_path):
    own = _executable(tmp_path / "ms-playwright" / "chromium-1" / "chrome-linux64" / "chrome")
    system = _executable(tmp_path / "bin" / "chromium")
    choice = choose_chromium(playwright_executable=str(own), env={}, which=lambda name: str(system))
    assert choice.source == "playwright" and choice.executable == str(own)  # no headless shell: the full build
    assert choice.apply({"headless": True}) == {"headless": True, "executable_path": str(own), "args": list(CHROMIUM_FLAGS)}


def test_headless_shell_alone_counts_as_playwrights_chromium(tmp_path):
    own = tmp_path / "ms-playwright" / "chromium-7" / "chrome-linux64" / "chrome"
    _executable(tmp_path / "ms-playwright" / "chromium_headless_shell-7" / "chrome-linux" / "headless_shell")
    assert choose_chromium(playwright_executable=str(own), env={}, which=lambda name: None).source == "playwright"
    assert choose_chromium(playwright_executable=str(own), headless=False, env={}, which=lambda name: None).source == "none"


def test_system_chromium_gets_quiet_flags_and_no_sandbox_as_root(tmp_path):
    system = _executable(tmp_path / "bin" / "chromium-browser")
    found = {"chromium-browser": str(system)}
    choice = choose_chromium(playwright_executable=str(tmp_path / "absent"), env={}, which=found.get, root=True)
    assert (choice.source, choice.executable) == ("system", str(system))
    args = choice.apply({"args": ["--lang=fr"]})["args"]
    assert args[0] == "--lang=fr"
    for flag in ("--disable-sync", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--no-sandbox"):
        assert flag in args
    assert "--no-sandbox" not in choose_chromium(playwright_executable=None, env={}, which=found.get, root=False).args


def test_nothing_installed_leaves_playwrights_own_error(tmp_path):
    choice = choose_chromium(playwright_executable=str(tmp_path / "absent"), env={}, which=lambda name: None)
    assert choice.source == "none" and choice.executable is None


def test_chromium_executable_not_executable_is_refused(tmp_path):
    plain = tmp_path / "chromium"
    plain.write_text("")
    with pytest.raises(ConfigError, match="is not executable"):
        choose_chromium(playwright_executable=None, env={"CHROMIUM_EXECUTABLE": str(plain)})


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None, reason="no system Chromium")
def test_pages_pass_with_the_system_chromium_found_on_path(sample_service, run_suite, auth_env, output_dir):
    url = sample_service()
    env = {**auth_env, "PLAYWRIGHT_BROWSERS_PATH": str(output_dir.parent / "no-browsers"), "PATH": os.environ["PATH"]}
    run = run_suite("--revision-url", url, "tests_frontend", f"--output={output_dir}", env=env)
    assert run.returncode == 0, run


def test_no_chromium_anywhere_is_a_usage_error_before_any_check(sample_service, run_suite, auth_env, tmp_path):
    # A gate machine without a browser must not fail (and so roll back) a healthy revision.
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**auth_env, "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-browsers"), "PATH": str(empty_bin)}
    run = run_suite("--revision-url", sample_service(), env=env)
    run.assert_usage_error("no Chromium for the page checks", "playwright install chromium", "CHROMIUM_EXECUTABLE")
    assert run.outcomes == {}, run

"""Bad input to the gate: a usage error (exit 4), one line naming what is wrong, no traceback."""

from __future__ import annotations

import pytest


def test_missing_revision_url(run_suite):
    run = run_suite()
    run.assert_usage_error("no revision to check", "--revision-url")


def test_revision_url_from_the_environment(run_suite, sample_service, auth_env):
    url = sample_service()
    run = run_suite("tests_smoke", env={**auth_env, "REVGATE_REVISION_URL": url})
    assert run.returncode == 0, run
    assert f"revgate target: {url}" in run.stdout


@pytest.mark.parametrize("url", ["example.com", "ftp://x", "https://", "http://host:99999", "https://h/?q=1"])
def test_malformed_revision_url(run_suite, url):
    run = run_suite("tests_smoke", "--revision-url", url)
    run.assert_usage_error(repr(url))


def test_missing_checklist(run_suite, tmp_path):
    missing = tmp_path / "nope.toml"
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--checklist={missing}")
    run.assert_usage_error(str(missing), "checklist file not found")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[health\n", ["not valid TOML"]),
        ("[[api]]\nid = 'x'\npath = '/a'\ncolour = 1\n", ["[[api]] 'x' key 'colour'", "unknown key"]),
        ("[health]\nstatus = '200'\n", ["[health] key 'status'", "valid integer"]),
        ("[[api]]\nid = 'x'\n", ["[[api]] 'x' key 'path'", "required key is missing"]),
        ("[pages]\n", ["unknown section [pages]"]),
    ],
)
def test_bad_checklist(run_suite, tmp_path, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--checklist={path}")
    run.assert_usage_error(str(path), *fragments)


def test_checklist_from_env_and_ini_precedence(run_suite, tmp_path):
    bad = tmp_path / "env.toml"
    bad.write_text("[health\n")
    run = run_suite("--revision-url", "http://127.0.0.1:9", env={"REVGATE_CHECKLIST": str(bad)})
    run.assert_usage_error(str(bad))
    # the command line wins over the environment
    good = tmp_path / "cli.toml"
    good.write_text("[health]\nready_budget = 0\n")
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--checklist={good}", env={"REVGATE_CHECKLIST": str(bad)})
    assert run.returncode == 1, run


def test_unreadable_token_file(run_suite, tmp_path):
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--auth-token-file={tmp_path / 'absent'}")
    run.assert_usage_error("--auth-token-file", "no such file")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--auth-token-file={empty}")
    run.assert_usage_error("is empty")
    run = run_suite("--revision-url", "http://127.0.0.1:9", f"--auth-token-file={tmp_path}")
    run.assert_usage_error("--auth-token-file", "is a directory: give a regular file")


def test_bad_request_timeout(run_suite):
    run = run_suite("--revision-url", "http://127.0.0.1:9", env={"REVGATE_REQUEST_TIMEOUT": "soon"})
    run.assert_usage_error("'soon' is not a number")


def test_id_token_without_credentials(run_suite, tmp_path):
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json"), "NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9"}
    run = run_suite("--revision-url", "http://127.0.0.1:9", "--id-token", env=env)
    run.assert_usage_error("--id-token: cannot get an ID token for http://127.0.0.1:9")


def test_path_option_outside_the_suite_without_equals_runs_the_suite(run_suite, tmp_path):
    """pytest takes ``--checklist /elsewhere/c.toml`` for a test path when it looks for its ini file,
    and roots the run in /elsewhere; the plugin hands such a run to the suite (``revgate``), so it
    gates with that checklist and collects nothing else."""
    checklist = tmp_path / "c.toml"
    checklist.write_text("[health]\n")
    run = run_suite("--revision-url", "http://127.0.0.1:9", "--checklist", str(checklist))
    assert run.returncode == 1, run
    assert f"revgate checklist: {checklist}" in run.stdout, run
    assert set(run.outcomes) == {"test_health[health]"}, run
    assert "cannot connect" in run.stdout and "revgate verdict: FAIL" in run.stdout, run

"""The gate against JupyterLab: token auth (``Authorization: token ...``), a JS frontend behind a
same-origin redirect, a JSON API that sets a session cookie, a kernel WebSocket with status frames."""

from __future__ import annotations

import pytest

HEALTHY = {
    "test_health[health]",
    "test_api[status]",
    "test_api[kernel]",
    "test_api[contents]",
    "test_api[version]",
    "test_api_requires_auth[status]",
    "test_api_requires_auth[kernel]",
    "test_api_requires_auth[contents]",
    "test_websocket[kernel-channels]",
    "test_page[lab-chromium]",
}


def _run(run_suite, app, checklist, output_dir, *args, token=None):
    return run_suite(
        "--revision-url", app.url, f"--checklist={checklist}", f"--output={output_dir}", *args,
        env={"REVGATE_AUTH_TOKEN": token or app.token}, timeout=180,
    )


def test_healthy_jupyterlab_passes_three_runs_in_a_row(jupyter, run_suite, app_checklist, output_dir):
    checklist = app_checklist("jupyter", jupyter)
    for attempt in range(3):
        run = _run(run_suite, jupyter, checklist, output_dir)
        assert run.returncode == 0, (attempt, run)
        assert run.passed() == HEALTHY, (attempt, run)
        assert "revgate verdict: PASS" in run.stdout, run
        # public by design: the token is sent, no refusal check is made
        assert "test_api_requires_auth[version]" not in run.outcomes, run
        assert jupyter.token not in run.output and jupyter.token not in run.junit_text(), run


def test_wrong_token_fails_the_api_the_websocket_and_the_page(jupyter, run_suite, app_checklist, output_dir):
    # the page has no selector left: landing on the login page must fail it all the same
    checklist = app_checklist("jupyter", jupyter, {'selectors = [".jp-LabShell", "#jp-main-dock-panel"]\n': ""})
    run = _run(run_suite, jupyter, checklist, output_dir, token="selftest-wrong-token-0000")
    assert run.returncode == 1, run
    assert {"test_api[status]", "test_api[kernel]", "test_api[contents]", "test_websocket[kernel-channels]",
            "test_page[lab-chromium]"} <= run.failed(), run
    assert "test_health[health]" in run.passed(), run
    assert "GET " + jupyter.url + "/api/status (with token): expected 200, answered 403" in run.stdout, run
    assert "handshake refused with HTTP 403" in run.stdout, run
    assert f"the page ended at {jupyter.url}/login?next=" in run.stdout, run
    assert "(a login page: is the token right?)" in run.stdout, run
    assert "selftest-wrong-token-0000" not in run.output, run


def test_a_deleted_js_asset_fails_the_page_naming_it(own_app, lab_copy, run_suite, app_checklist, output_dir):
    bundles = sorted((lab_copy / "static").glob("main.*.js"))
    assert bundles, "JupyterLab's main bundle was not found in its application folder"
    for bundle in bundles:
        bundle.unlink()
    app = own_app("jupyter", app_dir=lab_copy)
    run = _run(run_suite, app, app_checklist("jupyter", app), output_dir, "tests_frontend")
    assert run.returncode == 1, run
    assert run.failed() == {"test_page[lab-chromium]"}, run
    assert f"request GET {app.url}/static/lab/{bundles[0].name}" in run.stdout, run
    assert "(script): HTTP 404" in run.stdout, run
    assert "selector '.jp-LabShell': nothing visible matches it" in run.stdout, run


def test_a_stopped_server_is_connection_refused_not_a_timeout(own_app, run_suite, app_checklist, output_dir):
    app = own_app("jupyter")
    checklist = app_checklist("jupyter", app)
    app.stop()
    run = _run(run_suite, app, checklist, output_dir, "tests_smoke", "tests_frontend")
    assert run.returncode == 1, run
    assert HEALTHY - {"test_api_requires_auth[status]", "test_api_requires_auth[kernel]", "test_api_requires_auth[contents]"} <= run.failed(), run
    assert f"cannot connect to {app.url}/api/status" in run.stdout, run
    # the page carries the token through revgate's route: its failure is the real cause, not net::ERR_FAILED
    assert "the page did not load: connection refused" in run.stdout, run
    assert "did not load within" not in run.stdout and "net::ERR_FAILED" not in run.stdout, run
    assert "Traceback" not in run.output, run

"""The gate against Datasette: a JSON API with ``rows`` and ``next`` (null on the last page),
top-level arrays, an HTML page with the shop's own JavaScript."""

from __future__ import annotations

import sqlite3
import threading
import time

HEALTHY = {
    "test_health[health]",
    "test_api[items-first-page]",
    "test_api[items-last-page]",
    "test_api[items-count]",
    "test_api[no-such-table]",
    "test_page[items-chromium]",
}


def _run(run_suite, app, checklist, output_dir, *args):
    return run_suite("--revision-url", app.url, f"--checklist={checklist}", f"--output={output_dir}", *args, timeout=180)


def test_healthy_datasette_passes_three_runs_in_a_row(datasette, run_suite, app_checklist, output_dir):
    checklist = app_checklist("datasette", datasette)
    for attempt in range(3):
        run = _run(run_suite, datasette, checklist, output_dir)
        assert run.returncode == 0, (attempt, run)
        assert run.passed() == HEALTHY, (attempt, run)
        assert "revgate verdict: PASS" in run.stdout, run


def test_an_emptied_table_fails_the_api_and_the_page(own_app, run_suite, app_checklist, output_dir):
    app = own_app("datasette")
    with sqlite3.connect(app.extra["db"]) as conn:
        conn.execute("delete from items")
    run = _run(run_suite, app, app_checklist("datasette", app), output_dir)
    assert run.returncode == 1, run
    assert {"test_api[items-first-page]", "test_api[items-last-page]", "test_page[items-chromium]"} <= run.failed(), run
    assert {"test_health[health]", "test_api[no-such-table]"} <= run.passed(), run
    assert "'rows' has 0 items, expected at least 1" in run.stdout, run
    assert "'rows.0.0' missing (want integer)" in run.stdout, run
    assert "text 'item 1' is not shown" in run.stdout, run


def test_a_deleted_js_asset_fails_the_page_naming_it(own_app, run_suite, app_checklist, output_dir):
    app = own_app("datasette")
    (app.extra["assets"] / "app.js").unlink()
    run = _run(run_suite, app, app_checklist("datasette", app), output_dir)
    assert run.returncode == 1, run
    assert run.failed() == {"test_page[items-chromium]"}, run
    assert f"request GET {app.url}/assets/app.js (script): HTTP 404" in run.stdout, run
    assert "selector '#shop-app-ready': nothing visible matches it" in run.stdout, run


def test_a_server_stopped_mid_run_fails_with_connection_refused(own_app, run_suite, app_checklist, output_dir):
    app = own_app("datasette")
    seen_first_check = threading.Event()

    def stop_after_the_first_check() -> None:
        # the API checks run first: stop the server once the first of them reached it
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "GET /shop/items.json " not in app.log_text():
            time.sleep(0.02)
        seen_first_check.set()
        app.kill()

    stopper = threading.Thread(target=stop_after_the_first_check, daemon=True)
    stopper.start()
    run = _run(run_suite, app, app_checklist("datasette", app), output_dir)
    stopper.join(timeout=30)
    assert seen_first_check.is_set(), run
    assert run.returncode == 1, run
    # test_api.py runs first, then test_health.py, then the page: those last two find no server
    assert {"test_health[health]", "test_page[items-chromium]"} <= run.failed(), run
    assert f"cannot connect to {app.url}" in run.stdout, run
    assert f"the page did not load: connection refused (net::ERR_CONNECTION_REFUSED at {app.url}/shop/items)" in run.stdout, run
    assert "did not load within" not in run.stdout, run
    assert "Traceback" not in run.output, run

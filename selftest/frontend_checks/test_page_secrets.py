"""The token goes to the revision's own origin only, and into no artifact; third-party failures follow the checklist."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

VARIANT = "test_page[variant-chromium]"
VARIANT_FOLDER = "tests-frontend-test-pages-py-test-page-variant-chromium"


def variant_checklist(page_checklist, *, allow: bool):
    return page_checklist(
        "[[page]]\n"
        'id = "variant"\n'
        'path = "/"\n'
        "selectors = [\"#main[data-ready='true']\"]\n"
        'text = "Variant page"\n'
        "auth = true\n"
        f"allow_third_party_failures = {'true' if allow else 'false'}\n"
    )


@pytest.mark.parametrize("refuse", [False, True], ids=["third-party-500", "third-party-refused"])
def test_third_party_failure_fails_the_page_and_never_gets_the_token(
    revision_with_third_party, run_suite, auth_env, page_checklist, output_dir: Path, refuse
):
    site = revision_with_third_party(refuse=refuse)
    checklist = variant_checklist(page_checklist, allow=False)
    run = run_suite("--revision-url", site.url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 1, run
    assert run.failed() == {VARIANT}, run
    what = "connection refused (net::ERR_CONNECTION_REFUSED)" if refuse else "HTTP 500"
    assert f"third-party request GET {site.third_party_url}/lib.js (script): {what}" in run.stdout, run
    assert "(set allow_third_party_failures = true to accept it)" in run.stdout, run
    # the redirect from the revision to the other origin is followed by the browser, without the token
    assert f"third-party request GET {site.third_party_url}/landing.png (image)" in run.stdout, run
    # the revision got the token on every request of the page; the other origin never did
    token = auth_env["REVGATE_AUTH_TOKEN"]
    page_requests = site.revision.paths()
    assert {"/", "/app.js", "/out.png", "/icon.png"} <= set(page_requests), site.revision.seen
    assert site.revision.authorizations().count(f"Bearer {token}") >= len(page_requests), site.revision.seen
    if not refuse:
        assert set(site.third_party.paths()) == {"/lib.js", "/landing.png"}, site.third_party.seen
        assert site.third_party.authorizations() == [], site.third_party.seen
    assert token not in run.output


def test_allowed_third_party_failure_is_reported_not_failed(
    revision_with_third_party, run_suite, auth_env, page_checklist, output_dir: Path, artifacts
):
    site = revision_with_third_party()
    checklist = variant_checklist(page_checklist, allow=True)
    run = run_suite("--revision-url", site.url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=auth_env)
    assert run.returncode == 0, run
    assert run.passed() == {VARIANT}, run
    assert "PageNote: page 'variant': third-party request GET" in run.stdout, run
    assert "(allowed: allow_third_party_failures = true)" in run.stdout, run
    assert site.third_party.authorizations() == [], site.third_party.seen
    assert artifacts(output_dir) == {}, run


def _files_with(folder: Path, needle: bytes) -> list[str]:
    """Files under ``folder`` holding ``needle``, looking inside zip archives (traces) too."""
    hits = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        if needle in path.read_bytes() or needle.decode() in path.name:
            hits.append(str(path))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                hits += [f"{path}!{n}" for n in archive.namelist() if needle in archive.read(n)]
    return hits


def test_token_in_no_artifact_and_no_trace_for_pages_sending_it(
    sample_service, run_suite, auth_env, shipped_pages, output_dir: Path, artifacts
):
    url = sample_service("js_error")
    # the memory page (auth = true) fails too: a selector that never shows
    checklist = shipped_pages({'"#memory-stats"]': '"#memory-stats", "#never-there"]'})
    run = run_suite(
        "--revision-url", url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}",
        "--request-timeout=2", "--tracing=retain-on-failure", "--screenshot=only-on-failure", "-v",
        env=auth_env,
    )
    assert run.failed() == {"test_page[home-chromium]", "test_page[memory-chromium]"}, run
    assert f"GET {url}/memory (with token): 1 problem" in run.stdout, run
    found = artifacts(output_dir)
    home = found["tests-frontend-test-pages-py-test-page-home-chromium"]
    memory = found["tests-frontend-test-pages-py-test-page-memory-chromium"]
    assert {"screenshot.png", "console.log", "trace.zip", "test-failed-1.png"} <= home, found
    assert memory == {"screenshot.png", "console.log"}, found  # no trace: it would record the Authorization header
    assert run.stdout.count("no Playwright trace for page(s) memory: they send a secret") == 1, run
    token = auth_env["REVGATE_AUTH_TOKEN"]
    assert _files_with(output_dir, token.encode()) == []
    assert token not in run.output
    assert token not in run.junit_text()
    # the artifacts are named in the JUnit report
    assert "revgate_screenshot" in run.junit_text(), run.junit_text()


def test_missing_favicon_fails_only_when_required(revision_with_third_party, run_suite, auth_env, page_checklist, output_dir):
    site = revision_with_third_party()
    text = variant_checklist(page_checklist, allow=True).read_text() + "require_favicon = true\n"
    checklist = page_checklist(text, name="favicon.toml")
    run = run_suite("--revision-url", site.url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=auth_env)
    assert "/icon.png" in site.revision.paths(), site.revision.seen
    assert run.failed() == {VARIANT}, run
    assert f"GET {site.url}/ (with token): 1 problem" in run.stdout, run
    assert f"  - request GET {site.url}/icon.png (other): HTTP 404" in run.stdout, run

"""What real applications do to a page check: a favicon nobody links, errors just after render,
a SyntaxError in a file, many requests failing for one cause, login redirects, known noise."""

from __future__ import annotations

import socket

PAGE = "test_page[p-chromium]"
READY = "<main id='main'>ready</main><script>document.getElementById('main').dataset.ready = 'true';</script>"


def _html(body: str, head: str = "") -> tuple[int, str, str, dict[str, str]]:
    return 200, "text/html; charset=utf-8", f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>", {}


def _js(code: str) -> tuple[int, str, str, dict[str, str]]:
    return 200, "text/javascript", code, {}


def _entry(path: str = "/", extra: str = "") -> str:
    return f'[[page]]\nid = "p"\npath = "{path}"\nselectors = ["#main[data-ready=\'true\']"]\n{extra}'


def _run(run_suite, site, page_checklist, output_dir, entry, env=None):
    checklist = page_checklist(entry)
    return run_suite("--revision-url", site.url, "tests_frontend", f"--checklist={checklist}", f"--output={output_dir}", env=env)


def test_an_unlinked_missing_favicon_is_ignored_unless_required(tiny_site, run_suite, page_checklist, output_dir):
    site = tiny_site({"/": _html(READY)})  # no <link rel=icon>: Chromium asks for /favicon.ico itself (404)
    run = _run(run_suite, site, page_checklist, output_dir, _entry())
    assert run.returncode == 0, run
    run = _run(run_suite, site, page_checklist, output_dir, _entry(extra="require_favicon = true\n"))
    assert run.returncode == 1, run
    assert "favicon missing" in run.stdout and f"{site.url}/favicon.ico" in run.stdout, run


def test_an_error_just_after_render_fails_the_page(tiny_site, run_suite, page_checklist, output_dir):
    late = "setTimeout(() => { throw new Error('late failure after render'); }, 250);" \
           "setTimeout(() => fetch('/api/late'), 300);"
    site = tiny_site({"/": _html(READY + f"<script>{late}</script>"), "/api/late": (500, "application/json", "{}", {})})
    run = _run(run_suite, site, page_checklist, output_dir, _entry(extra="settle_ms = 800\n"))
    assert run.returncode == 1, run
    assert "uncaught exception: Error: late failure after render" in run.stdout, run
    assert f"request GET {site.url}/api/late (fetch): HTTP 500" in run.stdout, run


def test_a_syntax_error_names_its_file(tiny_site, run_suite, page_checklist, output_dir):
    site = tiny_site({"/": _html(READY, head="<script src='/broken.js'></script>"), "/broken.js": _js("function broken( {\n")})
    run = _run(run_suite, site, page_checklist, output_dir, _entry())
    assert run.returncode == 1, run
    assert "uncaught exception: SyntaxError: " in run.stdout, run
    assert f"(at {site.url}/broken.js:2:1)" in run.stdout, run


def test_many_requests_failing_alike_are_one_problem(tiny_site, run_suite, page_checklist, output_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    scripts = "".join(f"<script src='{closed}/chunk-{i}.js' defer></script>" for i in range(6))
    site = tiny_site({"/": _html(READY, head=scripts)})
    run = _run(run_suite, site, page_checklist, output_dir, _entry())
    assert run.returncode == 1, run
    assert "1 problem" in run.stdout, run
    assert f"6 third-party requests failed: connection refused (net::ERR_CONNECTION_REFUSED): {closed}/chunk-" in run.stdout, run
    assert "and 3 more" in run.stdout, run


def test_known_noise_is_ignored_by_url(tiny_site, run_suite, page_checklist, output_dir):
    site = tiny_site({
        "/": _html(READY, head="<script src='/noisy.js'></script><script src='/optional.js'></script>"),
        "/noisy.js": _js("console.error('telemetry endpoint not configured');"),
    })
    run = _run(run_suite, site, page_checklist, output_dir, _entry())
    assert run.returncode == 1, run
    assert "console error: telemetry endpoint not configured (at " in run.stdout, run
    assert f"request GET {site.url}/optional.js (script): HTTP 404" in run.stdout, run
    quiet = 'ignore_console = ["/noisy\\\\.js$"]\nignore_requests = ["/optional\\\\.js$"]\n'
    run = _run(run_suite, site, page_checklist, output_dir, _entry(extra=quiet))
    assert run.returncode == 0, run


def test_a_login_redirect_fails_unless_allowed(tiny_site, run_suite, page_checklist, output_dir):
    site = tiny_site({"/app": (302, "text/plain", "", {"Location": "/login?next=/app"}), "/login": _html(READY)})
    run = _run(run_suite, site, page_checklist, output_dir, _entry("/app"))
    assert run.returncode == 1, run
    assert f"the page ended at {site.url}/login?next=/app, not {site.url}/app (a login page: is the token right?)" in run.stdout, run
    run = _run(run_suite, site, page_checklist, output_dir, _entry("/app", 'allow_redirect_to = ["^/login"]\n'))
    assert run.returncode == 0, run


def test_the_token_follows_a_same_origin_redirect_in_its_own_header(tiny_site, run_suite, page_checklist, output_dir):
    site = tiny_site({"/": (302, "text/plain", "", {"Location": "/home"}), "/home": _html(READY)})
    token = "selftest-api-key-3f9e1b"
    entry = _entry("/", 'auth = true\nauth_header = "X-API-Key"\nauth_scheme = ""\nallow_redirect_to = ["^/home$"]\n')
    run = _run(run_suite, site, page_checklist, output_dir, entry, env={"REVGATE_AUTH_TOKEN": token})
    assert run.returncode == 0, run
    keys = {path: headers.get("x-api-key") for path, headers in site.recorder.seen}
    assert keys.get("/") == token and keys.get("/home") == token, site.recorder.seen
    assert token not in run.output, run

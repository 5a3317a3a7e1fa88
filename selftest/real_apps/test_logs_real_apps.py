"""The ``[[logs]]`` checks on real applications from PyPI, run as revisions of the local Cloud Run.

The sandbox runs :mod:`selftest.real_apps.as_revision` instead of its sample service
(``REVGATE_SANDBOX_APP``); that module starts Datasette or JupyterLab on the revision's port, and
what the app writes to stdout and stderr becomes the revision's Cloud Logging entries, as on Cloud
Run. The gate runs as a user runs it (a subprocess, ``--service``, ``--rollback=on-failure``) with
the app's checklist plus the shipped checklist's ``[[logs]]`` entries and ``[rollback]``; a canary
takes 10 % next to a stable revision of the same app, and the traffic after the run is read through
the real ``run_v2`` client.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.control import Sandbox
from sandbox.processes import APP_MODULE_ENV

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JUPYTER_TOKEN = "selftest-jupyter-token-7c41d2"  # as_revision.py starts JupyterLab with it
LOGS_CHECKS = {"test_logs[errors]", "test_logs[tracebacks]"}


def shipped_gating_sections() -> str:
    """The shipped checklist's ``[[logs]]`` entries and ``[rollback]`` section, as they are written there."""
    text = (REPO / "checklist.toml").read_text()
    blocks = re.findall(r"^(\[\[logs\]\]\n(?:[^\n\[#][^\n]*\n)+|\[rollback\]\n(?:[^\n\[#][^\n]*\n)+)", text, re.M)
    assert sum(b.startswith("[[logs]]") for b in blocks) == 2 and any("require_target = true" in b for b in blocks), blocks
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One local Cloud Run whose revisions run real apps (the daemon reads the variable at each start)."""
    saved = os.environ.get(APP_MODULE_ENV)
    os.environ[APP_MODULE_ENV] = "selftest.real_apps.as_revision"
    try:
        sb = Sandbox.up(tmp_path_factory.mktemp("cloud-run"), seed=11, ready_timeout=60)
    finally:
        if saved is None:
            os.environ.pop(APP_MODULE_ENV, None)
        else:
            os.environ[APP_MODULE_ENV] = saved
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture
def gate(sandbox: Sandbox, run_suite: Callable[..., object], tmp_path: Path) -> Callable[..., object]:
    """``gate(app, service, url, *args, extra="...", replace={old: new})``: the gate with the app's checklist,
    the shipped logs checks and rollback section, and ``extra``; ``replace`` edits that text."""

    def run(app: str, service: str, url: str, *args: str, extra: str = "", replace: dict[str, str] | None = None,
            env: dict[str, str] | None = None) -> object:
        text = (HERE / f"{app}_revision.toml").read_text() + "\n" + shipped_gating_sections() + "\n" + extra
        for old, new in (replace or {}).items():
            assert old in text, f"{old!r} is not in {app}_revision.toml nor the shipped sections"
            text = text.replace(old, new)
        checklist = tmp_path / f"{app}-{len(list(tmp_path.glob(app + '-*.toml')))}.toml"
        checklist.write_text(text)
        return run_suite(
            "tests_smoke", "tests_revision", "tests_logs",
            f"--checklist={checklist}", f"--revision-url={url}", f"--service={service}", "--rollback=on-failure",
            "--logs-timeout=30", *args,
            env={**sandbox.env, **(env or {})}, timeout=150,
        )

    return run


def canary_next_to_stable(
    sandbox: Sandbox, service: str, app: str, faults: tuple[str, ...] = (), stable_faults: tuple[str, ...] = ()
) -> tuple[str, str]:
    stable = sandbox.deploy(service, env={"REAL_APP": app}, faults=stable_faults)
    canary = sandbox.deploy(service, env={"REAL_APP": app}, tag="canary", no_traffic=True, faults=faults)
    sandbox.update_traffic(service, to_revisions={stable: 90, canary: 10})
    return stable, canary


def serving(sandbox: Sandbox, service: str) -> dict[str, int]:
    return {t["revision"]: t["percent"] for t in sandbox.traffic(service) if t["percent"]}


def browse(url: str, *paths: str, headers: dict[str, str] | None = None) -> dict[str, int]:
    """A user's requests to the canary: path -> status."""
    with httpx.Client(timeout=20, headers=headers) as client:
        return {p: client.get(url + p).status_code for p in paths}


def revision_log(sandbox: Sandbox, revision: str) -> str:
    return (sandbox.home / "revisions" / f"{revision}.log").read_text(errors="replace")


def test_healthy_datasette_canary_passes_the_logs_checks_and_keeps_its_traffic(sandbox, gate):
    stable, canary = canary_next_to_stable(sandbox, "shop-healthy", "datasette")
    url = sandbox.tag_url("shop-healthy", "canary")
    # a user's visit: the table page, its favicon, a page that is not there (a 404: WARNING, not ERROR)
    assert browse(url, "/shop/items", "/favicon.ico", "/shop/gone") == {"/shop/items": 200, "/favicon.ico": 200, "/shop/gone": 404}
    run = gate("datasette", "shop-healthy", url)
    assert run.returncode == 0, run
    assert LOGS_CHECKS | {"test_rollback_target[rollback-target]", "test_health[health]", "test_api[items-first-page]"} <= run.passed(), run
    assert "revgate verdict: PASS" in run.stdout, run
    assert "Cloud Logging shows the probe request's log of " + canary in run.stdout, run
    assert serving(sandbox, "shop-healthy") == {stable: 90, canary: 10}, run
    log = revision_log(sandbox, canary)
    assert "Uvicorn running on" in log and '"GET /shop/gone HTTP/1.1" 404' in log, log  # it did write to stderr


def test_datasette_plugin_raising_for_users_fails_the_logs_checks_and_rolls_the_canary_back(sandbox, gate):
    stable, canary = canary_next_to_stable(sandbox, "shop-broken", "datasette", faults=("plugin_raises",))
    url = sandbox.tag_url("shop-broken", "canary")
    # the JSON API the checklist asks for still answers right; the table page a user opens is a 500
    assert browse(url, "/shop/items.json", "/shop/items") == {"/shop/items.json": 200, "/shop/items": 500}
    run = gate("datasette", "shop-broken", url)
    assert run.returncode == 1, run
    assert run.failed() == LOGS_CHECKS, run  # only the logs saw it
    assert {"test_health[health]", "test_api[items-first-page]", "test_rollback_target[rollback-target]"} <= run.passed(), run
    assert re.search(r"\S+Z ERROR requests " + canary + r": GET http://\S+/shop/items 500", run.stdout), run
    assert re.search(r"\S+Z DEFAULT stderr " + canary + r": Traceback \(most recent call last\):", run.stdout), run
    assert "at ERROR or above of " + canary in run.stdout, run
    assert "Logs Explorer: https://console.cloud.google.com/logs/query;query=" in run.stdout, run
    assert f"?project={sandbox.project}" in run.stdout, run
    assert "RuntimeError: shop plugin: the price column cannot be formatted" in revision_log(sandbox, canary)
    assert serving(sandbox, "shop-broken") == {stable: 100}, run  # the canary's 10 % went back


def test_healthy_jupyterlab_canary_passes_with_its_own_403_warnings(sandbox, gate):
    stable, canary = canary_next_to_stable(sandbox, "lab-healthy", "jupyter")
    url = sandbox.tag_url("lab-healthy", "canary")
    assert browse(url, "/lab", "/favicon.ico", headers={"Authorization": f"token {JUPYTER_TOKEN}"}) == {
        "/lab": 200, "/favicon.ico": 200,
    }
    kernel = httpx.post(url + "/api/kernels", headers={"Authorization": f"token {JUPYTER_TOKEN}"}, json={"name": "python3"}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    channels = re.search(r"^\[\[websocket\]\]\n.*?^\]\n", (HERE / "jupyter.toml").read_text(), re.M | re.S).group(0)
    channels = channels.replace("{kernel_id}", kernel.json()["id"])
    run = gate("jupyter", "lab-healthy", url, extra=channels, env={"REVGATE_AUTH_TOKEN": JUPYTER_TOKEN})
    assert run.returncode == 0, run
    assert LOGS_CHECKS | {"test_rollback_target[rollback-target]", "test_health[health]", "test_api[status]",
                          "test_websocket[kernel-channels]"} <= run.passed(), run
    assert serving(sandbox, "lab-healthy") == {stable: 90, canary: 10}, run
    log = revision_log(sandbox, canary)
    # JupyterLab's own log lines on stderr, warnings among them: plain text, so DEFAULT in Cloud Logging
    assert "[I " in log and re.search(r"\[W [^\]]+\] 403 GET /api/status", log), log

    # A health path that needs the token: the probe request (sent without one) is refused 403, and
    # its request log still proves the logs complete; the refusal is the gate's own, not a problem.
    warnings = '[[logs]]\nid = "warnings"\nmin_severity = "WARNING"\nkinds = ["requests"]\n'
    replace = {'path = "/api"\nstatus = 200\ncontains = "version"': 'path = "/api/status"\nauth = true\ncontains = "started"'}
    run = gate("jupyter", "lab-healthy", url, extra=warnings, replace=replace, env={"REVGATE_AUTH_TOKEN": JUPYTER_TOKEN})
    assert run.returncode == 0, run
    assert LOGS_CHECKS | {"test_logs[warnings]", "test_health[health]"} <= run.passed(), run
    assert re.search(r"\[W [^\]]+\] 403 GET /api/status\?revgate-logs-probe=[0-9a-f]{32} ", revision_log(sandbox, canary))
    assert serving(sandbox, "lab-healthy") == {stable: 90, canary: 10}, run


def test_datasette_refusing_the_probes_unknown_parameter_is_not_a_problem_at_warning(sandbox, gate):
    # Datasette reads a table's query parameters as column filters: the gate's probe request
    # GET /shop/items.json?revgate-logs-probe=ID is answered 400 "no such column", a WARNING request log.
    stable, canary = canary_next_to_stable(sandbox, "shop-probe", "datasette")
    url = sandbox.tag_url("shop-probe", "canary")
    warnings = '[[logs]]\nid = "warnings"\nmin_severity = "WARNING"\nkinds = ["requests"]\n'
    replace = {'path = "/-/versions.json"\njson = { "datasette.version" = "0.65.5" }': 'path = "/shop/items.json"'}
    run = gate("datasette", "shop-probe", url, extra=warnings, replace=replace)
    assert run.returncode == 0, run
    assert LOGS_CHECKS | {"test_logs[warnings]", "test_health[health]"} <= run.passed(), run
    assert serving(sandbox, "shop-probe") == {stable: 90, canary: 10}, run
    probe = r'"GET /shop/items.json\?revgate-logs-probe=[0-9a-f]{32} HTTP/1.1" 400'
    assert re.search(probe, revision_log(sandbox, canary)), revision_log(sandbox, canary)  # it was refused


def test_only_a_4xx_answer_to_the_gates_own_probe_is_left_out():
    from revgate.logs import OWN_REFUSALS, is_own_request
    from revgate.logs_query import Entry

    def request(status: int, agent: str = "revgate", path: str = "/shop/items.json?revgate-logs-probe=ab12") -> Entry:
        return Entry(timestamp=0.0, severity="WARNING", kind="requests", text=f"GET http://h{path} {status}",
                     revision="r", status=status, user_agent=agent)

    assert is_own_request(request(400), OWN_REFUSALS)
    assert not is_own_request(request(500), OWN_REFUSALS)  # a server error answering the probe is still one
    assert not is_own_request(request(400, agent="Mozilla/5.0"), OWN_REFUSALS)  # a user's request
    assert not is_own_request(request(400, path="/shop/items.json?x=1"), OWN_REFUSALS)  # not the probe
    assert is_own_request(request(404, path="/shop/nothing.json"), OWN_REFUSALS | {404})  # an [[api]] check's expected 404


def test_a_traceback_logged_on_stdout_behind_a_200_fails_the_tracebacks_check(sandbox, gate):
    # The app catches its error, logs it with its traceback on stdout (plain text: DEFAULT, so the
    # errors check does not see it) and still answers 200: only the tracebacks deny pattern finds it.
    stable, canary = canary_next_to_stable(sandbox, "shop-swallowed", "datasette", faults=("plugin_logs_stdout",))
    url = sandbox.tag_url("shop-swallowed", "canary")
    assert browse(url, "/shop/items") == {"/shop/items": 200}
    run = gate("datasette", "shop-swallowed", url)
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[tracebacks]"}, run
    assert "test_logs[errors]" in run.passed(), run
    assert re.search(r"\S+Z DEFAULT stdout " + canary + r": Traceback \(most recent call last\):", run.stdout), run
    assert serving(sandbox, "shop-swallowed") == {stable: 100}, run


def test_a_start_up_traceback_of_every_revision_fails_tracebacks_unless_since_run(sandbox, gate):
    # JupyterLab with an enabled server extension that is not installed serves as usual but logs a
    # warning with its traceback at start, in the stable revision and the canary alike. The shipped
    # tracebacks check fails the canary (deny wins over allow, and the traceback's first line names no
    # exception); since = "run" leaves the revision's start-up out and judges what the run saw.
    same = ("missing_extension",)
    stable, canary = canary_next_to_stable(sandbox, "lab-extension", "jupyter", faults=same, stable_faults=same)
    assert "shop_missing_extension | error adding extension" in revision_log(sandbox, stable)
    url = sandbox.tag_url("lab-extension", "canary")
    assert "shop_missing_extension | error adding extension" in revision_log(sandbox, canary)
    env = {"REVGATE_AUTH_TOKEN": JUPYTER_TOKEN}
    since_run = '[[logs]]\nid = "tracebacks"\nsince = "run"\n'
    run = gate("jupyter", "lab-extension", url, env=env, replace={'[[logs]]\nid = "tracebacks"\n': since_run})
    assert run.returncode == 0, run
    assert LOGS_CHECKS <= run.passed(), run
    assert serving(sandbox, "lab-extension") == {stable: 90, canary: 10}, run
    run = gate("jupyter", "lab-extension", url, env=env)
    assert run.returncode == 1, run
    assert run.failed() == {"test_logs[tracebacks]"}, run
    assert re.search(r"\S+Z DEFAULT stderr " + canary + r": Traceback \(most recent call last\):", run.stdout), run
    assert serving(sandbox, "lab-extension") == {stable: 100}, run

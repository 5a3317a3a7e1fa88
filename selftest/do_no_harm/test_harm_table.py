"""Every harmful or misreported input of the gate, each against one healthy canary at 10 % in the
sandbox: the exit code, the one line a user reads, the JSON report's ``exit_status`` (the process's
own code), and the traffic and the known-bad marks unchanged, with no UpdateService sent.

One sandbox and one canary serve the whole table (module-scoped); the cases that stop at start
(exit 4) never reach the revision, so they cost one interpreter start each.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import run_gate
from do_no_harm.conftest import FAILED_KEY

BASE = """
[health]
ready_budget = 5
{health}

[[api]]
id = "stats"
path = "/api/memory/user/stats"
keys = {{ preferences = "object", concepts = "object", stats = "object" }}
{api}

[[websocket]]
id = "session"
path = "/ws/{{session}}"
send = {{ type = "ping", id = 1 }}
expect = {{ type = "pong", id = 1 }}
timeout = {ws_timeout}
{ws}
{more}
"""


@dataclass(frozen=True)
class Case:
    """One input; ``line`` is what the one line (stderr for exit 4, the verdict block else) must hold."""

    id: str
    code: int
    line: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    toml: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    """Files written in the test's folder first (``{tmp}`` in args names that folder)."""
    sections: tuple[str, ...] = ("tests_smoke",)
    secret: str = ""
    """A value that must appear nowhere in the output."""
    drop_token: bool = False


def _toml(**parts: str) -> str:
    values = {"health": "", "api": "", "ws": "", "ws_timeout": "2", "more": ""}
    values.update(parts)
    return BASE.format(**values)


START = [
    # tokens: header-safe, at least 8 characters, present when a check needs one (issue 20)
    Case("token-nul", 4, "the API token has a control character at character 5", args=("--auth-token-file={tmp}/token",),
         files={"token": b"abcd\x00efghijkl"}),
    Case("token-control", 4, "REVGATE_AUTH_TOKEN: the API token has a control character at character 5",
         env={"REVGATE_AUTH_TOKEN": "abcd\x07efghijkl"}),
    Case("token-newline", 4, "REVGATE_AUTH_TOKEN: the API token has a space or line break at character 9",
         env={"REVGATE_AUTH_TOKEN": "secret-a\nsecret-b"}, secret="secret-a"),
    Case("token-non-ascii", 4, "REVGATE_AUTH_TOKEN: the API token has a non-ASCII character at character 4",
         env={"REVGATE_AUTH_TOKEN": "tok\u00e9n-secret-9"}, secret="secret-9"),
    Case("token-empty-env", 4, "needs the API token (auth = true), and REVGATE_AUTH_TOKEN is set but empty",
         env={"REVGATE_AUTH_TOKEN": ""}),
    Case("token-missing", 4, "test_api[stats] needs the API token (auth = true), and none was given", drop_token=True),
    Case("token-missing-xdist", 4, "test_api[stats] needs the API token (auth = true), and none was given",
         drop_token=True, args=("-n", "2")),
    Case("token-file-empty", 4, "is empty: put the API token in it", args=("--auth-token-file={tmp}/token",),
         files={"token": b"\n"}),
    # timeouts: at least 0.1 s, pytest-timeout's too
    Case("request-timeout-1ms", 4, "request timeout 0.001 is out of range: give at least 0.1 s",
         args=("--request-timeout=0.001",)),
    Case("defaults-timeout", 4, "[defaults] key 'timeout': Input should be greater than or equal to 0.1",
         toml={"more": "[defaults]\ntimeout = 0.0001\n"}),
    Case("websocket-timeout", 4, "[[websocket]] 'session' key 'timeout': Input should be greater than or equal to 0.1",
         toml={"ws_timeout": "1e-6"}),
    Case("pytest-timeout-1", 4, "pytest-timeout's --timeout 1 s is shorter than a healthy check may take",
         args=("--timeout=1",)),
    # checklist values the gate cannot use
    Case("path-nul", 4, "[health] key 'path':", toml={"health": 'path = "/health\\u0000x"'}),
    Case("path-200kb", 4, "the path is 200001 characters long; at most 2048", toml={"health": f'path = "/{"a" * 200_000}"'}),
    Case("path-scheme-relative", 4, "starts with '//', which a browser or an HTTP client reads as another host",
         toml={"more": '[[api]]\nid = "other-host"\npath = "//evil.example/x"\n'}),
    Case("path-bad-percent", 4, "has a '%' that starts no escape", toml={"health": 'path = "/health%zz"'}),
    Case("header-not-latin-1", 4, "the value has a character outside Latin-1",
         toml={"api": 'headers = { X-Team = "\u20ac-team" }'}),
    Case("auth-scheme-non-ascii", 4, "[[api]] 'stats' key 'auth_scheme': 'Bear\u20acr' is not an auth scheme",
         toml={"api": 'auth_scheme = "Bear\u20acr"'}),
    Case("subprotocol-space", 4, "subprotocol 'chat v2' is not a token", toml={"ws": 'subprotocols = ["chat v2"]'}),
    Case("deny-everything", 4, "deny pattern '.*' matches every line", toml={"more": '[[logs]]\nid = "all"\ndeny = [".*"]\n'}),
    Case("deny-the-probe", 4, "deny pattern 'revgate' matches the gate's own probe request",
         toml={"more": '[[logs]]\nid = "probe"\ndeny = ["revgate"]\n'}),
    Case("deny-over-filter-limit", 4, "the deny patterns make a Cloud Logging filter of",
         toml={"more": '[[logs]]\nid = "long"\ndeny = [' + ", ".join(f'"error-{i:05d}-[a-z]+"' for i in range(500)) + "]\n"}),
    Case("selector-invalid", 4, "page selector 'div[[' cannot be parsed by the browser's selector engine",
         toml={"more": '[[page]]\nid = "home"\npath = "/"\nselectors = ["div[["]\n'},
         sections=("tests_frontend",), args=("--output={tmp}/browser",)),
    Case("cpu-1e12", 4, "[revision] key 'cpu': 1000000000000.0 is not a CPU limit Cloud Run allows",
         toml={"more": "[revision]\ncpu = 1e12\n"}),
    # report paths: distinct from each other and from every input, writable
    Case("report-is-checklist", 4, "--report-json {tmp}/checklist.toml is the checklist", args=("--report-json={tmp}/checklist.toml",)),
    Case("report-is-token-file", 4, "--report-json {tmp}/token is --auth-token-file",
         args=("--auth-token-file={tmp}/token", "--report-json={tmp}/token"), files={"token": b"sandbox-token\n"}),
    Case("report-is-rollback-report", 4, "is also --report-json: each report needs a file of its own",
         args=("--report-json={tmp}/same.json", "--rollback-report={tmp}/same.json")),
    Case("junit-in-proc", 4, "--junitxml /proc/x: the directory /proc is not writable", args=("--junit-xml=/proc/x",)),
    # pytest's modes that run nothing, and other misreports
    Case("collect-only", 4, "--collect-only runs no check, so the gate gives no verdict", args=("--collect-only",)),
    Case("setup-only", 4, "--setup-only runs no check", args=("--setup-only",)),
    Case("setup-plan", 4, "--setup-plan runs no check", args=("--setup-plan",)),
    Case("fixtures", 4, "--fixtures runs no check", args=("--fixtures",)),
    Case("k-selects-nothing", 4, "-k 'no_such_check' selects none of the 4 checks", args=("-k", "no_such_check")),
    Case("maxfail-negative", 4, "--maxfail -1: give 0 (no limit, the default)", args=("--maxfail=-1",)),
    Case("no-revgate-plugin", 4, "-p no:revgate disables revgate's own plugin", args=("-p", "no:revgate")),
    Case("promote-empty", 4, "--promote is empty", args=("--promote=",)),
]

@pytest.fixture(scope="module")
def healthy(sandbox: Any) -> dict[str, Any]:
    """One healthy canary at 10 % behind its tag, for the whole table."""
    service = "dnh-table-" + hashlib.sha1(__file__.encode()).hexdigest()[:6]
    stable = sandbox.deploy(service)
    candidate = sandbox.deploy(service, tag="canary", no_traffic=True)
    sandbox.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    return {"service": service, "stable": stable, "candidate": candidate, "url": sandbox.tag_url(service, "canary")}


def _state(sb: Any, service: str) -> tuple[Any, str | None]:
    svc = sb.get_service(service)
    return sorted((t["revision"], t["percent"], t["tag"]) for t in sb.traffic(service)), dict(svc.annotations).get(FAILED_KEY)


def _run(sb: Any, healthy: dict[str, Any], tmp_path: Path, case: Case) -> Any:
    for name, data in case.files.items():
        (tmp_path / name).write_bytes(data)
    checklist = tmp_path / "checklist.toml"
    checklist.write_text(_toml(**case.toml))
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    report = tmp_path / "report.json"
    if not any(a.startswith(("--report-json", "--rollback-report")) for a in args):
        args.append(f"--report-json={report}")
    env = dict(sb.env)
    if case.drop_token:
        env.pop("REVGATE_AUTH_TOKEN", None)
    env.update(case.env)
    full = [*case.sections, f"--revision-url={healthy['url']}", f"--service={healthy['service']}",
            f"--checklist={checklist}", *args]
    return run_gate(full, tmp_path=tmp_path, env=env, timeout=120), report


@pytest.mark.parametrize("case", START, ids=[c.id for c in START])
def test_bad_input_stops_at_start_and_changes_nothing(sb, healthy, tmp_path, case):
    before = _state(sb, healthy["service"])
    sb.reset_calls()
    run, report = _run(sb, healthy, tmp_path, case)

    run.assert_usage_error(case.line.replace("{tmp}", str(tmp_path)))
    assert _state(sb, healthy["service"]) == before
    assert sb.calls("UpdateService") == 0
    if case.secret:
        assert case.secret not in run.output
    if report.exists():  # written whenever the gate got as far as its reports
        data = json.loads(report.read_text())
        assert data["exit_status"] == 4, data
        assert data["verdict"] == "ERROR", data
        (traffic,) = data["traffic"]
        assert "no --service" not in traffic, traffic  # --service was given
        assert traffic in (
            "traffic: not changed (the gate stopped before it read the service)",
            "rollback (not-needed): no gating check failed: traffic left as it was",
        ), traffic


def test_a_rotated_token_is_refused_by_the_serving_revision_too_and_not_verified(sb, healthy, tmp_path):
    before = _state(sb, healthy["service"])
    case = Case(
        "rotated-token", 6, "", env={"REVGATE_AUTH_TOKEN": "rotated-secret-0001"},
        toml={"health": 'path = "/api/memory/user/stats"\nauth = true'},  # a [health] that needs the token too
    )
    run, report = _run(sb, healthy, tmp_path, case)

    assert run.returncode == 6, run
    for check in ("test_api[stats]", "test_health[health]"):
        line = next(line for line in run.stdout.splitlines() if line.startswith(f"  NOT VERIFIED {check}"))
        assert "the token is refused by the serving revision as well" in line, line
        assert "the service URL (serving " + healthy["stable"] in line, line
    assert "rotated-secret-0001" not in run.output
    assert _state(sb, healthy["service"]) == before
    assert sb.calls("UpdateService") == 0
    data = json.loads(report.read_text())
    assert (data["verdict"], data["exit_status"]) == ("NOT VERIFIED", 6)


def test_the_healthy_canary_passes_with_the_same_gate_and_reports_its_exit_status(sb, healthy, tmp_path):
    before = _state(sb, healthy["service"])
    run, report = _run(sb, healthy, tmp_path, Case("healthy", 0, "", args=("--maxfail=0",)))

    assert run.returncode == 0, run  # --maxfail 0 is pytest's "no limit"
    assert "revgate verdict: PASS" in run.stdout, run
    assert "PytestAssertRewriteWarning" not in run.output
    assert _state(sb, healthy["service"]) == before
    data = json.loads(report.read_text())
    assert (data["verdict"], data["exit_status"]) == ("PASS", 0)



def test_pytest_timeout_ending_a_check_is_the_gate_s_own_timing_not_verified(sb, healthy, tmp_path):
    """--timeout above every check's own timeout, but below the metric check's wait for data: the
    timeout ends the check, which is the gate's timing, not the revision's answer (it was a FAIL)."""
    before = _state(sb, healthy["service"])
    case = Case(
        "pytest-timeout-fires", 6, "", sections=("tests_metrics",),
        toml={"more": "[metrics]\nmin_requests = 20\nmax_error_rate = 0.05\n"},
        args=("--timeout=31", "--metrics-timeout=90", "--warmup-requests=0"),
    )
    run, report = _run(sb, healthy, tmp_path, case)

    assert run.returncode == 6, run
    line = next(line for line in run.stdout.splitlines() if line.startswith("  NOT VERIFIED test_metric[error-rate]"))
    assert "the gate's own time limit ended the check (Timeout (>31.0s) from pytest-timeout.)" in line, line
    assert _state(sb, healthy["service"]) == before
    assert sb.calls("UpdateService") == 0
    assert json.loads(report.read_text())["exit_status"] == 6


def test_the_admin_api_not_answering_at_start_is_not_verified_not_bad_input(sb, healthy, tmp_path):
    before = _state(sb, healthy["service"])
    sb.inject("GetService", "UNAVAILABLE", -1)  # retried within the start's bound, then given up
    try:
        run, report = _run(sb, healthy, tmp_path, Case("admin-api-down", 6, ""))
    finally:
        sb.inject("GetService", "UNAVAILABLE", 0)

    assert run.returncode == 6, run
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "NOT VERIFIED: the Cloud Run Admin API does not answer for" in lines[0], run
    assert "Traceback" not in run.output
    assert _state(sb, healthy["service"]) == before
    assert sb.calls("UpdateService") == 0
    data = json.loads(report.read_text())
    assert (data["verdict"], data["exit_status"]) == ("NOT VERIFIED", 6), data

"""Every input bounded and checked before any check runs: exit 4, one line on stderr, no traceback,
no hang, nothing changed (no request to the revision, no UpdateService), no secret repeated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import SAMPLE_TOKEN

GOOD = """
[health]
ready_budget = 1
"""


@pytest.fixture
def good_checklist(tmp_path: Path) -> Path:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    return path


def _run(run_suite, *args: str, env=None):  # noqa: ANN001, ANN202
    return run_suite("tests_smoke", *args, env={"REVGATE_AUTH_TOKEN": SAMPLE_TOKEN, **(env or {})}, timeout=60)


@pytest.mark.parametrize(
    "value, fragment",
    [("nan", "not a finite number"), ("inf", "not a finite number"), ("1e308", "out of range"), ("0", "out of range"), ("-3", "out of range")],
)
def test_request_timeout_out_of_range(run_suite, good_checklist, value, fragment):
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", f"--request-timeout={value}")
    run.assert_usage_error("request timeout", fragment)


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
        ("http://example.com:99999", "is not a valid URL"),
        ("http://example.com:0", "invalid port"),
        ("http://bad_host-.example", "not a valid host name"),
        ("http://" + "a" * 100_000 + ".example", "characters long"),
        ("http://exa mple.com", "spaces or control characters"),
    ],
    ids=["ipv6-unclosed", "port-too-big", "port-0", "bad-host", "100k-chars", "space"],
)
def test_bad_urls(run_suite, good_checklist, url, fragment):
    run = _run(run_suite, f"--revision-url={url}", f"--checklist={good_checklist}")
    run.assert_usage_error("--revision-url", fragment)
    assert len(run.stderr) < 600


def test_url_credentials_are_refused_and_never_repeated(run_suite, good_checklist):
    run = _run(run_suite, "--revision-url=http://admin:hunter2-secret@127.0.0.1:9", f"--checklist={good_checklist}")
    run.assert_usage_error("--revision-url has credentials in it (http://***@127.0.0.1:9)")
    assert "hunter2-secret" not in run.output
    assert "admin" not in run.output


def _nested(depth: int) -> str:
    return "[health]\nready_budget = 1\nx = " + "[" * depth + "1" + "]" * depth + "\n"


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("latin-1".encode() + b"\n# caf\xe9\n[health]\n", "is not UTF-8 text (byte 14, line 2)"),
        (b"\x00\x01\x02\xff\xfe binary", "is not UTF-8 text"),
        (_nested(100_000).encode(), "nests arrays or tables 100000 deep"),
        (_nested(40).encode(), "nests arrays or tables more than 16 deep"),
        (b"", "has no checks"),
        (b"[defaults]\ntimeout = 5\n", "has no checks"),
        (b"# " + b"x" * (2 * 1024 * 1024), "bytes; at most 1048576"),
    ],
    ids=["latin-1", "binary", "nested-100k", "nested-40", "empty", "no-checks", "2MB"],
)
def test_bad_checklists(run_suite, tmp_path, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={path}")
    run.assert_usage_error(fragment)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_special_files_as_checklist_or_token_never_block(run_suite, tmp_path, good_checklist, kind):
    if kind == "fifo":
        special = tmp_path / "fifo"
        os.mkfifo(special)
    elif kind == "dev-zero":
        special = Path("/dev/zero")
    else:
        special = tmp_path
    word = "a directory" if kind == "directory" else "not a regular file"
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={special}")
    run.assert_usage_error("checklist", word)
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", f"--auth-token-file={special}")
    run.assert_usage_error("--auth-token-file", word)


def test_a_50mb_or_binary_token_file_is_refused(run_suite, tmp_path, good_checklist):
    big = tmp_path / "big-token"
    with open(big, "wb") as out:
        out.truncate(50 * 1024 * 1024)
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", f"--auth-token-file={big}")
    run.assert_usage_error("--auth-token-file", "at most 65536")
    binary = tmp_path / "binary-token"
    binary.write_bytes(b"\xff\xfe\x00token-bytes")
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", f"--auth-token-file={binary}")
    run.assert_usage_error("--auth-token-file", "is not UTF-8 text")


@pytest.mark.parametrize("kind", ["directory", "dev-full", "missing-folder", "fifo", "symlink"])
def test_report_paths_are_checked_at_start(run_suite, tmp_path, good_checklist, kind):
    target = {
        "directory": tmp_path,
        "dev-full": Path("/dev/full"),
        "missing-folder": tmp_path / "a-file" / "nope" / "report.json",  # a folder that cannot be created
        "fifo": tmp_path / "fifo",
        "symlink": tmp_path / "link.json",
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)
    if kind == "missing-folder":
        (tmp_path / "a-file").write_text("")
    if kind == "symlink":
        (tmp_path / "real.json").write_text("{}")
        target.symlink_to(tmp_path / "real.json")
    fragment = {
        "directory": "is a directory",
        "dev-full": "is a special file",
        "missing-folder": "cannot create the directory",
        "fifo": "is a special file",
        "symlink": "is a symbolic link",
    }[kind]
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", f"--report-json={target}")
    run.assert_usage_error("--report-json", fragment)
    if kind == "fifo":
        assert (tmp_path / "fifo").is_fifo()  # never replaced by a regular file
    if kind == "symlink":
        assert target.is_symlink() and (tmp_path / "real.json").read_text() == "{}"


def test_empty_service_is_refused_not_silently_off(run_suite, good_checklist):
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", "--service=")
    run.assert_usage_error("--service is empty")


def test_a_path_in_a_cloud_run_url_is_refused_before_any_check(sb, run_suite, service, canary, tmp_path, good_checklist, traffic):
    stable, candidate, url = canary()
    before = traffic(service)
    sb.reset_calls()
    run = run_suite(
        "tests_smoke", f"--revision-url={url}/api/v1", f"--service={service}", f"--checklist={good_checklist}",
        env={**sb.env, "REVGATE_AUTH_TOKEN": SAMPLE_TOKEN}, timeout=60,
    )
    run.assert_usage_error("has a path (/api/v1): Cloud Run serves a revision at the root of its URL")
    assert traffic(service) == before
    assert sb.calls("UpdateService") == 0


def test_a_fifo_as_rollback_record_is_refused_and_kept(sb, run_suite, service, canary, tmp_path, good_checklist, traffic):
    stable, candidate, url = canary()
    fifo = tmp_path / "record.fifo"
    os.mkfifo(fifo)
    run = run_suite(
        "tests_smoke", f"--revision-url={url}", f"--service={service}", f"--checklist={good_checklist}",
        f"--rollback-report={fifo}", env={**sb.env, "REVGATE_AUTH_TOKEN": SAMPLE_TOKEN}, timeout=60,
    )
    run.assert_usage_error("--rollback-report", "is a special file")
    assert fifo.is_fifo()
    assert traffic(service).split == {stable: 90, candidate: 10}


@pytest.mark.parametrize(
    "arg, fragment",
    [
        ("--request-timeout=abc", "argument --request-timeout: invalid float value: 'abc'"),
        ("--rollback=sometimes", "argument --rollback: invalid choice: 'sometimes'"),
    ],
)
def test_argparse_errors_of_revgate_options_are_one_line(run_suite, good_checklist, arg, fragment):
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", arg)
    run.assert_usage_error(fragment)
    assert "usage:" not in run.stderr


@pytest.mark.parametrize(
    "toml, fragment",
    [
        ("[defaults]\ntimeout = inf\n[health]\n", "[defaults] key 'timeout': Input should be less than or equal to 600 (got inf)"),
        ("[defaults]\ntimeout = nan\n[health]\n", "[defaults] key 'timeout'"),
        ("[health]\nready_budget = 1e308\n", "[health] key 'ready_budget': Input should be less than or equal to 3600"),
    ],
    ids=["timeout-inf", "timeout-nan", "budget-1e308"],
)
def test_checklist_numbers_are_finite_and_bounded(run_suite, tmp_path, toml, fragment):
    path = tmp_path / "numbers.toml"
    path.write_text(toml)
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={path}")
    run.assert_usage_error(fragment)


@pytest.mark.parametrize(
    "arg, fragment",
    [
        ("--metrics-window=99999999999", "--metrics-window 99999999999 must be at most 86400"),
        ("--metrics-timeout=inf", "--metrics-timeout inf is not a finite number"),
        ("--metrics-timeout=nan", "--metrics-timeout nan is not a finite number"),
        ("--warmup-requests=1000000000", "--warmup-requests 1000000000 must be at most 10000"),
    ],
    ids=["window-huge", "timeout-inf", "timeout-nan", "warmup-1e9"],
)
def test_metric_options_are_finite_and_bounded(run_suite, tmp_path, arg, fragment):
    path = tmp_path / "metrics.toml"
    path.write_text("[health]\nready_budget = 1\n[metrics]\nmax_error_rate = 0.05\n")
    run = run_suite("tests_metrics", "--revision-url=http://127.0.0.1:9", f"--checklist={path}", arg, timeout=60)
    run.assert_usage_error(fragment)


def test_a_fifo_as_junit_xml_is_refused_at_start(run_suite, tmp_path, good_checklist):
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    run = _run(run_suite, "--revision-url=http://127.0.0.1:9", f"--checklist={good_checklist}", f"--junitxml={fifo}")
    run.assert_usage_error("--junitxml", "is a special file")
    assert fifo.is_fifo()

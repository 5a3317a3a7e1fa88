"""Notifications from real gate runs against the sandbox: what arrives, in which order, and that a
webhook that cannot be reached changes nothing the gate decides."""

from __future__ import annotations

import json

from notify.conftest import SECRET_PATH, SECRET_TOKEN, assert_no_webhook_secret, split_of

GITHUB = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_RUN_ID": "4242",
}
RUN_LINK = "https://github.com/acme/shop/actions/runs/4242"


def test_slack_gets_rollback_then_end_with_the_ci_link(sandbox, service, canary, gate, receiver):
    stable, candidate, url = canary()
    hook = receiver("ok")

    result = gate(service, url, notify='[notify]\nurls_env = "SHOP_SLACK"\nformat = "slack"',
                  env={"SHOP_SLACK": hook.url, **GITHUB})

    assert result.run.returncode == 1, result.run
    assert split_of(sandbox, service) == {stable: 100}
    assert len(hook.requests) == 2, hook.requests
    started, finished = hook.bodies()
    assert hook.requests[0].at <= hook.requests[1].at
    for body in (started, finished):
        assert set(body) == {"text", "blocks"}
        assert [b["type"] for b in body["blocks"]] == ["section", "section"]
        assert all(b["text"]["type"] == "mrkdwn" for b in body["blocks"])
        assert RUN_LINK in body["text"]
    assert hook.requests[0].path == f"{SECRET_PATH}?token={SECRET_TOKEN}"
    assert hook.requests[0].headers["content-type"].startswith("application/json")
    assert f"rollback of {service}: {candidate} failed test_api[stats]" in started["text"]
    assert "failed: test_api[stats]:" in started["text"] and "500" in started["text"]
    assert f"traffic: {stable} 90 %, {candidate} 10 % → {stable} 100 %" in started["text"]
    assert "`test_api[stats]`" in started["blocks"][1]["text"]["text"]
    assert finished["text"].startswith(f"revgate FAIL: {candidate} ({service})")
    assert "FAILED test_api[stats]" in finished["text"]
    assert f"traffic: {stable} 90 %, {candidate} 10 % → {stable} 100 %" in finished["text"]
    assert "rollback done" in finished["text"]
    records = result.report["notifications"]
    assert [(r["event"], r["status"], r["format"]) for r in records] == [
        ("rollback-started", "delivered", "slack"), ("run-finished", "delivered", "slack")
    ]
    assert all(r["url"].endswith("/***") for r in records)
    assert "revgate notifications: 2 delivered (rollback-started, run-finished)" in result.output
    assert "revgate notify: http://127.0.0.1:" in result.output  # the header, redacted
    assert_no_webhook_secret(result)


def test_google_chat_gets_both_messages_as_text(sandbox, service, canary, gate, receiver):
    stable, candidate, url = canary()
    hook = receiver("ok")

    result = gate(service, url, notify='[notify]\nurls_env = "SHOP_CHAT"\nformat = "google-chat"',
                  env={"SHOP_CHAT": hook.url})

    assert result.run.returncode == 1, result.run
    started, finished = hook.bodies()
    assert set(started) == {"text"} and set(finished) == {"text"}
    assert started["text"].startswith(f"*revgate: rollback of {service}")
    assert "`test_api[stats]`" in started["text"]
    assert finished["text"].startswith(f"*revgate FAIL: {candidate}")
    assert "CI run" not in finished["text"]  # no CI variables: no link
    assert_no_webhook_secret(result)


def test_json_fields_and_exit_code_agree(sandbox, service, canary, gate, receiver):
    stable, candidate, url = canary()
    hook = receiver("ok")

    result = gate(service, url, "--notify", hook.url)  # the flag alone; no [notify] section

    assert result.run.returncode == 1, result.run
    started, finished = hook.bodies()
    assert started["schema"] == finished["schema"] == "revgate.notification/1"
    assert started["event"] == "rollback-started" and finished["event"] == "run-finished"
    assert started["trigger"]["test"].endswith("test_api[stats]")
    assert started["traffic"]["before"] == {stable: 90, candidate: 10}
    assert started["traffic"]["planned"] == {stable: 100}
    assert finished["verdict"] == "FAIL" and finished["exit_status"] == result.run.returncode == 1
    assert finished["verdict"] == result.report["verdict"]
    assert finished["traffic"] == {"before": {stable: 90, candidate: 10}, "planned": None, "after": {stable: 100}}
    assert finished["rollback"]["status"] == "done"
    assert [f["test"] for f in finished["failed"]] == [c["id"] for c in result.report["checks"] if c["outcome"] == "failed"]
    assert finished["target"]["revisions"] == [candidate]
    assert_no_webhook_secret(result)


def test_pass_sends_only_the_end_message(sandbox, service, canary, gate, receiver):
    stable, candidate, url = canary(faults=())
    hook = receiver("ok")

    result = gate(service, url, env={"REVGATE_NOTIFY": hook.url, **GITHUB})

    assert result.run.returncode == 0, result.run
    assert split_of(sandbox, service) == {stable: 90, candidate: 10}
    (finished,) = hook.bodies()
    assert finished["event"] == "run-finished" and finished["verdict"] == "PASS" and finished["exit_status"] == 0
    assert finished["run_url"] == RUN_LINK
    assert f"traffic: {stable} 90 %, {candidate} 10 % (not changed by this gate)" in finished["text"]


def test_only_on_fail_keeps_a_pass_quiet(sandbox, service, canary, gate, receiver):
    stable, candidate, url = canary(faults=())
    hook = receiver("ok")

    result = gate(service, url, notify='[notify]\nurls_env = "HOOK"\nonly_on = ["FAIL", "NOT VERIFIED"]', env={"HOOK": hook.url})

    assert result.run.returncode == 0, result.run
    assert hook.requests == []
    assert result.report["notifications"] == []


def test_dead_webhooks_change_nothing(sandbox, service, canary, gate, receiver, refused_url):
    """Connection refused, 500 every time, and a receiver that hangs: same verdict, exit code and traffic
    as a run without notifications, one summary line, and a bounded delay."""
    stable, candidate, url = canary()
    failing, hanging = receiver("fail"), receiver("hang")
    notify = '[notify]\nurls_env = "HOOKS"\ntimeout = 1\nretries = 1'

    result = gate(service, url, notify=notify, env={"HOOKS": f"{refused_url}, {failing.url} {hanging.url}"})

    assert result.run.returncode == 1, result.run
    assert split_of(sandbox, service) == {stable: 100}
    assert result.report["verdict"] == "FAIL"
    assert result.report["rollback"]["status"] == "done"
    lines = [line for line in result.output.splitlines() if line.startswith("revgate notifications:")]
    assert len(lines) == 1, result.output
    assert "6 of 6 NOT delivered" in lines[0]
    assert "connection refused" in lines[0] and "HTTP 500" in lines[0]
    assert "Traceback" not in result.output
    records = result.report["notifications"]
    assert {r["status"] for r in records} == {"failed"}
    assert [r["attempts"] for r in records if r["error"].startswith("HTTP 500")] == [2, 2]  # retried once each
    assert len(failing.requests) == 4
    # each message is bounded by (retries + 1) * timeout + 0.5 s of pause: 2.5 s
    assert all(r["seconds"] <= 3.2 for r in records), records
    assert_no_webhook_secret(result)

    # the same canary again, without notifications: the gate decides the same
    sandbox.update_traffic(service, to_revisions={stable: 90, candidate: 10})
    plain = gate(service, url)
    assert plain.run.returncode == result.run.returncode
    assert plain.report["verdict"] == result.report["verdict"]
    assert split_of(sandbox, service) == {stable: 100}
    assert plain.report["notifications"] is None
    assert result.seconds - plain.seconds < 9, (result.seconds, plain.seconds)


def test_bad_notify_url_is_one_line_exit_4_and_no_traffic_change(sandbox, service, canary, gate):
    stable, candidate, url = canary()

    result = gate(service, url, "--notify", "ftp://hooks.example.com/s3cretWebhookPath9f2c")

    result.run.assert_usage_error("--notify #1", "not an http(s) URL", "scheme 'ftp'")
    assert split_of(sandbox, service) == {stable: 90, candidate: 10}
    assert "s3cretWebhookPath9f2c" not in result.output

    nohost = gate(service, url, env={"REVGATE_NOTIFY": "https:///services/x"})
    nohost.run.assert_usage_error("REVGATE_NOTIFY URL #1", "no host")
    assert split_of(sandbox, service) == {stable: 90, candidate: 10}


def test_cli_beats_env_beats_checklist(sandbox, service, canary, gate, receiver):
    stable, candidate, url = canary(faults=())
    cli, env, listed = receiver("ok"), receiver("ok"), receiver("ok")

    result = gate(service, url, "--notify", cli.url, notify='[notify]\nurls_env = "LISTED"',
                  env={"REVGATE_NOTIFY": env.url, "LISTED": listed.url})

    assert result.run.returncode == 0, result.run
    assert (len(cli.requests), len(env.requests), len(listed.requests)) == (1, 0, 0)
    assert "from --notify" in result.output
    assert json.loads(json.dumps(cli.bodies()[0]))["verdict"] == "PASS"


def test_library_loggers_at_debug_show_no_webhook_url_or_token(sandbox, service, canary, gate, receiver, tmp_path):
    """httpx logs each request's full URL at INFO: with --log-cli-level DEBUG and a DEBUG log file, the
    webhook's secret path and token, and the API token, appear nowhere; the records themselves do."""
    from conftest import SAMPLE_TOKEN

    stable, candidate, url = canary()
    hook = receiver("ok")
    log_file = tmp_path / "gate.log"
    result = gate(service, url, "--log-cli-level=DEBUG", f"--log-file={log_file}", "--log-file-level=DEBUG",
                  notify='[notify]\nurls_env = "SHOP_SLACK"', env={"SHOP_SLACK": hook.url})
    assert result.run.returncode == 1, result.run
    assert split_of(sandbox, service) == {stable: 100}
    assert len(hook.requests) == 2, hook.requests  # both messages went out
    logged = log_file.read_text()
    assert 'HTTP Request: POST *** "HTTP/1.0 200 OK"' in logged, logged[-3000:]  # httpx's record, scrubbed
    assert 'HTTP Request: POST *** "HTTP/1.0 200 OK"' in result.output, result.run
    assert_no_webhook_secret(result, logged)
    for text in (result.run.stdout, result.run.stderr, logged):
        assert SAMPLE_TOKEN not in text

"""The payload builders, the URL checks and the delivery, in-process against real loopback receivers."""

from __future__ import annotations

import time

import pytest

from revgate.errors import ConfigError
from revgate.notify import Webhook, check_webhook_url, deliver, final_verdict, secret_parts
from revgate.notify_formats import Message, ci_run_url, detect_format, payload, redact_url

from notify.conftest import SECRET_PATH, SECRET_TOKEN

MESSAGE = Message(
    event="run-finished",
    title="revgate FAIL: shop-00002 (shop)",
    lines=["FAILED test_api[stats]: expected 200, answered 500 & <html>", "traffic: shop-00001 100 %"],
    code=["test_api[stats]"],
    data={"verdict": "FAIL", "exit_status": 1},
)


def test_slack_body_has_fallback_text_and_mrkdwn_sections_escaped():
    body = payload(MESSAGE, "slack")
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("revgate FAIL: shop-00002 (shop)\nFAILED test_api[stats]")
    assert "&amp; &lt;html&gt;" in body["text"] and "<html>" not in body["text"]
    title, rest = body["blocks"]
    assert title == {"type": "section", "text": {"type": "mrkdwn", "text": "*revgate FAIL: shop-00002 (shop)*"}}
    assert rest["text"]["text"].startswith("FAILED `test_api[stats]`: expected 200")


def test_google_chat_body_is_text_with_bold_title_and_code_ids():
    body = payload(MESSAGE, "google-chat")
    assert set(body) == {"text"}
    assert body["text"].splitlines()[0] == "*revgate FAIL: shop-00002 (shop)*"
    assert "FAILED `test_api[stats]`: expected 200, answered 500 & <html>" in body["text"]


def test_json_body_follows_the_schema():
    body = payload(MESSAGE, "json")
    assert body["schema"] == "revgate.notification/1"
    assert body["event"] == "run-finished" and body["verdict"] == "FAIL" and body["exit_status"] == 1
    assert body["text"].startswith("revgate FAIL")


def test_long_lines_and_messages_are_cut():
    long = Message(event="run-finished", title="t", lines=["x" * 5000] * 40)
    assert all(len(line) <= 200 for line in payload(long, "json")["text"].splitlines())
    assert all(len(b["text"]["text"]) <= 3000 for b in payload(long, "slack")["blocks"])
    assert len(payload(long, "google-chat")["text"]) <= 4096


@pytest.mark.parametrize(
    ("url", "configured", "expected"),
    [
        ("https://hooks.slack.com/services/T/B/X", "auto", "slack"),
        ("https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t", "auto", "google-chat"),
        ("https://example.com/hook", "auto", "json"),
        ("http://127.0.0.1:9/hook", "slack", "slack"),
        ("https://hooks.slack.com/services/T/B/X", "json", "json"),
    ],
)
def test_format_by_host_or_as_configured(url, configured, expected):
    assert detect_format(url, configured) == expected


def test_redacted_form_keeps_scheme_host_and_port_only():
    assert redact_url("https://hooks.slack.com/services/T/B/XXXX") == "https://hooks.slack.com/***"
    assert redact_url("http://127.0.0.1:8080/a?token=t") == "http://127.0.0.1:8080/***"
    parts = secret_parts(f"https://chat.googleapis.com{SECRET_PATH}?key=AIzaKEY12345&token={SECRET_TOKEN}")
    assert SECRET_TOKEN in parts and "AIzaKEY12345" in parts and any(p.startswith(SECRET_PATH) for p in parts)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("ftp://hooks.example.com/x", "scheme 'ftp'"),
        ("hooks.slack.com/services/x", "not an http(s) URL"),
        ("https:///services/x", "no host"),
        ("https://hooks.slack.com/a b", "spaces"),
        ("https://hooks.slack.com:99999/x", "not a valid URL"),
        ("", "empty"),
    ],
)
def test_bad_url_is_one_line_without_the_url(raw, fragment):
    with pytest.raises(ConfigError) as info:
        check_webhook_url(raw, "--notify #1")
    text = str(info.value)
    assert text.startswith("--notify #1: ") and fragment in text and "\n" not in text
    assert "services" not in text


def test_ci_link_from_github_cloud_build_or_override():
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"}
    assert ci_run_url(github) == "https://github.com/o/r/actions/runs/7"
    build = {"BUILD_ID": "b-1", "PROJECT_ID": "p", "LOCATION": "europe-west1"}
    assert ci_run_url(build) == "https://console.cloud.google.com/cloud-build/builds;region=europe-west1/b-1?project=p"
    assert ci_run_url({"BUILD_ID": "b-1", "PROJECT_ID": "p"}) == "https://console.cloud.google.com/cloud-build/builds/b-1?project=p"
    assert ci_run_url({**github, "REVGATE_RUN_URL": "https://ci.example/run/3"}) == "https://ci.example/run/3"
    assert ci_run_url({}) is None


def test_verdict_follows_the_exit_code():
    assert [final_verdict(code, "FAIL") for code in (0, 1, 2, 6, 3)] == ["PASS", "FAIL", "FAIL", "NOT VERIFIED", "ERROR"]
    assert final_verdict(2, "INTERRUPTED") == "INTERRUPTED"
    assert final_verdict(1, "PASS") == "FAIL"  # checks passed, the promotion failed: exit 1


def _send(url: str, **kwargs):
    options = {"event": "run-finished", "timeout": 1.0, "retries": 2, "budget": 10.0} | kwargs
    return deliver(Webhook(url=url, format="json"), b'{"text": "x"}', **options)


def test_delivered_once_on_200(receiver):
    hook = receiver("ok")
    record = _send(hook.url)
    assert (record.status, record.http_status, record.attempts) == ("delivered", 200, 1)
    assert len(hook.requests) == 1


def test_5xx_is_retried_then_reported(receiver):
    hook = receiver("fail")
    record = _send(hook.url)
    assert (record.status, record.attempts) == ("failed", 3)
    assert record.error == "HTTP 500: rollup_error"
    assert len(hook.requests) == 3


def test_4xx_is_not_retried(receiver):
    hook = receiver("refuse")
    record = _send(hook.url)
    assert (record.status, record.attempts, record.http_status) == ("failed", 1, 400)
    assert len(hook.requests) == 1


def test_refused_connection_is_retried_and_bounded(refused_url):
    started = time.monotonic()
    record = _send(refused_url, retries=1)
    assert (record.status, record.attempts, record.error) == ("failed", 2, "connection refused")
    assert time.monotonic() - started < 2


def test_hanging_receiver_is_given_up_within_the_budget(receiver):
    hook = receiver("hang")
    started = time.monotonic()
    record = _send(hook.url, timeout=0.5, retries=1, budget=1.5)
    took = time.monotonic() - started
    assert record.status == "failed" and "no answer in time" in record.error
    assert took < 2.0, took
    assert SECRET_TOKEN not in record.error and SECRET_PATH not in record.error


def test_slack_retry_after_is_honoured_within_the_bound(receiver):
    hook = receiver("limited:1")
    record = _send(hook.url, retries=2, budget=10.0)
    assert (record.status, record.attempts) == ("delivered", 2), record
    first, second = hook.requests
    assert second.at - first.at >= 1.0, (first.at, second.at)  # waited what the 429 asked, not the 0.5 s backoff


def test_a_retry_after_past_the_bound_gives_up_at_once(receiver):
    hook = receiver("throttled:60")
    started = time.monotonic()
    record = _send(hook.url, retries=2, budget=10.0)
    assert (record.status, record.attempts, record.http_status) == ("failed", 1, 429), record
    assert "asked to retry after 60 s, past the message's bound of 10 s" in record.error, record
    assert time.monotonic() - started < 2  # no hammering, no sleeping past the bound
    assert len(hook.requests) == 1


def test_retry_after_reads_seconds_and_http_dates():
    from email.utils import formatdate

    from revgate.notify import retry_after

    assert retry_after("30") == 30.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = retry_after(formatdate(time.time() + 20, usegmt=True))
    assert later is not None and 18 <= later <= 21, later

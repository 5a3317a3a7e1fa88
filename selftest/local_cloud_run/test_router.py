"""The router: weighted split, tag URLs, WebSocket, and the Monitoring data it records."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx
from google.cloud import monitoring_v3
from websockets.sync.client import connect

from sandbox.control import Sandbox
from sandbox.monitoring import visible_at


def _revisions_seen(url: str, count: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=5) as http:
        for _ in range(count):
            response = http.get("/health")
            assert response.status_code == 200
            seen[response.headers["x-revision"]] += 1
    return seen


def test_ten_percent_split_lands_within_three_points(sandbox: Sandbox, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    sandbox.update_traffic(name, to_revisions={first: 90, second: 10})
    seen = _revisions_seen(sandbox.service_url(name), 2000)
    assert set(seen) == {first, second}
    assert 7.0 <= 100 * seen[second] / 2000 <= 13.0, seen


def test_tag_url_only_reaches_its_revision(sandbox: Sandbox, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    sandbox.update_traffic(name, to_revisions={first: 50, second: 50})
    assert _revisions_seen(sandbox.tag_url(name, "next"), 200) == Counter({second: 200})
    assert set(_revisions_seen(sandbox.service_url(name), 100)) == {first, second}


def test_update_traffic_to_tags_and_latest(sandbox: Sandbox, fresh_service: tuple[str, str, str]) -> None:
    name, first, second = fresh_service
    sandbox.update_traffic(name, to_tags={"next": 100})
    assert _revisions_seen(sandbox.service_url(name), 20) == Counter({second: 20})
    assert [(t["type"], t["revision"], t["percent"], t["tag"]) for t in sandbox.traffic(name)] == [
        ("REVISION", second, 100, "next")
    ]
    sandbox.update_traffic(name, to_revisions={first: 100})
    third = sandbox.deploy(name)  # gcloud deploy: LATEST 100 %, tags kept
    assert [(t["type"], t["revision"], t["percent"], t["tag"]) for t in sandbox.traffic(name)] == [
        ("LATEST", third, 100, ""),
        ("REVISION", second, 0, "next"),
    ]
    assert _revisions_seen(sandbox.service_url(name), 20) == Counter({third: 20})


def test_websocket_through_the_service_and_tag_urls(sandbox: Sandbox, two_revisions: tuple[str, str, str]) -> None:
    name, first, second = two_revisions
    for url in (sandbox.service_url(name), sandbox.tag_url(name, "canary")):
        with connect(url.replace("http://", "ws://") + "/ws/session-42", open_timeout=5, close_timeout=2) as ws:
            for i in (1, 2, 3):
                ws.send(json.dumps({"type": "ping", "id": i}))
                reply = json.loads(ws.recv(timeout=5))
                assert reply["type"] == "pong" and reply["id"] == i and reply["session_id"] == "session-42"


def test_unknown_paths_and_errors_pass_through(sandbox: Sandbox, two_revisions: tuple[str, str, str]) -> None:
    name, first, second = two_revisions
    with httpx.Client(base_url=sandbox.service_url(name), timeout=5) as http:
        missing = http.get("/no-such-page")
        assert missing.status_code == 404 and missing.headers["x-revision"] == first
        denied = http.get("/api/memory/user/stats")
        assert denied.status_code == 401
        allowed = http.get("/api/memory/user/stats", headers={"Authorization": f"Bearer {sandbox.env['REVGATE_AUTH_TOKEN']}"})
        assert allowed.status_code == 200 and "stats" in allowed.json()


def _request_counts(metrics: Any, sandbox: Sandbox, service: str) -> dict[tuple[str, str], int]:
    now = time.time()
    interval = monitoring_v3.TimeInterval(
        {"end_time": {"seconds": int(now) + 1}, "start_time": {"seconds": int(now) - 600}}
    )
    aggregation = monitoring_v3.Aggregation(
        {
            "alignment_period": {"seconds": 601},
            "per_series_aligner": monitoring_v3.Aggregation.Aligner.ALIGN_DELTA,
            "cross_series_reducer": monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
            "group_by_fields": ["resource.labels.revision_name", "metric.labels.response_code_class"],
        }
    )
    series = metrics.list_time_series(
        request={
            "name": f"projects/{sandbox.project}",
            "filter": f'metric.type = "run.googleapis.com/request_count" AND resource.labels.service_name = "{service}"',
            "interval": interval,
            "aggregation": aggregation,
            "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        },
        timeout=10,
    )
    counts: dict[tuple[str, str], int] = {}
    for ts in series:
        key = (ts.resource.labels["revision_name"], ts.metric.labels["response_code_class"])
        counts[key] = counts.get(key, 0) + sum(p.value.int64_value for p in ts.points)
    return counts


def test_monitoring_counts_match_the_traffic_sent(
    sandbox: Sandbox, clients: dict[str, Any], fresh_service: tuple[str, str, str]
) -> None:
    name, first, second = fresh_service
    sandbox.update_traffic(name, to_revisions={first: 70, second: 30})
    # a fresh service: deploying it (a TCP startup probe) sent it no request
    assert _request_counts(clients["metrics"], sandbox, name) == {}
    seen = _revisions_seen(sandbox.service_url(name), 300)
    with httpx.Client(base_url=sandbox.tag_url(name, "next"), timeout=5) as http:
        assert all(http.get("/no-such-page").status_code == 404 for _ in range(7))
    # Cloud Run writes one point per 60 s sample, visible after its period (this sandbox: no extra delay)
    time.sleep(max(0.0, visible_at(time.time(), 0.0) - time.time()) + 0.5)
    after = _request_counts(clients["metrics"], sandbox, name)
    expected = {(rev, "2xx"): n for rev, n in seen.items()}
    expected[(second, "4xx")] = 7
    assert after == expected


def test_startup_latency_and_instance_gauges_are_recorded(
    sandbox: Sandbox, clients: dict[str, Any], two_revisions: tuple[str, str, str]
) -> None:
    name, first, second = two_revisions
    now = time.time()
    interval = monitoring_v3.TimeInterval({"end_time": {"seconds": int(now) + 120}, "start_time": {"seconds": int(now) - 600}})
    found: dict[str, set[str]] = {}
    # resources are read every 5 s and written as one point per 60 s sample, visible after its period
    deadline = time.monotonic() + (visible_at(time.time(), 0.0) - time.time()) + 10
    while time.monotonic() < deadline:
        for metric in ("container/startup_latencies", "container/instance_count", "container/memory/utilizations"):
            series = clients["metrics"].list_time_series(
                request={
                    "name": f"projects/{sandbox.project}",
                    "filter": f'metric.type = "run.googleapis.com/{metric}" AND resource.labels.service_name = "{name}"',
                    "interval": interval,
                    "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS,
                },
                timeout=10,
            )
            found[metric] = {ts.resource.labels["revision_name"] for ts in series}
        if all(found[m] == {first, second} for m in found):
            break
        time.sleep(0.5)
    assert found["container/startup_latencies"] == {first, second}
    assert found["container/instance_count"] == {first, second}, found
    assert found["container/memory/utilizations"] == {first, second}, found

"""The sandbox's Cloud Monitoring API answers the real client as Cloud Monitoring does.

Every test talks to a real ``grpc.server`` on loopback through the client the
project builds (``revgate.google_clients.metric_client`` with
``CLOUD_MONITORING_API_ENDPOINT``), with an explicit timeout and bounded retry.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.api import metric_pb2
from google.api_core import exceptions
from google.cloud import monitoring_v3

from revgate.google_clients import bounded_retry, metric_client
from sandbox.monitoring import (
    INSTANCE_COUNT,
    LATENCY_BUCKETS,
    MEMORY_UTILIZATIONS,
    REQUEST_COUNT,
    REQUEST_LATENCIES,
    MetricStore,
    metric_service_handler,
)

PROJECT = "demo-project"
NOW = 1_700_000_040.0  # the injected clock starts here: a sample period boundary (a multiple of 60 s)
SERVICE = "emergence"
LOCATION = "europe-west1"


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


DELAY = 5.0
"""The store's visibility delay in these tests (never 0); the clock starts that long after NOW, so data
sampled up to NOW is visible."""


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW + DELAY)


@pytest.fixture
def store(clock: Clock) -> MetricStore:
    return MetricStore(project=PROJECT, clock=clock, visibility_delay=DELAY)


@pytest.fixture
def client(store: MetricStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((metric_service_handler(store),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("CLOUD_MONITORING_API_ENDPOINT", f"127.0.0.1:{port}")
    c = metric_client()
    yield c
    c.transport.close()
    server.stop(grace=None)


def ts(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def query(
    client: Any,
    metric: str,
    *,
    extra_filter: str = "",
    start: float = NOW - 600,
    end: float = NOW,
    aggregation: dict[str, Any] | None = None,
    **fields: Any,
) -> list[monitoring_v3.TimeSeries]:
    request: dict[str, Any] = {
        "name": f"projects/{PROJECT}",
        "filter": f'metric.type = "{metric}" AND resource.type = "cloud_run_revision"' + extra_filter,
        "interval": {"start_time": ts(start), "end_time": ts(end)},
        **fields,
    }
    if aggregation is not None:
        request["aggregation"] = aggregation
    return list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))


def agg(
    aligner: str, reducer: str = "REDUCE_NONE", group_by: list[str] | None = None, period: int = 600
) -> dict[str, Any]:
    return {
        "alignment_period": {"seconds": period},
        "per_series_aligner": aligner,
        "cross_series_reducer": reducer,
        "group_by_fields": group_by or [],
    }


def record(
    store: MetricStore,
    *,
    revision: str = "emergence-00002-abc",
    code: int = 200,
    latency: float = 50.0,
    at: float = NOW - 30,
) -> None:
    store.record_request(
        service=SERVICE, revision=revision, location=LOCATION, status_code=code, latency_ms=latency, at=at
    )


def label(series: monitoring_v3.TimeSeries, name: str) -> str:
    return series.metric.labels.get(name) or series.resource.labels.get(name, "")


# ----------------------------------------------------------------------------- counts and latencies


def test_request_counts_by_response_code_class_are_exact(store: MetricStore, client: Any) -> None:
    for i in range(137):
        record(store, code=200, at=NOW - 100 + i * 0.5)
    for i in range(9):
        record(store, code=404, at=NOW - 50 + i)
    for i in range(4):
        record(store, code=503, at=NOW - 20 + i)

    series = query(
        client, REQUEST_COUNT, aggregation=agg("ALIGN_DELTA", "REDUCE_SUM", ["metric.labels.response_code_class"])
    )

    counts = {label(s, "response_code_class"): s.points[0].value.int64_value for s in series}
    assert counts == {"2xx": 137, "4xx": 9, "5xx": 4}
    for s in series:
        assert len(s.points) == 1
        assert s.metric_kind == metric_pb2.MetricDescriptor.MetricKind.DELTA
        assert s.value_type == metric_pb2.MetricDescriptor.ValueType.INT64
        assert s.points[0].interval.end_time.timestamp() == NOW
        assert s.points[0].interval.start_time.timestamp() == NOW - 600
        assert s.resource.labels["project_id"] == PROJECT


def test_raw_points_carry_cloud_run_labels(store: MetricStore, client: Any) -> None:
    record(store, code=502, at=NOW - 5)
    record(store, code=200, at=NOW - 4)

    series = query(client, REQUEST_COUNT, extra_filter=' AND metric.label.response_code = "502"')

    assert len(series) == 1
    s = series[0]
    assert dict(s.metric.labels) == {"response_code": "502", "response_code_class": "5xx"}
    assert dict(s.resource.labels) == {
        "project_id": PROJECT,
        "service_name": SERVICE,
        "revision_name": "emergence-00002-abc",
        "location": LOCATION,
        "configuration_name": SERVICE,
    }
    assert [p.value.int64_value for p in s.points] == [1]


@pytest.mark.parametrize("percentile", [50, 95, 99])
def test_latency_percentile_is_within_bucket_precision(store: MetricStore, client: Any, percentile: int) -> None:
    latencies = [20.0 + 3.0 * i for i in range(400)]  # 20 .. 1217 ms
    for i, latency in enumerate(latencies):
        record(store, latency=latency, code=200 if i % 2 else 500, at=NOW - 300 + i * 0.5)
    truth = sorted(latencies)[int(percentile / 100 * len(latencies)) - 1]

    series = query(client, REQUEST_LATENCIES, aggregation=agg("ALIGN_DELTA", f"REDUCE_PERCENTILE_{percentile}"))

    assert len(series) == 1
    (point,) = series[0].points
    estimate = point.value.double_value
    growth = LATENCY_BUCKETS.spec[2]
    assert truth / growth <= estimate <= truth * growth, (truth, estimate)


def test_latency_distribution_keeps_count_mean_and_exponential_buckets(store: MetricStore, client: Any) -> None:
    for latency in (5.0, 50.0, 500.0, 5000.0):
        record(store, latency=latency)

    (series,) = query(client, REQUEST_LATENCIES, aggregation=agg("ALIGN_DELTA", "REDUCE_SUM"))

    d = series.points[0].value.distribution_value
    assert d.count == 4
    assert d.mean == pytest.approx(1388.75)
    buckets = d.bucket_options.exponential_buckets
    assert (buckets.num_finite_buckets, buckets.growth_factor, buckets.scale) == (100, 1.4, 1.0)
    assert sum(d.bucket_counts) == 4
    assert d.bucket_counts[LATENCY_BUCKETS.index(5000.0)] == 1


def test_aligner_percentile_per_revision(store: MetricStore, client: Any) -> None:
    for i in range(100):
        record(store, revision="fast", latency=10.0 + i * 0.1)
        record(store, revision="slow", latency=1000.0 + i)

    series = query(client, REQUEST_LATENCIES, aggregation=agg("ALIGN_PERCENTILE_99"))

    p99 = {label(s, "revision_name"): s.points[0].value.double_value for s in series}
    assert set(p99) == {"fast", "slow"}
    assert 10.0 <= p99["fast"] <= 20.0 * 1.4
    assert 1000.0 <= p99["slow"] <= 1099 * 1.4


# ----------------------------------------------------------------------------- grouping and filters


def test_group_by_revision_name_splits_counts(store: MetricStore, client: Any) -> None:
    for _ in range(30):
        record(store, revision="emergence-00001-old", code=200)
    for i in range(20):
        record(store, revision="emergence-00002-new", code=500 if i < 5 else 200)

    series = query(
        client, REQUEST_COUNT, aggregation=agg("ALIGN_DELTA", "REDUCE_SUM", ["resource.labels.revision_name"])
    )
    by_revision = {s.resource.labels["revision_name"]: s.points[0].value.int64_value for s in series}
    assert by_revision == {"emergence-00001-old": 30, "emergence-00002-new": 20}
    assert all(not s.metric.labels for s in series)

    series = query(
        client,
        REQUEST_COUNT,
        aggregation=agg(
            "ALIGN_DELTA", "REDUCE_SUM", ["resource.label.revision_name", "metric.label.response_code_class"]
        ),
    )
    keyed = {
        (label(s, "revision_name"), label(s, "response_code_class")): s.points[0].value.int64_value for s in series
    }
    assert keyed == {
        ("emergence-00001-old", "2xx"): 30,
        ("emergence-00002-new", "2xx"): 15,
        ("emergence-00002-new", "5xx"): 5,
    }


def test_not_equal_filter_excludes_the_revision(store: MetricStore, client: Any) -> None:
    for _ in range(3):
        record(store, revision="a")
    for _ in range(7):
        record(store, revision="b")

    series = query(
        client,
        REQUEST_COUNT,
        extra_filter=' AND resource.labels.revision_name != "a" AND resource.labels.service_name = "emergence"',
        aggregation=agg("ALIGN_DELTA", "REDUCE_SUM"),
    )
    assert [s.points[0].value.int64_value for s in series] == [7]

    assert query(client, REQUEST_COUNT, extra_filter=' AND resource.labels.service_name = "other"') == []


def test_headers_view_returns_series_without_points(store: MetricStore, client: Any) -> None:
    record(store, revision="a", code=200)
    record(store, revision="a", code=500)
    record(store, revision="b", code=200)

    series = query(client, REQUEST_COUNT, view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS)

    identities = sorted((label(s, "revision_name"), label(s, "response_code")) for s in series)
    assert identities == [("a", "200"), ("a", "500"), ("b", "200")]
    assert all(len(s.points) == 0 for s in series)


def test_one_point_per_alignment_period_newest_first(store: MetricStore, client: Any) -> None:
    # 1 request in the oldest minute, 2 in the next, 3 in the newest.
    for minute, n in ((2, 1), (1, 2), (0, 3)):
        for _ in range(n):
            record(store, at=NOW - minute * 60 - 30)

    (series,) = query(client, REQUEST_COUNT, start=NOW - 180, aggregation=agg("ALIGN_DELTA", "REDUCE_SUM", period=60))

    assert [p.value.int64_value for p in series.points] == [3, 2, 1]
    assert [p.interval.end_time.timestamp() for p in series.points] == [NOW, NOW - 60, NOW - 120]

    (rate,) = query(client, REQUEST_COUNT, start=NOW - 180, aggregation=agg("ALIGN_RATE", "REDUCE_SUM", period=60))
    assert [p.value.double_value for p in rate.points] == pytest.approx([3 / 60, 2 / 60, 1 / 60])


def test_container_gauges(store: MetricStore, client: Any) -> None:
    for i, value in enumerate((0.20, 0.40, 0.90)):  # one 60 s sample period: one distribution of 3 samples
        store.record_gauge(
            MEMORY_UTILIZATIONS, service=SERVICE, revision="r", location=LOCATION, value=value, at=NOW - 50 + i
        )
    for i, count in enumerate((1, 3, 2)):  # a GAUGE: one value per sample period, three periods
        store.record_gauge(
            INSTANCE_COUNT,
            service=SERVICE,
            revision="r",
            location=LOCATION,
            value=count,
            at=NOW - 170 + i * 60,
            metric_labels={"state": "active"},
        )

    (memory,) = query(client, MEMORY_UTILIZATIONS, aggregation=agg("ALIGN_PERCENTILE_99", "REDUCE_MAX"))
    assert 0.89 <= memory.points[0].value.double_value <= 0.91
    (instances,) = query(client, INSTANCE_COUNT, aggregation=agg("ALIGN_MAX"))
    assert instances.points[0].value.int64_value == 3
    assert instances.metric.labels["state"] == "active"
    (raw,) = query(client, INSTANCE_COUNT)
    assert [(p.interval.start_time.timestamp(), p.interval.end_time.timestamp(), p.value.int64_value) for p in raw.points] == [
        (NOW, NOW, 2),
        (NOW - 60, NOW - 60, 3),
        (NOW - 120, NOW - 120, 1),
    ]  # GAUGE points at the end of their sample period


def test_a_sample_period_keeps_its_last_gauge_value(store: MetricStore, client: Any) -> None:
    for i, count in enumerate((1, 3, 2)):
        store.record_gauge(INSTANCE_COUNT, service=SERVICE, revision="r", location=LOCATION, value=count, at=NOW - 50 + i)
    (raw,) = query(client, INSTANCE_COUNT)
    assert [p.value.int64_value for p in raw.points] == [2]


def test_paging_returns_every_series_once(store: MetricStore, client: Any) -> None:
    for i in range(12):
        record(store, revision=f"rev-{i:02d}")

    series = query(client, REQUEST_COUNT, page_size=5)  # the client's pager follows next_page_token

    assert sorted(label(s, "revision_name") for s in series) == [f"rev-{i:02d}" for i in range(12)]


def test_a_long_series_continues_on_the_next_page(store: MetricStore, client: Any) -> None:
    for i in range(25):  # one request in each of 25 sample periods: 25 points
        record(store, at=NOW - 60 * (25 - i) + 1)

    pages = query(client, REQUEST_COUNT, start=NOW - 1600, page_size=10)

    assert [len(s.points) for s in pages] == [10, 10, 5]
    assert {label(s, "revision_name") for s in pages} == {"emergence-00002-abc"}
    ends = [p.interval.end_time.timestamp() for s in pages for p in s.points]
    assert ends == [NOW - 60 * (24 - i) for i in reversed(range(25))]


# ----------------------------------------------------------------------------- visibility delay


def test_visibility_delay_hides_then_shows_points(store: MetricStore, client: Any, clock: Clock) -> None:
    store.visibility_delay = 120.0
    for _ in range(5):
        record(store, at=NOW - 10)  # the sample period ends at NOW: visible from NOW + 120

    def count() -> int:
        series = query(client, REQUEST_COUNT, end=NOW, aggregation=agg("ALIGN_DELTA", "REDUCE_SUM"))
        return sum(p.value.int64_value for s in series for p in s.points)

    assert count() == 0  # recorded, but not yet visible: "no data"
    clock.now = NOW + 119.9
    assert count() == 0
    clock.now = NOW + 120.0
    assert count() == 5


def test_requests_are_sampled_into_60_s_points_visible_after_their_period(
    store: MetricStore, client: Any, clock: Clock
) -> None:
    for at in (NOW + 1, NOW + 30, NOW + 59.9, NOW + 60, NOW + 61):
        record(store, at=at)

    def raw(end: float) -> list[tuple[float, float, int]]:
        series = query(client, REQUEST_COUNT, start=NOW - 60, end=end)
        return [(p.interval.start_time.timestamp(), p.interval.end_time.timestamp(), p.value.int64_value) for s in series for p in s.points]

    clock.now = NOW + 59.9
    assert raw(clock.now) == []  # the sample period [NOW, NOW + 60] is still open: nothing is written yet
    clock.now = NOW + 60 + DELAY - 0.1
    assert raw(clock.now) == []  # written at NOW + 60, not yet visible
    clock.now = NOW + 60 + DELAY
    assert raw(clock.now) == [(NOW, NOW + 60, 3)]  # one DELTA point per 60 s sample period
    clock.now = NOW + 120 + DELAY
    assert raw(clock.now) == [(NOW + 60, NOW + 120, 2), (NOW, NOW + 60, 3)]
    (latency,) = query(client, REQUEST_LATENCIES, start=NOW - 60, end=NOW + 120)
    assert [p.value.distribution_value.count for p in latency.points] == [2, 3]  # a distribution per period


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("filter_text", "named"),
    [
        (f'metric.type = "{REQUEST_COUNT}" OR resource.type = "x"', "OR"),
        (f'metric.type = "{REQUEST_COUNT}" AND NOT resource.labels.revision_name = "a"', "NOT"),
        (f'metric.type = "{REQUEST_COUNT}" AND (resource.labels.revision_name = "a")', "parentheses"),
        (f'metric.type = "{REQUEST_COUNT}" AND resource.labels.revision_name = starts_with("a")', "starts_with"),
        (f'metric.type = "{REQUEST_COUNT}" AND metric.labels.response_code > "499"', "'>'"),
        (f'metric.type = "{REQUEST_COUNT}" AND resource.labels.revision_name : "a"', "':'"),
        (f'metric.type = "{REQUEST_COUNT}" AND project = "{PROJECT}"', "'project'"),
        (f'metric.type = "{REQUEST_COUNT}" AND metric.labels.response_code = 500', "'500'"),
        ('resource.type = "cloud_run_revision"', "metric.type"),
        ('metric.type = "run.googleapis.com/request_counts"', "'run.googleapis.com/request_counts' is unknown"),
        (f'metric.type = "{REQUEST_COUNT}" AND resource.type = "cloud_run_job"', "'cloud_run_job'"),
        (f'metric.type != "{REQUEST_COUNT}"', "metric.type"),
    ],
)
def test_unsupported_filter_is_invalid_argument_naming_the_part(
    store: MetricStore, client: Any, filter_text: str, named: str
) -> None:
    record(store)
    request = {
        "name": f"projects/{PROJECT}",
        "filter": filter_text,
        "interval": {"start_time": ts(NOW - 600), "end_time": ts(NOW)},
    }
    with pytest.raises(exceptions.InvalidArgument) as info:
        list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))
    assert named in info.value.message


@pytest.mark.parametrize(
    ("metric", "aggregation", "named"),
    [
        (REQUEST_COUNT, {"cross_series_reducer": "REDUCE_SUM"}, "REDUCE_SUM requires a per_series_aligner"),
        (REQUEST_COUNT, {"per_series_aligner": "ALIGN_DELTA"}, "alignment_period is required"),
        (REQUEST_COUNT, agg("ALIGN_DELTA", period=30), "alignment_period 30s is too short"),
        (REQUEST_COUNT, agg("ALIGN_INTERPOLATE"), "ALIGN_INTERPOLATE"),
        (REQUEST_COUNT, agg("ALIGN_DELTA", "REDUCE_STDDEV"), "REDUCE_STDDEV"),
        (REQUEST_COUNT, agg("ALIGN_PERCENTILE_99"), "ALIGN_PERCENTILE_99 is not valid"),
        (REQUEST_LATENCIES, agg("ALIGN_MAX"), "ALIGN_MAX is not valid"),
        (REQUEST_LATENCIES, agg("ALIGN_DELTA", "REDUCE_MIN"), "REDUCE_MIN is not valid"),
        (INSTANCE_COUNT, agg("ALIGN_RATE"), "ALIGN_RATE is not valid"),
        (REQUEST_COUNT, agg("ALIGN_DELTA", "REDUCE_SUM", ["metadata.user_labels.team"]), "metadata.user_labels.team"),
    ],
)
def test_unsupported_aggregation_is_invalid_argument_naming_the_part(
    store: MetricStore, client: Any, metric: str, aggregation: dict[str, Any], named: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as info:
        query(client, metric, aggregation=aggregation)
    assert named in info.value.message


def test_other_project_is_not_found(client: Any) -> None:
    request = {
        "name": "projects/someone-else",
        "filter": f'metric.type = "{REQUEST_COUNT}"',
        "interval": {"start_time": ts(NOW - 600), "end_time": ts(NOW)},
    }
    with pytest.raises(exceptions.NotFound) as info:
        list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))
    assert "someone-else" in info.value.message


# ----------------------------------------------------------------------------- CreateTimeSeries


def custom_point(value: float, at: float) -> monitoring_v3.TimeSeries:
    series = monitoring_v3.TimeSeries()
    series.metric.type = "custom.googleapis.com/revgate/probe_latency"
    series.metric.labels["check"] = "health"
    series.resource.type = "global"
    series.resource.labels["project_id"] = PROJECT
    series.points = [monitoring_v3.Point({"interval": {"end_time": ts(at)}, "value": {"double_value": value}})]
    return series


def test_create_time_series_round_trips_a_custom_metric(client: Any, clock: Clock) -> None:
    for i, value in enumerate((0.25, 0.75)):
        clock.now = NOW - 100 + i * 10
        client.create_time_series(
            name=f"projects/{PROJECT}", time_series=[custom_point(value, clock.now)], timeout=5, retry=bounded_retry()
        )
    clock.now = NOW

    request = {
        "name": f"projects/{PROJECT}",
        "filter": 'metric.type = "custom.googleapis.com/revgate/probe_latency" AND metric.labels.check = "health"',
        "interval": {"start_time": ts(NOW - 600), "end_time": ts(NOW)},
    }
    (raw,) = list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))
    assert raw.resource.type == "global"
    assert [p.value.double_value for p in raw.points] == [0.75, 0.25]  # newest first
    assert [p.interval.end_time.timestamp() for p in raw.points] == [NOW - 90, NOW - 100]

    request["aggregation"] = agg("ALIGN_MEAN")
    (mean,) = list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))
    assert mean.points[0].value.double_value == pytest.approx(0.5)


def test_cumulative_custom_metric_aligns_to_increases(client: Any, clock: Clock) -> None:
    for at, total in ((NOW - 240, 10), (NOW - 180, 25), (NOW - 120, 40)):
        clock.now = at
        series = monitoring_v3.TimeSeries(
            {
                "metric": {"type": "custom.googleapis.com/revgate/probes_total"},
                "resource": {"type": "global", "labels": {"project_id": PROJECT}},
                "metric_kind": "CUMULATIVE",
                "points": [
                    {"interval": {"start_time": ts(NOW - 300), "end_time": ts(at)}, "value": {"int64_value": total}}
                ],
            }
        )
        client.create_time_series(name=f"projects/{PROJECT}", time_series=[series], timeout=5, retry=bounded_retry())
    clock.now = NOW
    request = {
        "name": f"projects/{PROJECT}",
        "filter": 'metric.type = "custom.googleapis.com/revgate/probes_total"',
        "interval": {"start_time": ts(NOW - 300), "end_time": ts(NOW)},
    }

    request["aggregation"] = agg("ALIGN_DELTA", period=300)
    (delta,) = list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))
    assert [p.value.int64_value for p in delta.points] == [40]

    request["interval"]["start_time"] = ts(NOW - 200)  # the point at NOW-240 is outside, but is the base of the next
    request["aggregation"] = agg("ALIGN_RATE", period=60)
    (rate,) = list(client.list_time_series(request=request, timeout=5, retry=bounded_retry()))
    assert [(p.interval.end_time.timestamp(), p.value.double_value) for p in rate.points] == [
        (NOW - 120, pytest.approx(15 / 60)),
        (NOW - 180, pytest.approx(15 / 60)),
    ]


def test_create_time_series_refuses_cloud_run_metrics_and_out_of_order_points(client: Any) -> None:
    builtin = custom_point(1.0, NOW - 10)
    builtin.metric.type = REQUEST_COUNT
    with pytest.raises(exceptions.InvalidArgument) as info:
        client.create_time_series(name=f"projects/{PROJECT}", time_series=[builtin], timeout=5, retry=bounded_retry())
    assert "custom.googleapis.com/" in info.value.message

    client.create_time_series(
        name=f"projects/{PROJECT}", time_series=[custom_point(1.0, NOW - 10)], timeout=5, retry=bounded_retry()
    )
    with pytest.raises(exceptions.InvalidArgument) as info:
        client.create_time_series(
            name=f"projects/{PROJECT}", time_series=[custom_point(2.0, NOW - 20)], timeout=5, retry=bounded_retry()
        )
    assert info.value.message == (
        "One or more TimeSeries could not be written: Points must be written in order. One or more of the points "
        "specified had an older start time than the most recent point.: timeSeries[0]"
    )


def _write(client: Any, *series: monitoring_v3.TimeSeries) -> None:
    client.create_time_series(name=f"projects/{PROJECT}", time_series=list(series), timeout=5, retry=bounded_retry())


def _refused(client: Any, *series: monitoring_v3.TimeSeries) -> str:
    with pytest.raises(exceptions.InvalidArgument) as info:
        _write(client, *series)
    return info.value.message


def test_create_time_series_takes_one_point_per_series_every_5_seconds(client: Any) -> None:
    _write(client, custom_point(1.0, NOW - 30))
    message = _refused(client, custom_point(2.0, NOW - 26))  # 4 s after the previous point
    assert message == (
        "One or more TimeSeries could not be written: One or more points were written more frequently than "
        "the maximum sampling period configured for the metric.: timeSeries[0]"
    )
    _write(client, custom_point(2.0, NOW - 25))  # 5 s after it: accepted
    other = custom_point(3.0, NOW - 25)
    other.metric.labels["check"] = "api"  # another series: its own sampling period
    _write(client, other)


def test_create_time_series_refuses_end_times_older_than_25_hours_or_5_minutes_ahead(client: Any, clock: Clock) -> None:
    message = _refused(client, custom_point(1.0, clock.now - 25 * 3600 - 1))
    assert "timeSeries[0].points[0].interval.end_time" in message
    assert "Data points cannot be written more than 25h in the past." in message
    _write(client, custom_point(1.0, clock.now - 25 * 3600 + 1))
    assert "more than 5m in the future" in _refused(client, custom_point(1.0, clock.now + 301))
    _write(client, custom_point(1.0, clock.now + 299))


def test_create_time_series_refuses_long_label_values_and_more_than_200_series(client: Any) -> None:
    long = custom_point(1.0, NOW - 10)
    long.metric.labels["check"] = "x" * 1025
    message = _refused(client, long)
    assert "could not be written" in message and "longer than 1024" in message and message.endswith("timeSeries[0]")
    fits = custom_point(1.0, NOW - 10)
    fits.metric.labels["check"] = "x" * 1024
    _write(client, fits)

    many = []
    for i in range(201):
        point = custom_point(1.0, NOW - 10)
        point.metric.labels["check"] = f"c{i}"
        many.append(point)
    assert "at most 200 time series, found 201" in _refused(client, *many)
    _write(client, *many[:200])


# ----------------------------------------------------------------------------- concurrency


def test_recording_while_querying_loses_nothing(store: MetricStore, client: Any) -> None:
    writers, per_writer = 4, 500
    errors: list[BaseException] = []
    done = threading.Event()

    def write(w: int) -> None:
        try:
            for i in range(per_writer):
                record(
                    store,
                    revision=f"rev-{w}",
                    code=500 if i % 10 == 0 else 200,
                    latency=float(i),
                    at=NOW - 60 + i * 0.01,
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                query(
                    client,
                    REQUEST_LATENCIES,
                    aggregation=agg("ALIGN_DELTA", "REDUCE_PERCENTILE_99", ["resource.labels.revision_name"]),
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in readers:
        t.join()

    assert errors == []
    series = query(
        client, REQUEST_COUNT, aggregation=agg("ALIGN_DELTA", "REDUCE_SUM", ["metric.labels.response_code_class"])
    )
    counts = {label(s, "response_code_class"): s.points[0].value.int64_value for s in series}
    assert counts == {"2xx": writers * per_writer * 9 // 10, "5xx": writers * per_writer // 10}

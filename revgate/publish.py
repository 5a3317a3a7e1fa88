"""``--publish-metrics``: each check's outcome and duration as Cloud Monitoring custom metrics.

At session end, in the controller, every check that ran (passed, failed or
errored; skipped checks are left out) is written with ``CreateTimeSeries``:

- ``custom.googleapis.com/revgate/check_passed``: GAUGE INT64, 1 pass / 0 fail;
- ``custom.googleapis.com/revgate/check_duration_seconds``: GAUGE DOUBLE, seconds.

Labels: ``check`` (the test name, ``test_api[memory-user-stats]``), ``target``
(the host, and port when not the default, of ``--revision-url``: one series per
target, so two targets gated or monitored from one project never write the
same series), ``service`` and ``revision`` (empty when no ``--service`` is
given); monitored resource ``global`` of the project. Requests carry at most
:data:`BATCH` series, an explicit timeout and a bounded retry. A publishing
failure is reported in the terminal summary and the JSON report; it does not
change the verdict.

Within Cloud Monitoring's limits (cloud.google.com/monitoring/quotas and the
``TimeInterval`` reference): one point per series per run, stamped with the
end of the run (never more than 25 h old); a label value longer than
:data:`MAX_LABEL_VALUE` (1024) is cut at a character boundary and ends with a
hash of the whole value, so distinct values stay distinct series. Cloud
Monitoring takes one point per series every 5 s: two runs against one target
that end less than 5 s apart get the second refused (INVALID_ARGUMENT),
reported like any publishing failure.

Alert on them with, for instance, ``metric.type =
"custom.googleapis.com/revgate/check_passed"`` below 1 for two runs.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from .results import deployment_of, results_key

__all__ = [
    "BATCH",
    "DURATION_METRIC",
    "MAX_LABEL_VALUE",
    "PASSED_METRIC",
    "Publication",
    "add_options",
    "build_series",
    "label_value",
    "publish",
    "target_label",
]

PASSED_METRIC = "custom.googleapis.com/revgate/check_passed"
DURATION_METRIC = "custom.googleapis.com/revgate/check_duration_seconds"
BATCH = 200
"""Cloud Monitoring accepts at most 200 time series per CreateTimeSeries request."""
MAX_LABEL_VALUE = 1024
"""Cloud Monitoring's "String length for label value" (cloud.google.com/monitoring/quotas)."""
MAX_PAST = 25 * 3600
"""A point's end time may be at most 25 h in the past (TimeInterval, writes)."""
CALL_TIMEOUT = 10.0
RETRY_DEADLINE = 15.0
ENV = "REVGATE_PUBLISH_METRICS"
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")


def add_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption(
        "--publish-metrics",
        action="store_true",
        default=None,
        help=f"At the end, write each check's outcome and duration as Cloud Monitoring custom metrics "
        f"({PASSED_METRIC}, {DURATION_METRIC}). Env: {ENV}=1.",
    )


@dataclass(kw_only=True)
class Publication:
    """What ``--publish-metrics`` did: the series written, the requests sent, the error if any."""

    project: str
    series: int = 0
    requests: int = 0
    error: str = ""
    seconds: float = 0.0
    metrics: list[str] = field(default_factory=lambda: [PASSED_METRIC, DURATION_METRIC])

    def summary(self) -> str:
        if self.error:
            return f"published metrics: FAILED after {self.requests} request(s): {self.error}"
        return (
            f"published metrics: {self.series} time series to project {self.project} "
            f"in {self.requests} request(s) ({self.seconds:.2f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "series": self.series,
            "requests": self.requests,
            "error": self.error or None,
            "metrics": self.metrics,
            "summary": self.summary(),
        }


publication_key = pytest.StashKey[Publication]()


def label_value(value: str) -> str:
    """``value`` within :data:`MAX_LABEL_VALUE` characters and UTF-8 bytes; a longer one is cut at a character
    boundary and ends with ``~`` and 12 hex digits of its SHA-256, so two long values stay two labels."""
    if len(value.encode()) <= MAX_LABEL_VALUE:
        return value
    digest = "~" + hashlib.sha256(value.encode()).hexdigest()[:12]
    head = value.encode()[: MAX_LABEL_VALUE - len(digest)].decode("utf-8", errors="ignore")
    return head + digest


def target_label(url: str) -> str:
    """The target a series belongs to: the URL's host, with its port when it is not the scheme's default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{host}:{port}" if port is not None and port != default else host


def build_series(
    checks: list[Any], *, project: str, service: str, revision: str, at: float, target: str = ""
) -> list[Any]:
    """Two GAUGE series per check that ran (pass/fail and duration), one point each at ``at``."""
    from google.cloud import monitoring_v3

    if at < time.time() - MAX_PAST:
        raise ValueError(f"a point at {at:.0f} is more than 25 h old: Cloud Monitoring refuses it")
    seconds, nanos = int(at), int((at - int(at)) * 1e9)
    names: dict[str, int] = {}
    out = []
    for check in checks:
        if check.outcome == "skipped":
            continue
        label = check.name if names.setdefault(check.name, 0) == 0 else check.id  # two tests with one name
        names[check.name] += 1
        for metric, value in (
            (PASSED_METRIC, {"int64_value": 0 if check.bad else 1}),
            (DURATION_METRIC, {"double_value": round(check.duration, 6)}),
        ):
            out.append(
                monitoring_v3.TimeSeries(
                    {
                        "metric": {
                            "type": metric,
                            "labels": {
                                "check": label_value(label),
                                "target": label_value(target),
                                "service": label_value(service),
                                "revision": label_value(revision),
                            },
                        },
                        "resource": {"type": "global", "labels": {"project_id": project}},
                        "metric_kind": "GAUGE",
                        "unit": "s" if metric == DURATION_METRIC else "1",
                        "points": [
                            {"interval": {"end_time": {"seconds": seconds, "nanos": nanos}}, "value": value}
                        ],
                    }
                )
            )
    return out


def publish(series: list[Any], *, project: str, client: Any | None = None) -> Publication:
    """Write ``series`` in batches of :data:`BATCH`; never raises for what the API answers."""
    from google.api_core import exceptions as gexc

    from .google_clients import bounded_retry, metric_client

    pub = Publication(project=project)
    start = time.monotonic()
    try:
        client = client or metric_client()
        for i in range(0, len(series), BATCH):
            pub.requests += 1
            client.create_time_series(
                name=f"projects/{project}",
                time_series=series[i : i + BATCH],
                timeout=CALL_TIMEOUT,
                retry=bounded_retry(deadline=RETRY_DEADLINE),
            )
            pub.series += len(series[i : i + BATCH])
    except gexc.RetryError as exc:
        pub.error = f"the Cloud Monitoring API did not answer within {RETRY_DEADLINE:g} s ({exc.cause or exc})"
    except gexc.GoogleAPICallError as exc:
        pub.error = f"CreateTimeSeries: {type(exc).__name__}: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - credentials and transport errors: reported, never fatal
        pub.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    pub.seconds = time.monotonic() - start
    return pub


def _wanted(config: pytest.Config) -> bool:
    flag = config.getoption("publish_metrics", None)
    if flag is not None:
        return bool(flag)
    return os.environ.get(ENV, "").lower() in ("1", "true", "yes")


class PublishPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.project = ""

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        deployment = deployment_of(self.config)
        project = deployment.project if deployment is not None else None
        project = project or self.config.getoption("project", None)
        project = project or next((os.environ[n] for n in PROJECT_ENV if os.environ.get(n)), None)
        if not project:
            raise pytest.UsageError("--publish-metrics needs a project: give --project (or set GOOGLE_CLOUD_PROJECT)")
        self.project = project

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        results = self.config.stash.get(results_key, None)
        if results is None or not self.project:
            return
        deployment = deployment_of(self.config)
        service = deployment.service if deployment is not None else ""
        revision = ",".join(deployment.revisions_under_test) if deployment is not None else ""
        url = self.config.getoption("revision_url", None) or os.environ.get("REVGATE_REVISION_URL", "")
        series = build_series(
            list(results.checks.values()),
            project=self.project,
            service=service,
            revision=revision,
            target=target_label(url),
            at=time.time(),
        )
        self.config.stash[publication_key] = publish(series, project=self.project)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _wanted(config):
        return
    config.pluginmanager.register(PublishPlugin(config), "revgate-publish")

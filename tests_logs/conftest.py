"""Fixtures of the Cloud Logging checks: one probe request, one wait for its request log, per run.

``logs_window`` is session-scoped: the gate sends its probe request to the revision URL and waits
(bounded by ``--logs-timeout``, one progress line at a time) until Cloud Logging shows that request's
log (see :mod:`revgate.logs`); every ``[[logs]]`` check then reads its own entries over the same
window. Without a known service (``--service``) the checks are NOT VERIFIED; when Cloud Logging
cannot answer, every check says so in one line and is NOT VERIFIED (never a rollback).
"""

from __future__ import annotations

import time

import pytest

from revgate import own_requests
from revgate.checklist import Checklist
from revgate.errors import ConfigError, NotVerified
from revgate.logs import LogsOptions, LogsWindow, missing_probe_path, probe_path, resolve_logs_options, wait_for_probe
from revgate.logs_query import LoggingUnavailable, LogQueries, LogScope
from revgate.metrics_plugin import deployment_of, progress_writer
from revgate.target import Target

_run_started_key = pytest.StashKey[float]()
_options_key = pytest.StashKey[LogsOptions]()


def pytest_configure(config: pytest.Config) -> None:
    # Called when this folder's conftest is loaded (an initial conftest when the folder is given on the
    # command line, as the revgate command does), before any check runs: the run's start, and the
    # options (a bad --logs-timeout, REVGATE_LOGS_TIMEOUT or ini value is a usage error: exit 4, one line).
    config.stash[_run_started_key] = time.time()
    try:
        config.stash[_options_key] = resolve_logs_options(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def logs_options(pytestconfig: pytest.Config) -> LogsOptions:
    return pytestconfig.stash.get(_options_key, None) or resolve_logs_options(pytestconfig)


@pytest.fixture(scope="session")
def log_scope(pytestconfig: pytest.Config) -> LogScope:
    deployment = deployment_of(pytestconfig)
    if deployment is None:
        raise NotVerified(
            "the logs checks need the Cloud Run service (--service, --region, --project or their environment variables)"
        )
    return LogScope(
        project=deployment.project,
        region=deployment.region,
        service=deployment.service,
        revisions=tuple(deployment.revisions_under_test),
    )


@pytest.fixture(scope="session")
def log_queries(pytestconfig: pytest.Config, log_scope: LogScope, logs_options: LogsOptions) -> LogQueries:
    from revgate.google_clients import logging_client

    deadline = min(30.0, max(5.0, logs_options.timeout))
    # the logs section's bound: the wait and the settle margin; a RESOURCE_EXHAUSTED is retried 30 s
    # later only within it, else the check is NOT VERIFIED naming the quota
    overall = time.monotonic() + logs_options.timeout + logs_options.settle
    progress = progress_writer(pytestconfig)
    return LogQueries(
        logging_client(), log_scope, timeout=min(20.0, deadline), retry_deadline=deadline, deadline=overall,
        on_wait=lambda line: progress(line, True),
    )


@pytest.fixture(scope="session")
def revision_created(pytestconfig: pytest.Config, log_scope: LogScope) -> float | None:
    """When the (oldest) revision under test was created (epoch seconds), or None when unknown."""
    deployment = deployment_of(pytestconfig)
    times = [r.create_time for r in getattr(deployment, "revisions", ()) if r.name in log_scope.revisions and r.create_time]
    return min(times) if times else None


@pytest.fixture(scope="session")
def run_started(pytestconfig: pytest.Config) -> float:
    return pytestconfig.stash.get(_run_started_key, None) or time.time()


@pytest.fixture(scope="session")
def logs_window(
    pytestconfig: pytest.Config, log_queries: LogQueries, logs_options: LogsOptions, checklist: Checklist, target: Target
) -> LogsWindow:
    """Send the probe request, then wait (once) until Cloud Logging shows its request log."""
    path, probe_id = probe_path(checklist.health.path if checklist.health else "/")
    sent = time.time()
    probe = target.request("GET", path, auth=False)
    own_requests.record("logs probe", probe.status)  # left out of the metric checks
    answered = probe.status is not None
    # and a path no application serves: an application that does not log a 200 usually logs a 404
    missing = target.request("GET", missing_probe_path(probe_id), auth=False)
    own_requests.record("logs probe", missing.status)
    end = time.time()
    try:
        return wait_for_probe(
            log_queries,
            probe_id=probe_id,
            sent=sent,
            end=end,
            probe_url=target.url(path),
            answered=answered,
            timeout=logs_options.timeout,
            settle=logs_options.settle,
            progress=progress_writer(pytestconfig),
        )
    except LoggingUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)

"""The run's reports: the verdict block, the JSON summary, the GitHub step summary, JUnit properties.

Everything is collected and written in the controller only: with pytest-xdist,
workers' reports reach the controller's ``pytest_runtest_logreport``.

- Terminal: one ``revgate verdict: PASS|FAIL`` block a person reads in five
  seconds: each failed check on one line, each retried pass, what was done to
  traffic.
- ``--report-json=PATH`` (env ``REVGATE_REPORT_JSON``): the verdict, each
  check's outcome, duration, retries and one-line message, the rollback and
  promotion records when those plugins ran.
- ``$GITHUB_STEP_SUMMARY``: when set, a Markdown summary is appended to it.
- JUnit XML (pytest's ``--junitxml``): the testsuite is named after the target
  and carries ``revgate.*`` properties (target, service, revision, verdict).

Messages come from the reports the suite's plugin has already scrubbed of
secrets, and are scrubbed again here; no header is ever written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .results import Check, RunResults, deployment_of, notifications_key, results_key

__all__ = ["add_options", "traffic_records"]

JSON_ENV = "REVGATE_REPORT_JSON"
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
MESSAGE_LIMIT = 300


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate reports", "revgate reports and monitoring runs")
    group.addoption(
        "--report-json",
        default=None,
        metavar="PATH",
        help=f"Write the JSON summary (verdict, checks, traffic records) there; write it as --report-json=PATH. "
        f"Env: {JSON_ENV}.",
    )


def _one_line(text: str) -> str:
    """The line of a failure worth reading: the last ``E   `` line, else the first non-empty one."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    line = errors[0] if errors else (lines[0].strip() if lines else "")
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."


def message_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return _one_line(crash.message).removeprefix("Failed: ")
    return _one_line(str(longrepr)).removeprefix("Failed: ")


def _secrets(config: pytest.Config) -> list[str]:
    from .settings import settings_key

    settings = config.stash.get(settings_key, None)
    return settings.secrets() if settings else []


def scrub(text: str, config: pytest.Config) -> str:
    for secret in _secrets(config):
        text = text.replace(secret, "***")
    return text


def target_info(config: pytest.Config) -> dict[str, Any]:
    """What was verified: URL, and the service and revision when the service is known."""
    from .settings import settings_key

    settings = config.stash.get(settings_key, None)
    info: dict[str, Any] = {"url": settings.revision_url if settings else None}
    deployment = deployment_of(config)
    if deployment is not None:
        info.update(
            service=deployment.service,
            region=deployment.region,
            project=deployment.project,
            revisions=list(deployment.revisions_under_test),
            previous_revision=deployment.previous_revision,
            rollback_mode=deployment.mode,
            rollback_target=deployment.rollback_target.to_dict(),
        )
    return info


def _as_dict(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    if isinstance(record, dict):
        return record
    for name in ("record", "to_dict", "as_dict"):
        if callable(getattr(record, name, None)):
            return getattr(record, name)()
    return {"summary": str(record)}


def traffic_records(config: pytest.Config) -> dict[str, dict[str, Any]]:
    """The rollback and promotion records in the stash, by kind; absent plugins or records are left out."""
    import importlib

    found: dict[str, dict[str, Any]] = {}
    for kind, module, attr in (
        ("rollback", "revgate.rollback.plugin", "runner_key"),
        ("promotion", "revgate.rollback.promote", "promotion_key"),
        ("rollout", "revgate.rollback.rollout", "rollout_key"),
    ):
        if kind in found:
            continue
        try:
            key = getattr(importlib.import_module(module), attr, None)
        except ImportError:
            continue
        if key is not None:
            record = _as_dict(config.stash.get(key, None))
            if record is not None:
                found[kind] = record
    return found


def _record_line(kind: str, record: dict[str, Any]) -> str:
    text = record.get("summary") or record.get("message") or json.dumps(record)[:200]
    status = record.get("status")
    return f"{kind} ({status}): {text}" if status else f"{kind}: {text}"


def traffic_lines(config: pytest.Config) -> list[str]:
    """What was done to traffic, one line per record; says so when nothing was."""
    records = traffic_records(config)
    if records:
        return [_record_line(kind, record) for kind, record in records.items()]
    deployment = deployment_of(config)
    if deployment is None:
        if config.getoption("service", None) or os.environ.get("CLOUD_RUN_SERVICE"):
            return ["traffic: not changed (the gate stopped before it read the service)"]
        return ["traffic: not changed (no --service: rollback and promotion off)"]
    return [f"traffic: not changed (rollback {deployment.mode})"]


def summary_dict(config: pytest.Config, results: RunResults) -> dict[str, Any]:
    records = traffic_records(config)
    return {
        "verdict": results.verdict,
        "exit_status": int(results.exitstatus) if results.exitstatus is not None else None,
        "target": target_info(config),
        "started": results.started,
        "finished": results.finished,
        "counts": results.counts(),
        "checks": [c.to_dict() for c in results.checks.values()],
        "rollback": records.get("rollback"),
        "promotion": records.get("promotion"),
        "rollout": records.get("rollout"),
        "traffic": traffic_lines(config),
        "published_metrics": _publication(config),
        "notifications": _notifications(config),
    }


def _notifications(config: pytest.Config) -> list[dict[str, Any]] | None:
    """Each message sent to each webhook (URL redacted) and its status; None when none was configured."""
    return config.stash.get(notifications_key, None)


def _publication(config: pytest.Config) -> dict[str, Any] | None:
    from .publish import publication_key

    publication = config.stash.get(publication_key, None)
    return publication.to_dict() if publication is not None else None


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(config: pytest.Config, results: RunResults) -> str:
    target = target_info(config)
    subject = ", ".join(target.get("revisions") or []) or target.get("url") or "?"
    icon = {"PASS": "✅", "FAIL": "❌"}.get(results.verdict, "⚠️")
    lines = [
        f"### {icon} revgate verdict: {results.verdict} — {subject}",
        "",
        f"Target: `{target.get('url')}`" + (f", service `{target['service']}`" if target.get("service") else ""),
        "",
        f"{results.counts()}",
        "",
        "| check | outcome | duration | message |",
        "|---|---|---|---|",
    ]
    order = {"failed": 0, "error": 0, "not-verified": 1, "passed": 2, "skipped": 3}
    for c in sorted(results.checks.values(), key=lambda c: (order.get(c.outcome, 3), not c.gating)):
        outcome = c.outcome.upper() if c.bad else c.outcome
        if c.bad and not c.gating:
            outcome += " (advisory)"
        lines.append(f"| `{_md_cell(c.name)}` | {outcome} | {c.duration:.2f} s | {_md_cell(c.summary())} |")
    lines += ["", "**Traffic**", ""] + [f"- {_md_cell(line)}" for line in traffic_lines(config)] + [""]
    return scrub("\n".join(lines), config) + "\n"


class ReportPlugin:
    """Collects every check's result in the controller and writes the reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results = RunResults()
        self.session: pytest.Session | None = None
        config.stash[results_key] = self.results

    def _check(self, nodeid: str, keywords: Any) -> Check:
        check = self.results.checks.get(nodeid)
        if check is None:
            name = nodeid.rsplit("::", 1)[-1]
            check = Check(id=nodeid, name=name, gating="advisory" not in keywords)
            self.results.checks[nodeid] = check
        return check

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            check = self._check(report.nodeid or "collection", {})
            check.outcome, check.message = "error", scrub(f"collection failed: {message_of(report)}", self.config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        check = self._check(report.nodeid, report.keywords)
        check.duration += report.duration
        if report.outcome == "rerun":  # pytest-rerunfailures: this attempt failed, another one follows
            check.retries = max(check.retries, int(getattr(report, "rerun", 0) or 0) + 1)
            message = scrub(message_of(report), self.config)
            if not check.first_failure:
                check.first_failure = message
            self._mark_junit_attempt(report, message)
            return
        check.retries = max(check.retries, int(getattr(report, "rerun", 0) or 0))
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
            if not check.bad:
                check.outcome, check.message = outcome, scrub(message_of(report), self.config)
        elif report.skipped and report.when in ("setup", "call") and not check.bad:
            from .results import is_not_verified

            outcome = "not-verified" if is_not_verified(report) else "skipped"
            check.outcome, check.message = outcome, scrub(message_of(report).removeprefix("NOT VERIFIED: "), self.config)

    def _mark_junit_attempt(self, report: pytest.TestReport, message: str) -> None:
        """pytest's JUnit XML writes a retried attempt as a bare testcase: say on it that it failed."""
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.node_reporter(report).add_property("revgate.attempt", f"failed, retried: {message}")

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Any:
        # the session first (its exit status is the JSON report's, even when the start fails), then,
        # after the other hooks (the settings and the deployment resolved), the JUnit properties
        self.session = session
        result = yield
        self._junit_properties()
        return result

    def _junit_properties(self) -> None:
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        target = target_info(self.config)
        if xml.suite_name == "pytest":  # the default: name the suite after what it verifies
            xml.suite_name = f"revgate {target.get('service') or target.get('url')}"
        for key in ("url", "service", "region", "project", "revisions", "rollback_mode"):
            value = target.get(key)
            if value:
                xml.add_global_property(f"revgate.{key}", ",".join(value) if isinstance(value, list) else str(value))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # tryfirst: before pytest's junitxml writes its file.
        self.results.exitstatus = exitstatus
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property("revgate.verdict", self.results.verdict)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if config.option.collectonly:  # nothing ran: there is no verdict to give
            return
        results = self.results
        # the session's status after every sessionfinish hook (advisory failures, NOT VERIFIED, a refused
        # promotion), not the one pytest passes here (from before them)
        results.exitstatus = self.session.exitstatus if self.session is not None else exitstatus
        results.finished = time.time()
        target = target_info(config)
        subject = ", ".join(target.get("revisions") or []) or target.get("url") or "?"
        fail = results.verdict != "PASS"
        terminalreporter.section("revgate verdict", red=fail, green=not fail, bold=True)
        terminalreporter.line(
            f"revgate verdict: {results.verdict} {subject} ({results.counts()})", red=fail, green=not fail, bold=True
        )
        for c in results.gating_failures:
            terminalreporter.line(scrub(f"  FAILED   {c.name}: {c.summary()}", config), red=True)
        for c in results.not_verified:
            terminalreporter.line(scrub(f"  NOT VERIFIED {c.name}: {c.summary()}", config), yellow=True)
        for c in results.advisory_failures:
            terminalreporter.line(scrub(f"  ADVISORY {c.name}: {c.summary()}", config), yellow=True)
        for c in results.retried_passes:
            terminalreporter.line(scrub(f"  RETRIED  {c.name}: {c.summary()}", config), yellow=True)
        for line in traffic_lines(config):
            terminalreporter.line(scrub(line, config))
        publication = _publication(config)
        if publication is not None:
            terminalreporter.line(publication["summary"], red=bool(publication["error"]))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.results.finished is None:
            self.results.finished = time.time()
        if self.session is not None:  # the process's exit code: nothing changes it after this
            self.results.exitstatus = int(self.session.exitstatus)
        path = config.getoption("report_json") or os.environ.get(JSON_ENV)
        if path:
            from .settings import write_report_file

            text = json.dumps(summary_dict(config, self.results), indent=2, default=str)
            problem = write_report_file(path, scrub(text, config) + "\n")
            if problem:
                import sys

                sys.stderr.write(f"revgate: the JSON report could not be written: {problem}\n")
        summary = os.environ.get(SUMMARY_ENV)
        if summary:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(markdown(config, self.results))


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if config.getoption("revision_url", None) or os.environ.get("REVGATE_REVISION_URL"):
        # here too, since -p no:revgate.plugin would take the suite plugin's own check away
        from .errors import ConfigError
        from .start_checks import refuse_disabled_plugins

        try:
            refuse_disabled_plugins(config)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    path = config.getoption("report_json", None)
    path = path if path is not None else os.environ.get(JSON_ENV)
    if path is not None and (path or config.getoption("report_json", None) is not None):
        from .errors import ConfigError
        from .settings import check_report_path

        try:
            check_report_path(path, "--report-json")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    junit = getattr(config.option, "xmlpath", None)
    if junit and config.getoption("revision_url", None):  # a gate run: pytest's JUnit XML is checked as ours are
        from .errors import ConfigError
        from .settings import check_report_path

        try:
            check_report_path(os.path.expanduser(os.path.expandvars(junit)), "--junitxml")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(ReportPlugin(config), "revgate-report")

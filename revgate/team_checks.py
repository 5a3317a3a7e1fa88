"""The team's own post-deploy tests: ``--checks DIR`` beside the suite's sections.

A checklist cannot express everything a team wants to verify after a deploy (a
login flow, a multi-step API scenario, a Playwright interaction). The team
writes those as ordinary pytest files in a folder of its repository, and the
gate runs them with its own checks:

- where: ``--checks DIR`` (repeatable), else ``REVGATE_CHECKS`` (folders
  separated by commas), else the ini value ``revgate_checks``, else the
  checklist's ``[suite] checks = ["deploy_checks"]`` (relative to the
  checklist's folder). Command-line, environment and ini folders are relative
  to the directory revgate runs from. A folder that does not exist is a usage
  error (exit 4, one line), before any check.
- what: the ``test_*.py`` files of those folders (and their subfolders), and
  nothing else of the team's repository: no conftest of a parent folder, no
  other test path. Each file is imported on its own (pytest's ``importlib``
  mode), so a team's ``test_api.py`` never clashes with the suite's.
- fixtures: ``revision_url`` (the URL under test, a str), ``api`` (an
  ``httpx.Client`` with ``base_url`` set to it and the auth headers when a
  token is given, which never go to another origin, redirects included),
  ``page`` (a Playwright page in a fresh context whose requests to the
  revision, and only those, carry the token), ``revision`` (the run_v2
  ``Revision`` under test, read from the Admin API; NOT VERIFIED without
  ``--service``).
- verdict: a team test gates like any check: a failure is a FAIL and rolls
  back; ``@pytest.mark.advisory`` makes it advisory. ``--sections`` chooses
  among the suite's own sections and keeps the team's tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError, NotVerified
from .settings import Settings, settings_key

if TYPE_CHECKING:  # pragma: no cover - imported lazily
    import httpx
    from playwright.sync_api import Browser, Page

__all__ = ["CHECKS_ENV", "add_options", "checks_dirs_of", "in_checks_dirs", "resolve_checks_dirs"]

CHECKS_ENV = "REVGATE_CHECKS"
checks_key = pytest.StashKey[tuple[Path, ...]]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("revgate")
    group.addoption(
        "--checks",
        action="append",
        default=None,
        metavar="DIR",
        help="A folder of the team's own pytest files to run with the suite's checks (repeatable). "
        f"Env: {CHECKS_ENV} (comma-separated); ini: revgate_checks; checklist: [suite] checks.",
    )
    parser.addini("revgate_checks", "Folders of the team's own pytest files (relative to where revgate runs).", type="linelist")


def _suite_checks(settings: Settings) -> list[str]:
    suite = getattr(settings.checklist, "suite", None)
    return list(getattr(suite, "checks", None) or [])


def resolve_checks_dirs(config: pytest.Config, settings: Settings, env: dict[str, str] | None = None) -> tuple[Path, ...]:
    """The team's folders, in the order of the module docstring; ConfigError for one that is not a folder."""
    env = dict(os.environ) if env is None else env
    here = config.invocation_params.dir
    given: list[str] = list(config.getoption("checks", None) or [])
    where, base = "--checks", here
    if not given and env.get(CHECKS_ENV, "").strip():
        given = [part.strip() for part in env[CHECKS_ENV].split(",") if part.strip()]
        where = CHECKS_ENV
    if not given:
        given = [line.strip() for line in config.getini("revgate_checks") if line.strip()]
        where = "ini revgate_checks"
    if not given:
        given = _suite_checks(settings)
        where, base = f"{settings.checklist_path} [suite] checks", settings.checklist_path.parent
    dirs: list[Path] = []
    for raw in given:
        if not raw.strip():
            raise ConfigError(f"{where}: an empty folder name; give the folder of the team's pytest files")
        path = Path(raw).expanduser()
        path = (path if path.is_absolute() else base / path).resolve()
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise ConfigError(f"{where} {raw!r}: {path} {what}; give the folder of the team's pytest files (such as deploy_checks)")
        suite = config.rootpath.resolve()
        if path == suite or suite in path.parents or path in suite.parents:
            raise ConfigError(f"{where} {raw!r}: {path} holds revgate's own suite; give the folder of the team's pytest files")
        if path not in dirs:
            dirs.append(path)
    return tuple(dirs)


def checks_dirs_of(config: pytest.Config) -> tuple[Path, ...]:
    """The team's folders this run collects (empty when none was given)."""
    return config.stash.get(checks_key, ())


def in_checks_dirs(config: pytest.Config, path: Path) -> bool:
    resolved = path.resolve()
    return any(d == resolved or d in resolved.parents for d in checks_dirs_of(config))


def pytest_sessionstart(session: pytest.Session) -> None:
    # After the suite plugin resolved the settings (tryfirst there); before collection.
    config = session.config
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return
    try:
        dirs = resolve_checks_dirs(config, settings)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[checks_key] = dirs
    if not dirs:
        return
    _no_conftest_above(config, dirs)
    present = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    config.args = [*config.args, *(str(d) for d in dirs if d not in present)]


def _no_conftest_above(config: pytest.Config, dirs: tuple[Path, ...]) -> None:
    """pytest loads the ``conftest.py`` of every folder above a collected path that is not above its
    ``confcutdir`` (the suite's folder): for a team folder, that is the team's whole repository. Only
    the team folder's own conftest files (in it and below) are loaded; those above it are not."""
    manager = config.pluginmanager
    considered = manager._is_in_confcutdir

    def is_in_confcutdir(path: Path) -> bool:
        return considered(path) and not any(path in d.parents for d in dirs)

    manager._is_in_confcutdir = is_in_confcutdir  # type: ignore[method-assign]


def pytest_report_header(config: pytest.Config) -> list[str]:
    dirs = checks_dirs_of(config)
    return [f"revgate team checks: {', '.join(str(d) for d in dirs)}"] if dirs else []


class TeamModule(pytest.Module):
    """A team's test file, imported on its own (``importlib`` mode: no clash with the suite's file names)."""

    def _getobj(self) -> Any:
        from _pytest.python import importtestmodule

        option = self.config.option
        saved = option.importmode
        option.importmode = "importlib"
        try:
            return importtestmodule(self.path, self.config)
        finally:
            option.importmode = saved


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if module_path.name == "__init__.py" or not in_checks_dirs(parent.config, module_path):
        return None
    resolved = module_path.resolve()
    folder = next(d for d in checks_dirs_of(parent.config) if d == resolved or d in resolved.parents)
    # the test id names the team's folder (deploy_checks/test_login.py::test_login), not a path
    # relative to the suite's rootdir, which the team's files are outside of
    nodeid = f"{folder.name}/{resolved.relative_to(folder).as_posix()}"
    return TeamModule.from_parent(parent, path=module_path, nodeid=nodeid)


# --- fixtures --------------------------------------------------------------------------------------------------


def _settings(config: pytest.Config) -> Settings:
    settings = config.stash.get(settings_key, None)
    if settings is None:  # pragma: no cover - the fixtures exist only in a gate run
        raise pytest.UsageError("revgate's fixtures need a gate run: give --revision-url")
    return settings


def _secret_headers(settings: Settings) -> dict[str, str]:
    from .target import Target

    return Target(settings=settings).headers(auth=True)


def origin_guard(origin: str, headers: dict[str, str]) -> Callable[[Any], None]:
    """An httpx request hook: ``headers`` go with every request to ``origin`` (unless the test set
    that header itself) and never elsewhere: a request or a redirect to another origin loses them."""
    from .pages import origin_of

    secret_values = set(headers.values())

    def hook(request: httpx.Request) -> None:
        if origin_of(str(request.url)) == origin:
            for name, value in headers.items():
                if name not in request.headers:
                    request.headers[name] = value
            return
        for name in [n for n, v in request.headers.items() if v in secret_values]:
            del request.headers[name]

    return hook


def revision_client(settings: Settings, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` on the revision: ``base_url``, timeout, auth headers for its origin only."""
    import httpx

    from .pages import origin_of

    hooks = kwargs.pop("event_hooks", {}) or {}
    guard = origin_guard(origin_of(settings.revision_url), _secret_headers(settings))
    return httpx.Client(
        base_url=settings.revision_url,
        timeout=kwargs.pop("timeout", settings.request_timeout),
        headers={"User-Agent": "revgate", **(kwargs.pop("headers", {}) or {})},
        event_hooks={**hooks, "request": [guard, *hooks.get("request", [])]},
        **kwargs,
    )


@pytest.fixture(scope="session")
def revision_url(pytestconfig: pytest.Config) -> str:
    """The URL under test (``--revision-url``), without a trailing slash."""
    return _settings(pytestconfig).revision_url


@pytest.fixture
def api(pytestconfig: pytest.Config) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` with ``base_url`` = the revision URL and the auth headers when a token (or an
    ID token) is given, sent to the revision's origin only; cookies live for one test."""
    client = revision_client(_settings(pytestconfig))
    yield client
    client.close()


@pytest.fixture
def page(browser: Browser, pytestconfig: pytest.Config, browser_context_args: dict[str, Any]) -> Iterator[Page]:
    """A Playwright page in a fresh context on the revision (relative URLs resolve against it); its
    requests to the revision carry the auth headers when a token is given, and no other request does."""
    from .pages import origin_of
    from .pages_visit import add_secret_route

    settings = _settings(pytestconfig)
    headers = _secret_headers(settings)
    args = {k: v for k, v in browser_context_args.items() if k not in ("record_video_dir", "record_video_size")}
    args["base_url"] = settings.revision_url
    context = browser.new_context(**args)
    context.set_default_timeout(settings.request_timeout * 1000)
    if headers:
        add_secret_route(context, origin=origin_of(settings.revision_url), headers=headers, timeout=settings.request_timeout)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def revision(pytestconfig: pytest.Config) -> Any:
    """The run_v2 ``Revision`` under test, read once from the Cloud Run Admin API (needs ``--service``)."""
    from .metrics_plugin import deployment_of
    from .revision_config import read_configuration

    deployment = deployment_of(pytestconfig)
    if deployment is None:
        raise NotVerified(
            "the revision fixture needs --service (with --region and --project) to read the revision "
            "from the Cloud Run Admin API"
        )
    configuration = read_configuration(deployment, need_service=False, need_iam=False)
    return configuration.revisions[deployment.revisions_under_test[0]]

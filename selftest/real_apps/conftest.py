"""Real web applications from PyPI, started on loopback, for the gate to judge.

Nobody on the team wrote them: JupyterLab (token auth, a JS frontend, a JSON
API, a kernel WebSocket that sends status frames), Datasette (a JSON API
with ``rows`` and ``next``, an HTML + JS frontend) and marimo (a notebook served
as a single-page app: JS bundles, stylesheets and fonts from its package, a
kernel WebSocket, a plain-text version API). Their pip requirements are in
``requirements.txt`` next to this file.

Each app runs in a temporary folder (its config, data and runtime dirs there,
nothing of the user's), on a free loopback port; start-up is waited for within
a bound, and every process is stopped at teardown. ``app_checklist`` renders
the app's checklist from this folder (``{kernel_id}`` replaced).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sandbox.standalone import free_port

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
JUPYTER_TOKEN = "selftest-jupyter-token-7c41d2"
START_BUDGET = 60.0
"""Seconds an app may take to answer its first request (JupyterLab takes a few on a loaded machine)."""

APP_JS = """document.addEventListener("DOMContentLoaded", () => {
  const mark = document.createElement("span");
  mark.id = "shop-app-ready";
  mark.textContent = "shop app ready";
  document.body.appendChild(mark);
});
"""


@dataclass
class App:
    """One running application."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    folder: Path
    log: Path
    token: str = ""
    kernel_id: str = ""
    extra: dict[str, Path] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def kill(self) -> None:
        """Stop at once, as a crash does (no graceful shutdown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _wait_up(app: App, path: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + START_BUDGET
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise RuntimeError(f"{app.name} exited with {app.proc.returncode} while starting:\n{app.log_text()[-3000:]}")
        try:
            if httpx.get(app.url + path, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    app.stop()
    raise RuntimeError(f"{app.name} did not answer {path} within {START_BUDGET:g} s:\n{app.log_text()[-3000:]}")


def start_jupyter(folder: Path, *, app_dir: Path | None = None) -> App:
    """JupyterLab with a fixed token, its own config/data/runtime dirs, and one python kernel started."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder / "notebooks"
    root.mkdir(exist_ok=True)
    (root / "hello.txt").write_text("hello from a real app\n")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(folder / "config"),
        "JUPYTER_DATA_DIR": str(folder / "data"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "IPYTHONDIR": str(folder / "ipython"),
        "HOME": str(folder),
    }
    port = free_port()
    cmd = [
        str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={JUPYTER_TOKEN}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if app_dir is not None:
        cmd.append(f"--LabApp.app_dir={app_dir}")
    log = folder / "jupyter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    app = App("jupyterlab", f"http://127.0.0.1:{port}", proc, folder, log, token=JUPYTER_TOKEN)
    headers = {"Authorization": f"token {JUPYTER_TOKEN}"}
    try:
        _wait_up(app, "/api", headers)
        answer = httpx.post(app.url + "/api/kernels", headers=headers, json={"name": "python3"}, timeout=30)
        answer.raise_for_status()
        app.kernel_id = answer.json()["id"]
    except Exception:
        app.stop()
        raise
    return app


def make_shop(db: Path, rows: int = 30) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("create table if not exists items (id integer primary key, name text not null, price real)")
        conn.executemany("insert into items (name, price) values (?, ?)", [(f"item {i}", i * 1.5) for i in range(1, rows + 1)])


def start_datasette(folder: Path) -> App:
    """Datasette serving shop.db (table items, 30 rows, 20 a page) with the shop's own JS in /assets/app.js."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "shop.db"
    make_shop(db)
    assets = folder / "assets"
    assets.mkdir(exist_ok=True)
    (assets / "app.js").write_text(APP_JS)
    metadata = folder / "metadata.json"
    metadata.write_text(json.dumps({"title": "Shop", "extra_js_urls": ["/assets/app.js"]}))
    port = free_port()
    cmd = [
        str(BIN / "datasette"), "serve", str(db), "--host", "127.0.0.1", "--port", str(port),
        "--metadata", str(metadata), "--static", f"assets:{assets}", "--setting", "default_page_size", "20",
    ]
    log = folder / "datasette.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=folder, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    app = App("datasette", f"http://127.0.0.1:{port}", proc, folder, log, extra={"db": db, "assets": assets})
    _wait_up(app, "/-/versions.json")
    return app


MARIMO_NOTEBOOK = """import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    return (mo,)


@app.cell
def _(mo):
    mo.md("# Sales report")
    return


@app.cell
def _():
    total = sum(range(10))
    print("total", total)
    return (total,)


if __name__ == "__main__":
    app.run()
"""
"""A marimo notebook served as an app: a heading, and a cell that computes (``/ 0`` breaks it)."""


def marimo_package() -> Path:
    import marimo

    return Path(marimo.__file__).resolve().parent


def start_marimo(folder: Path, *, notebook: str = MARIMO_NOTEBOOK, delete_assets: tuple[str, ...] = ()) -> App:
    """``marimo run`` of ``notebook`` (no token: an app served read-only). ``delete_assets``: glob patterns of
    files of its ``_static/assets`` to delete from a copy of the installed package, which the app then runs from
    (its Python code linked, its static folder copied: the installed package is never touched)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.py").write_text(notebook)
    env = {**os.environ, "HOME": str(folder), "MARIMO_SKIP_UPDATE_CHECK": "1", "PYTHONUNBUFFERED": "1"}
    extra: dict[str, Path] = {}
    if delete_assets:
        source = marimo_package()
        site = folder / "site"
        copy = site / "marimo"
        copy.mkdir(parents=True)
        for entry in source.iterdir():
            if entry.name != "_static":
                (copy / entry.name).symlink_to(entry)
        shutil.copytree(source / "_static", copy / "_static")
        for pattern in delete_assets:
            matched = sorted((copy / "_static" / "assets").glob(pattern))
            assert matched, f"no marimo asset matches {pattern!r}"
            for path in matched:
                path.unlink()
                extra[pattern] = path
        env["PYTHONPATH"] = str(site)
    port = free_port()
    cmd = [sys.executable, "-m", "marimo", "run", "report.py", "--host", "127.0.0.1", "--port", str(port), "--headless"]
    log = folder / "marimo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    app = App("marimo", f"http://127.0.0.1:{port}", proc, folder, log, extra=extra)
    _wait_up(app, "/health")
    return app


@pytest.fixture(scope="session")
def marimo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One healthy marimo app for the runs that leave it as they found it."""
    app = start_marimo(tmp_path_factory.mktemp("marimo"))
    yield app
    app.stop()


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One JupyterLab for the runs that leave it as they found it."""
    app = start_jupyter(tmp_path_factory.mktemp("jupyter"))
    yield app
    app.stop()


@pytest.fixture(scope="session")
def datasette(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One Datasette for the runs that leave it as they found it."""
    app = start_datasette(tmp_path_factory.mktemp("datasette"))
    yield app
    app.stop()


@pytest.fixture
def own_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    """``own_app("datasette")``: an app of this test alone, to break (stopped at teardown)."""
    apps: list[App] = []

    def start(name: str, **kwargs: object) -> App:
        starter = {"jupyter": start_jupyter, "datasette": start_datasette, "marimo": start_marimo}[name]
        app = starter(tmp_path / f"{name}-{len(apps)}", **kwargs)  # type: ignore[operator]
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()


@pytest.fixture
def lab_copy(tmp_path: Path) -> Path:
    """A copy of JupyterLab's application folder (its built JS), which a test may damage."""
    source = BIN.parent / "share" / "jupyter" / "lab"
    target = tmp_path / "lab-app"
    shutil.copytree(source, target)
    return target


@pytest.fixture
def app_checklist(tmp_path: Path) -> Callable[..., Path]:
    """``app_checklist("jupyter", app, {"old": "new"})``: this folder's checklist for the app, rendered."""

    def render(name: str, app: App, replacements: dict[str, str] | None = None) -> Path:
        text = (HERE / f"{name}.toml").read_text().replace("{kernel_id}", app.kernel_id)
        for old, new in (replacements or {}).items():
            assert old in text, f"{old!r} is not in {name}.toml"
            text = text.replace(old, new)
        path = tmp_path / f"{name}-{len(list(tmp_path.glob(name + '-*.toml')))}.toml"
        path.write_text(text)
        return path

    return render


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """pytest-playwright's ``--output`` for this test's runs."""
    return tmp_path / "test-results"

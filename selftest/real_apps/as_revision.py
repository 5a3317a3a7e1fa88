"""A real application from PyPI as a sandbox revision: ``REVGATE_SANDBOX_APP=selftest.real_apps.as_revision``.

The sandbox starts ``python -m MODULE --host 127.0.0.1 --port PORT --revision NAME [--faults LIST]``
(:mod:`sandbox.processes`) with the revision's environment, its stdout and stderr read line by line
into Cloud Logging entries as Cloud Run does. This module starts, in its place and on that port:

- ``REAL_APP=datasette`` (the default): Datasette serving ``shop.db`` (table ``items``, 30 rows), as
  ``selftest/real_apps/conftest.py`` configures it;
- ``REAL_APP=jupyter``: JupyterLab with a fixed token (``JUPYTER_TOKEN``), no browser.

Each runs in a temporary home of its own (config, data, runtime folders there), removed at exit. The
app's stdout and stderr are this process's own (the pipes the sandbox reads), nothing is reformatted:
what the app prints is what Cloud Logging gets. SIGTERM (the sandbox stopping the revision, as Cloud
Run sends it) is passed on to the app, which is waited for.

Faults (``--faults``, the sandbox's ``deploy(faults=[...])``), real breakage of the real app:

- ``plugin_raises`` (Datasette): a plugin in ``--plugins-dir`` whose ``extra_template_vars`` hook
  raises for the table page ``/shop/items`` (a 500 from Datasette, the traceback on stderr); the
  JSON API and ``/-/versions.json`` still answer right.
- ``plugin_logs_stdout`` (Datasette): the same hook catches its error and logs it with its traceback
  on stdout (a logger with a stdout handler), and the page is still a 200.
- ``missing_extension`` (JupyterLab): a server extension is enabled that is not installed; Jupyter
  logs a warning with its traceback at start and serves as usual.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

JUPYTER_TOKEN = "selftest-jupyter-token-7c41d2"

BROKEN_PLUGIN = '''
from datasette import hookimpl


@hookimpl
def extra_template_vars(view_name, request):
    if request is not None and request.path == "/shop/items":
        raise RuntimeError("shop plugin: the price column cannot be formatted")
    return {}
'''

SWALLOWING_PLUGIN = '''
import logging
import sys

from datasette import hookimpl

log = logging.getLogger("shop_plugin")
log.addHandler(logging.StreamHandler(sys.stdout))  # a twelve-factor app: its logs on stdout
log.propagate = False


@hookimpl
def extra_template_vars(view_name, request):
    if request is not None and request.path == "/shop/items":
        try:
            raise RuntimeError("shop plugin: the price column cannot be formatted")
        except RuntimeError:
            log.exception("shop plugin failed; the page is shown without prices")
    return {}
'''


def _shop(folder: Path) -> Path:
    db = folder / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table items (id integer primary key, name text not null, price real)")
        conn.executemany("insert into items (name, price) values (?, ?)", [(f"item {i}", i * 1.5) for i in range(1, 31)])
    return db


def datasette_command(folder: Path, *, host: str, port: int, faults: set[str]) -> list[str]:
    cmd = [
        sys.executable, "-m", "datasette", "serve", str(_shop(folder)), "--host", host, "--port", str(port),
        "--setting", "default_page_size", "20",
    ]
    plugin = BROKEN_PLUGIN if "plugin_raises" in faults else SWALLOWING_PLUGIN if "plugin_logs_stdout" in faults else ""
    if plugin:
        plugins = folder / "plugins"
        plugins.mkdir()
        (plugins / "shop_plugin.py").write_text(plugin)
        cmd += ["--plugins-dir", str(plugins)]
    return cmd


def jupyter_command(folder: Path, *, host: str, port: int, faults: set[str]) -> list[str]:
    root = folder / "notebooks"
    root.mkdir()
    (root / "hello.txt").write_text("hello from a real app\n")
    return [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ip={host}", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={JUPYTER_TOKEN}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *(['--ServerApp.jpserver_extensions={"shop_missing_extension": True}'] if "missing_extension" in faults else []),
    ]


APPS = {"datasette": datasette_command, "jupyter": jupyter_command}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--revision", default="")
    parser.add_argument("--faults", default="")
    parser.add_argument("--token", default="")  # the sample service's argument; a real app has its own auth
    args = parser.parse_args(argv)
    faults = {f for f in args.faults.split(",") if f}
    name = os.environ.get("REAL_APP", "datasette")
    if name not in APPS:
        print(f"REAL_APP {name!r} is not one of {sorted(APPS)}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix=f"real-app-{name}-"))
    env = {
        **os.environ,
        "HOME": str(folder),
        "JUPYTER_CONFIG_DIR": str(folder / "config"),
        "JUPYTER_DATA_DIR": str(folder / "data"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "IPYTHONDIR": str(folder / "ipython"),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        cmd = APPS[name](folder, host=args.host, port=args.port, faults=faults)
        # stdout and stderr are inherited: the sandbox's pipes, so Cloud Logging gets the app's own lines
        app = subprocess.Popen(cmd, env=env, cwd=folder, stdin=subprocess.DEVNULL)

        def stop(signum: int, _frame: object) -> None:
            if app.poll() is None:
                app.send_signal(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            return app.wait()
        except BaseException:
            app.kill()
            app.wait()
            raise
        finally:
            if app.poll() is None:
                app.kill()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

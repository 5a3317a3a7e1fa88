"""One real process per revision, running the sample service (``python -m sandbox.app``).

The daemon is a session leader; revision processes stay in its process group,
so ``down`` can always reap them (``killpg``) even if the daemon died. Each
revision logs to ``HOME/revisions/REVISION.log``.

``REVGATE_SANDBOX_APP`` names another module to run instead of ``sandbox.app``
(it must accept the same arguments); the sandbox's own tests do not need it.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.ports import HOST, pick_port

__all__ = ["APP_MODULE_ENV", "DEFAULT_TOKEN", "RevisionProcess", "ProcessManager"]

APP_MODULE_ENV = "REVGATE_SANDBOX_APP"
DEFAULT_TOKEN = "sandbox-token"


@dataclass
class RevisionProcess:
    """A running revision: its process and the loopback port it serves."""

    revision: str
    service: str
    port: int
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class ProcessManager:
    """Starts, health-checks and stops the revision processes."""

    def __init__(self, *, home: Path, token: str = DEFAULT_TOKEN) -> None:
        self._home = home
        self._token = token
        self._lock = threading.Lock()
        self._procs: dict[str, RevisionProcess] = {}

    def start(self, revision: str, *, service: str, faults: list[str], port: int = 0) -> RevisionProcess:
        """Start ``revision``'s process on ``port`` (a new port when that one is busy)."""
        with self._lock:
            old = self._procs.pop(revision, None)
        if old is not None:
            self._terminate(old)
        with self._lock:
            taken = {p.port for p in self._procs.values()}
            port = pick_port(port, taken=taken)
            logs = self._home / "revisions"
            logs.mkdir(parents=True, exist_ok=True)
            module = os.environ.get(APP_MODULE_ENV) or "sandbox.app"
            cmd = [sys.executable, "-m", module, "--host", HOST, "--port", str(port), "--revision", revision]
            if faults:
                cmd += ["--faults", ",".join(faults)]
            env = dict(os.environ, SAMPLE_API_TOKEN=self._token, K_SERVICE=service, K_REVISION=revision)
            # the token goes through the environment, never the command line (process lists show those)
            with open(logs / f"{revision}.log", "ab") as log:
                popen = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=_repo_root()
                )
            proc = RevisionProcess(revision=revision, service=service, port=port, popen=popen)
            self._procs[revision] = proc
            return proc

    def wait_ready(self, revision: str, *, timeout: float, probe: str = "tcp") -> tuple[bool, str]:
        """Run the startup probe until it succeeds: ``(True, "")`` or ``(False, why)``.

        ``tcp`` (Cloud Run's default startup probe): the port accepts a TCP
        connection, whatever the application answers. ``http`` (only when the
        deploy asks for it): ``GET /health`` answers 200.
        """
        proc = self.get(revision)
        if proc is None:
            return False, "no process is running for this revision"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            code = proc.popen.poll()
            if code is not None:
                what = "its port accepted a connection" if probe == "tcp" else "/health answered 200"
                return False, f"the container exited with code {code} before {what}"
            if probe == "tcp":
                try:
                    socket.create_connection((HOST, proc.port), timeout=1.0).close()
                    return True, ""
                except OSError as exc:
                    last = f"port {proc.port} refused the connection ({exc.__class__.__name__})"
                time.sleep(0.05)
                continue
            try:
                conn = http.client.HTTPConnection(HOST, proc.port, timeout=1.0)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return True, ""
                last = f"/health answered {status}"
            except OSError as exc:
                last = f"/health unreachable ({exc.__class__.__name__})"
            time.sleep(0.05)
        if probe == "tcp":
            return False, f"the default TCP startup probe failed for {timeout:g}s (last: {last})"
        return False, f"the HTTP startup probe (/health) did not answer 200 within {timeout:g}s (last: {last})"

    def get(self, revision: str) -> RevisionProcess | None:
        with self._lock:
            return self._procs.get(revision)

    def running(self) -> list[RevisionProcess]:
        with self._lock:
            return [p for p in self._procs.values() if p.alive()]

    def port_of(self, revision: str) -> int | None:
        proc = self.get(revision)
        return proc.port if proc is not None and proc.alive() else None

    def stop(self, revision: str) -> None:
        with self._lock:
            proc = self._procs.pop(revision, None)
        if proc is not None:
            self._terminate(proc)

    def stop_all(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        for proc in procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)

    @staticmethod
    def _terminate(proc: RevisionProcess) -> None:
        if proc.alive():
            proc.popen.terminate()
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)


def _repo_root() -> str:
    return str(Path(__file__).resolve().parent.parent)

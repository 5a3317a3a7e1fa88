"""One real process per revision, running the sample service (``python -m sandbox.app``).

The daemon is a session leader; revision processes stay in its process group,
so ``down`` can always reap them (``killpg``) even if the daemon died. Each
revision logs to ``HOME/revisions/REVISION.log``.

The container's stdout and stderr are read line by line, as Cloud Run reads them
(https://cloud.google.com/run/docs/logging, "Writing container logs"): every line
goes to the revision's log file and to ``on_output(service, revision, stream, line)``
(the daemon makes Cloud Logging entries of them, :mod:`sandbox.log_capture`); the
startup probe's result goes to ``on_system(service, revision, text, severity)``,
in the words of Cloud Run's system log.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sandbox.ports import HOST, pick_port

__all__ = ["APP_MODULE_ENV", "DEFAULT_TOKEN", "RevisionProcess", "ProcessManager"]

APP_MODULE_ENV = "REVGATE_SANDBOX_APP"
DEFAULT_TOKEN = "sandbox-token"

OutputHook = Callable[[str, str, str, str], None]
"""``on_output(service, revision, stream, line)``: one line the container wrote to stdout or stderr."""
SystemHook = Callable[[str, str, str, str], None]
"""``on_system(service, revision, text, severity)``: one line of Cloud Run's system log."""


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

    def __init__(
        self,
        *,
        home: Path,
        token: str = DEFAULT_TOKEN,
        on_output: OutputHook | None = None,
        on_system: SystemHook | None = None,
    ) -> None:
        self._home = home
        self._token = token
        self._lock = threading.Lock()
        self._procs: dict[str, RevisionProcess] = {}
        self.on_output = on_output
        self.on_system = on_system

    def start(
        self, revision: str, *, service: str, faults: list[str], port: int = 0, env: dict[str, str] | None = None
    ) -> RevisionProcess:
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
            env = {**os.environ, **(env or {}), "SAMPLE_API_TOKEN": self._token, "K_SERVICE": service, "K_REVISION": revision}
            # the token goes through the environment, never the command line (process lists show those)
            popen = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=_repo_root()
            )
            self._capture(popen, service=service, revision=revision, path=logs / f"{revision}.log")
            proc = RevisionProcess(revision=revision, service=service, port=port, popen=popen)
            self._procs[revision] = proc
            return proc

    def _capture(self, popen: subprocess.Popen[bytes], *, service: str, revision: str, path: Path) -> None:
        """Read the container's stdout and stderr, line by line, into the log file and ``on_output``."""
        log = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the last reader
        lock = threading.Lock()
        left = [2]

        def pump(stream: IO[bytes], name: str) -> None:
            try:
                for raw in iter(stream.readline, b""):
                    with lock:
                        log.write(raw)
                    hook = self.on_output
                    if hook is not None:
                        try:
                            hook(service, revision, name, raw.decode("utf-8", "replace"))
                        except Exception:  # a broken hook must never block the container's output
                            pass
            except (OSError, ValueError):
                pass
            finally:
                stream.close()
                with lock:
                    left[0] -= 1
                    if not left[0]:
                        log.close()

        for stream, name in ((popen.stdout, "stdout"), (popen.stderr, "stderr")):
            assert stream is not None
            threading.Thread(target=pump, args=(stream, name), daemon=True, name=f"output-{revision}-{name}").start()

    def _system(self, proc: RevisionProcess, text: str, severity: str) -> None:
        if self.on_system is not None:
            try:
                self.on_system(proc.service, proc.revision, text, severity)
            except Exception:
                pass

    def wait_ready(self, revision: str, *, timeout: float, probe: str = "tcp") -> tuple[bool, str]:
        """Run the startup probe (see :meth:`_probe`) and write its result to the system log."""
        proc = self.get(revision)
        ok, why, attempts = self._probe(revision, timeout=timeout, probe=probe)
        if proc is not None:
            # Cloud Run's system log words (https://cloud.google.com/run/docs/configuring/healthchecks)
            container = f'"{proc.service}-1"'
            what = "Default STARTUP TCP probe" if probe == "tcp" else "STARTUP HTTP probe"
            where = f"on port {proc.port}" + ("" if probe == "tcp" else ' path "/health"')
            plural = "attempt" if attempts == 1 else "attempts"
            if ok:
                self._system(proc, f"{what} succeeded after {attempts} {plural} for container {container} {where}.", "INFO")
            else:
                self._system(
                    proc,
                    f"{what} failed {attempts} {'time' if attempts == 1 else 'times'} consecutively for container "
                    f"{container} {where}. The instance was not started.",
                    "ERROR",
                )
        return ok, why

    def _probe(self, revision: str, *, timeout: float, probe: str = "tcp") -> tuple[bool, str, int]:
        """Run the startup probe until it succeeds: ``(True, "", attempts)`` or ``(False, why, attempts)``.

        Cloud Run's default TCP startup probe is one attempt with a 240 s timeout (period 240 s,
        failure threshold 1), so its polling here counts as one attempt; HTTP attempts are counted.

        ``tcp`` (Cloud Run's default startup probe): the port accepts a TCP
        connection, whatever the application answers. ``http`` (only when the
        deploy asks for it): ``GET /health`` answers 200.
        """
        proc = self.get(revision)
        if proc is None:
            return False, "no process is running for this revision", 0
        deadline = time.monotonic() + timeout
        last = "no answer"
        attempts = 0
        while time.monotonic() < deadline:
            code = proc.popen.poll()
            if code is not None:
                what = "its port accepted a connection" if probe == "tcp" else "/health answered 200"
                return False, f"the container exited with code {code} before {what}", max(attempts, 1)
            if probe == "tcp":
                try:
                    socket.create_connection((HOST, proc.port), timeout=1.0).close()
                    return True, "", 1
                except OSError as exc:
                    last = f"port {proc.port} refused the connection ({exc.__class__.__name__})"
                time.sleep(0.05)
                continue
            attempts += 1
            try:
                conn = http.client.HTTPConnection(HOST, proc.port, timeout=1.0)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return True, "", attempts
                last = f"/health answered {status}"
            except OSError as exc:
                last = f"/health unreachable ({exc.__class__.__name__})"
            time.sleep(0.05)
        if probe == "tcp":
            return False, f"the default TCP startup probe failed for {timeout:g}s (last: {last})", 1
        return False, f"the HTTP startup probe (/health) did not answer 200 within {timeout:g}s (last: {last})", max(attempts, 1)

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

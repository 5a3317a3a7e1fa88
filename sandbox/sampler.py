"""Resource gauges of the revision processes, read from ``/proc`` every few seconds.

For each running revision: ``container/memory/utilizations`` (RSS / 512 MiB, the
default Cloud Run memory limit), ``container/cpu/utilizations`` (CPU seconds
used / wall seconds elapsed since the previous sample, for one vCPU) and
``container/instance_count`` (1 while the process runs).

The metric store folds these samples into Cloud Run's 60 s sample points (a
distribution of the period's utilization samples, the period's last instance
count), so a revision's first CPU value, which needs two readings, may fall in
the sample period after its first requests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from sandbox.processes import ProcessManager

__all__ = ["MEMORY_LIMIT_BYTES", "GaugeHook", "Sampler", "read_proc"]

MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
MEMORY = "run.googleapis.com/container/memory/utilizations"
CPU = "run.googleapis.com/container/cpu/utilizations"
INSTANCES = "run.googleapis.com/container/instance_count"

GaugeHook = Callable[[str, str, str, float], None]  # metric_type, service, revision, value
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_proc(pid: int) -> tuple[float, int] | None:
    """``(cpu_seconds, rss_bytes)`` of ``pid`` from ``/proc``; ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15 of stat)
    return cpu, rss_pages * _PAGE


class Sampler:
    """A daemon thread that records the gauges every ``interval`` seconds."""

    def __init__(self, processes: ProcessManager, record: GaugeHook, *, interval: float = 5.0) -> None:
        self._processes = processes
        self._record = record
        self._interval = interval
        self._stop = threading.Event()
        self._last: dict[int, tuple[float, float]] = {}
        self._thread = threading.Thread(target=self._run, name="sandbox-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def sample(self) -> None:
        """Record one sample of every running revision."""
        now = time.monotonic()
        for proc in self._processes.running():
            reading = read_proc(proc.pid)
            if reading is None:
                continue
            cpu, rss = reading
            last = self._last.get(proc.pid)
            self._last[proc.pid] = (now, cpu)
            self._record(INSTANCES, proc.service, proc.revision, 1.0)
            self._record(MEMORY, proc.service, proc.revision, rss / MEMORY_LIMIT_BYTES)
            if last is not None and now > last[0]:
                self._record(CPU, proc.service, proc.revision, max(0.0, (cpu - last[1]) / (now - last[0])))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sample()
            except Exception:  # a sampler must never take the daemon down
                continue

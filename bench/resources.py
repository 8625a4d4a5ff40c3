"""CPU and memory of a process while a benchmark phase runs (psutil, sampled on a thread).

    with ResourceSampler(pid) as sampler:
        ... drive load ...
    sampler.result()  # {"cpu_seconds", "cpu_percent", "rss_peak_mb", "rss_end_mb"}

CPU is the process's user+system time over the phase (children included), so a phase
that is waiting costs nothing; peak RSS is the highest sample (every ``interval`` s).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType

import psutil

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Usage:
    wall_seconds: float
    cpu_seconds: float
    rss_peak_mb: float
    rss_end_mb: float

    @property
    def cpu_percent(self) -> float:
        """Mean CPU use over the phase, in percent of one core."""
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_seconds": round(self.wall_seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "cpu_percent": round(self.cpu_percent, 1),
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "rss_end_mb": round(self.rss_end_mb, 1),
        }


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


class ResourceSampler:
    """Samples one process's RSS every ``interval`` seconds; CPU from cpu_times at both ends."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._last = 0
        self._cpu0 = 0.0
        self._t0 = 0.0
        self._usage: Usage | None = None

    def _sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
        except psutil.Error:
            return
        self._last = rss
        self._peak = max(self._peak, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> ResourceSampler:
        self._t0 = time.perf_counter()
        self._cpu0 = _cpu(self.process)
        self._sample()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Usage:
        if self._usage is not None:
            return self._usage
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        try:
            cpu = _cpu(self.process) - self._cpu0
        except psutil.Error:
            cpu = float("nan")
        self._usage = Usage(time.perf_counter() - self._t0, cpu, self._peak / MB, self._last / MB)
        return self._usage

    def result(self) -> Usage:
        return self.stop()

    def __enter__(self) -> ResourceSampler:  # noqa: PYI034
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

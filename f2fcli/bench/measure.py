"""Timing and memory measurement: CUDA events or `time.perf_counter`, peak CUDA memory,
peak resident set size (RSS) on CPU."""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_RUNS = 3
"""Fewest timed runs, whatever the time budget."""


@dataclass(frozen=True)
class Timing:
    """Times of the timed runs (ms), after warm-up."""

    times_ms: tuple[float, ...]
    warmup: int

    @property
    def runs(self) -> int:
        return len(self.times_ms)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def min_ms(self) -> float:
        return float(min(self.times_ms))


def synchronizer(device: str) -> Callable[[], None]:
    """Waits for queued GPU work on `device` ("cpu": nothing to wait for)."""
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    if device == "mps":
        import torch

        return torch.mps.synchronize
    return lambda: None


def time_calls(fn: Callable[[], Any], *, device: str = "cpu", warmup: int = 2, runs: int = 10,
               budget_s: float | None = None) -> Timing:
    """Call `fn` `warmup` times, then time up to `runs` calls; stop early (after at least
    `MIN_RUNS`) once warm-up and timed calls together take more than `budget_s`.

    CUDA: one pair of events around each call, read after a final synchronisation (the
    events measure the GPU's time line, CPU launch gaps included). CPU and MPS:
    `time.perf_counter`, with a synchronisation after each call on MPS.
    """
    sync = synchronizer(device)
    started = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync()
    if device == "cuda":
        import torch

        pairs = []
        for i in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            pairs.append((start, end))
            if _over_budget(started, budget_s, i + 1):
                break
        times = [s.elapsed_time(e) for s, e in pairs]
    else:
        times = []
        for i in range(runs):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(1e3 * (time.perf_counter() - t0))
            if _over_budget(started, budget_s, i + 1):
                break
    return Timing(tuple(times), warmup)


def _over_budget(started: float, budget_s: float | None, done: int) -> bool:
    return (budget_s is not None and done >= MIN_RUNS
            and time.perf_counter() - started > budget_s)


# --- CPU memory ---------------------------------------------------------------------------

def current_rss() -> int | None:
    """Resident set size of this process in bytes (None where unknown)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or refused
        return None


def available_memory() -> int | None:
    """Memory the system can still give (MemAvailable), in bytes; None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        return None


def release_memory() -> None:
    """Collect garbage, empty the CUDA cache and hand freed heap back to the OS (glibc)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _read_hwm() -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakRss:
    """Peak RSS of this process while active, in bytes above the RSS at `start`.

    Linux: resets the kernel's high-water mark (/proc/self/clear_refs) and reads VmHWM,
    which sees every page ever resident. Elsewhere, or where resetting is refused, a
    thread samples the RSS every millisecond (may miss very short peaks).
    """

    def __init__(self) -> None:
        self.baseline: int | None = None
        self._peak = 0
        self._hwm = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PeakRss:
        self.baseline = current_rss()
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self._hwm = _read_hwm() is not None
        except OSError:
            self._hwm = False
        if not self._hwm and self.baseline is not None:
            self._peak = self.baseline
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            rss = current_rss()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def stop(self) -> int | None:
        """Peak increase over the baseline, bytes (None where RSS cannot be read)."""
        if self.baseline is None:
            return None
        if self._hwm:
            peak = _read_hwm()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = max(self._peak, current_rss() or 0)
        return max(0, (peak or 0) - self.baseline)


# --- CUDA memory --------------------------------------------------------------------------

class CudaPeak:
    """Peak memory allocated and reserved by torch's CUDA allocator while active, bytes
    above what was allocated at `start` (CUDA context and other libraries not counted)."""

    def start(self) -> CudaPeak:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self.base_allocated = torch.cuda.memory_allocated()
        self.base_reserved = torch.cuda.memory_reserved()
        return self

    def stop(self) -> tuple[int, int]:
        import torch

        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - self.base_allocated,
                torch.cuda.max_memory_reserved() - self.base_reserved)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says that an allocation failed (torch on any device, onnxruntime)."""
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    text = str(exc).lower()
    return any(s in text for s in ("out of memory", "can't allocate memory", "cannot allocate",
                                   "failed to allocate", "not enough memory", "bad_alloc",
                                   "bad allocation", "std::bad_alloc", "allocation failed"))

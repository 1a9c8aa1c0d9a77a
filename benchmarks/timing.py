"""Wall-clock timing of a callable: warm-up runs, then timed repeats, reported as percentiles.

Every benchmark in the project reports the median over repeats after warm-up; p10 and p90
show the spread. The garbage collector is disabled while timing so that a collection does not
land inside one sample (it is re-enabled afterwards if it was on).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Milliseconds per call: median, 10th and 90th percentile, and every sample."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    samples: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f})"


def timing_from_samples(samples_ms: list[float] | tuple[float, ...]) -> Timing:
    """Summarise samples in milliseconds as a `Timing`."""
    values = np.asarray(samples_ms, dtype=np.float64)
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return Timing(float(median), float(p10), float(p90), tuple(float(v) for v in values))


def time_callable(fn: Callable[[], object], warmup: int = 3, repeats: int = 20,
                  min_total_ms: float = 0.0) -> Timing:
    """Call `fn` `warmup` times untimed, then `repeats` times timed (one sample per call).

    `fn` must block until its work is done (for asynchronous backends it must synchronise
    itself). If `min_total_ms` is given, repeats continue past `repeats` until the timed
    samples add up to at least that long, so that very fast calls get enough samples.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    samples: list[float] = []
    total_ns = 0
    try:
        while len(samples) < repeats or total_ns < min_total_ms * 1e6:
            start = time.perf_counter_ns()
            fn()
            elapsed = time.perf_counter_ns() - start
            total_ns += elapsed
            samples.append(elapsed / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timing_from_samples(samples)


@dataclass
class BackgroundLoad:
    """How busy the machine was with *other* processes while a block ran, as a fraction of
    all CPUs (0 = idle apart from us, 1 = every core busy elsewhere); None where /proc is
    not available. Benchmarks print it so that numbers taken on a shared machine can be
    judged: above about 0.1, latencies are inflated by contention."""

    fraction: float | None = None


def _cpu_ticks() -> tuple[int, int, int] | None:
    """(all ticks, busy ticks, this process's ticks) from /proc, or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        with open(f"/proc/{os.getpid()}/stat") as own:
            own_fields = own.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return total, total - idle, int(own_fields[11]) + int(own_fields[12])


@contextmanager
def background_load() -> Iterator[BackgroundLoad]:
    """Measure the CPU time other processes used while the `with` block ran."""
    result = BackgroundLoad()
    before = _cpu_ticks()
    yield result
    after = _cpu_ticks()
    if before is None or after is None or after[0] <= before[0]:
        return
    total = after[0] - before[0]
    others = (after[1] - before[1]) - (after[2] - before[2])
    result.fraction = min(1.0, max(0.0, others / total))


def other_load(window_s: float = 0.2) -> float | None:
    """The other processes' share of all CPUs over the next `window_s` seconds."""
    with background_load() as load:
        time.sleep(window_s)
    return load.fraction


def wait_until_quiet(max_other: float = 0.15, window_s: float = 0.2,
                     timeout_s: float = 30.0) -> float | None:
    """Block until other processes use at most `max_other` of the CPUs over one window, or
    until `timeout_s` passes; return the last window's share (None without /proc).

    On a machine shared with other work, calling this before each measurement keeps most
    samples clear of contention; the share returned should still be reported.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        fraction = other_load(window_s)
        if fraction is None or fraction <= max_other or time.monotonic() >= deadline:
            return fraction

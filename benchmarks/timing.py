"""Wall-clock timing of a callable: warm-up runs, then timed repeats, reported as percentiles.

Every benchmark in the project reports the median over repeats after warm-up; p10 and p90
show the spread. The garbage collector is disabled while timing so that a collection does not
land inside one sample (it is re-enabled afterwards if it was on).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
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

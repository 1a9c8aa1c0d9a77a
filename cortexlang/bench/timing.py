"""Timing until stable: passes over a cell's batches until their medians agree.

A pass runs every batch of a cell once and yields one sample per batch. After the warm-up
pass, passes repeat until the medians of the last `window` passes lie within `tolerance` of
each other (relative to their median), or `max_passes` or `max_seconds` is reached. A cell
that never settles is reported as unstable, with its spread, the way pyperf warns:

    WARNING: treelstm H=256 B=1 cortexlang may be unstable: its pass medians vary by 23%
    (more than 5%); rerun on a quiet machine

The samples of every timed pass are kept: the cell's median, p10 and p90 are over all of
them.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOLERANCE = 0.05
"""Pass medians within 5% of each other count as stable."""


@dataclass(frozen=True)
class Timing:
    """All samples (ms), the median of each timed pass, and whether they settled."""

    samples: tuple[float, ...]
    pass_medians: tuple[float, ...]
    stable: bool
    spread: float          # (max - min) / median of the last `window` pass medians

    @property
    def passes(self) -> int:
        return len(self.pass_medians)

    def summary(self) -> tuple[float, float, float]:
        """(median, p10, p90) over every sample."""
        p10, median, p90 = np.percentile(np.asarray(self.samples), [10, 50, 90])
        return float(median), float(p10), float(p90)

    def warning(self, what: str) -> str | None:
        """The instability warning for `what`, or None when the timing settled."""
        if self.stable:
            return None
        return (f"WARNING: {what} may be unstable: its pass medians vary by "
                f"{100 * self.spread:.0f}% (more than {100 * TOLERANCE:.0f}%) after "
                f"{self.passes} passes; rerun on a quiet machine")


def spread(values: Sequence[float]) -> float:
    """(max - min) / median; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    middle = float(np.median(values))
    return (max(values) - min(values)) / middle if middle > 0 else 0.0


def time_until_stable(run: Callable[[Any], object], batches: Sequence[Any], *,
                      min_passes: int = 3, max_passes: int = 10, window: int = 3,
                      tolerance: float = TOLERANCE, max_seconds: float = 30.0,
                      clock: Callable[[], int] = time.perf_counter_ns) -> Timing:
    """One untimed pass over `batches`, then timed passes until stable (module docstring).

    At least `min_passes` timed passes run (fewer only if `max_passes` is smaller); the
    garbage collector is off while timing."""
    for batch in batches:
        run(batch)
    window = max(1, min(window, min_passes))
    samples: list[float] = []
    medians: list[float] = []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    started = clock()
    try:
        while len(medians) < max_passes:
            this_pass = []
            for batch in batches:
                begin = clock()
                run(batch)
                this_pass.append((clock() - begin) / 1e6)
            samples.extend(this_pass)
            medians.append(float(np.median(this_pass)))
            if len(medians) >= min_passes and spread(medians[-window:]) <= tolerance:
                break
            if (clock() - started) / 1e9 > max_seconds and len(medians) >= min(min_passes,
                                                                              max_passes):
                break
    finally:
        if enabled:
            gc.enable()
    last = spread(medians[-window:])
    return Timing(tuple(samples), tuple(medians), last <= tolerance, last)

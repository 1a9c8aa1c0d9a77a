"""Timing for the lessons: several configurations measured side by side, honestly.

Every lesson that times something uses `compare`. It

- warms every configuration up first (the first calls build kernels and fill caches),
- interleaves the configurations, one turn of each per round in a rotating order, so that
  a burst of load from another process lands on all of them, not on one row,
- takes at least `MIN_SAMPLES` (20) samples of each, and more of the fast ones: a row much
  faster than the slowest is called several times per turn (up to `MAX_REPEATS`), each call
  a sample, and rounds continue within a time budget per lesson section,
- reports the 10th percentile, the median and the 90th percentile of each row,
- marks a row whose generated code (OpenCL, launch plan, runtime switches) is identical to
  the reference row's as "same code": any difference between such rows is noise, and
- compares each row with the reference round by round: in every round, the row's time
  over the reference's (their calls ran back to back, so load that changes between rounds
  cancels out). The median of these ratios and its 95% confidence interval (`ratio_interval`:
  two order statistics of the ratios, no assumption about their distribution) decide: a row
  is "faster" or "slower" only when the whole interval is more than `MARGIN` (20%) away from
  1, and otherwise "no clear difference" (a difference within 20%, or one too noisy to place
  beyond it). The verdict prints the median ratio and its interval, which tell the two
  apart. (Without the margin, a small real difference is "faster" on a quiet machine and not
  on a busy one; without the pairing, the tail of slow samples that load from other
  processes adds to every row hides a 4x difference; with a rule on the spread of the rounds
  instead of the interval of their median, a 20% difference falls on either side from run
  to run; and with two verdicts short of a difference, "about the same" and "too noisy to
  tell", a row flips between them. Each way the conclusion would change between runs.)

Sentences in the lessons that compare timings are built from `Verdict`s, never written by
hand, and printed with `conclude`: on another machine, or in another run, the printed
conclusion follows the numbers. With CORTEXLANG_TUTORIAL_CONCLUSIONS=FILE, every verdict of
a printed table and every concluding sentence is also appended to FILE, one JSON object a
line (`scripts/lesson-conclusions` runs the lessons twice and compares them).

CORTEXLANG_TUTORIAL_QUICK=1 (the course's tests set it) halves the time budgets and takes at
most `QUICK_MAX_SAMPLES` (100) a row; the sample counts stay at least `MIN_SAMPLES`, so the
verdicts are computed the same way.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_SAMPLES = 20
MAX_SAMPLES = 200
QUICK_MAX_SAMPLES = 100
MAX_REPEATS = 5          # calls per turn of a fast row
MARGIN = 0.20            # a difference is called only beyond this (and the noise)
NO_CLEAR_DIFFERENCE = "no clear difference"
CONCLUSIONS_VARIABLE = "CORTEXLANG_TUTORIAL_CONCLUSIONS"


def quick() -> bool:
    """Whether the lessons run in quick mode (CORTEXLANG_TUTORIAL_QUICK=1: the tests)."""
    return os.environ.get("CORTEXLANG_TUTORIAL_QUICK", "").strip().lower() in ("1", "true",
                                                                               "yes")


@dataclass(frozen=True)
class Timing:
    """The samples of one configuration, in milliseconds."""

    label: str
    samples: tuple[float, ...]
    code: str | None = field(default=None, repr=False, compare=False)
    rounds: tuple[int, ...] = field(default=(), repr=False, compare=False)  # of each sample

    @property
    def p10(self) -> float:
        return float(np.percentile(self.samples, 10))

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.samples, 90))


def round_ratios(row: Timing, reference: Timing) -> list[float]:
    """For every round both were timed in, the row's time over the reference's in that
    round (the medians of its samples there). Calls of one round run back to back, so a
    change of load between rounds cancels out. Empty for timings without round numbers."""
    mine: dict[int, list[float]] = {}
    theirs: dict[int, list[float]] = {}
    for number, sample in zip(row.rounds, row.samples, strict=False):
        mine.setdefault(number, []).append(sample)
    for number, sample in zip(reference.rounds, reference.samples, strict=False):
        theirs.setdefault(number, []).append(sample)
    return [float(np.median(mine[number]) / np.median(theirs[number]))
            for number in sorted(mine.keys() & theirs.keys())]


@dataclass(frozen=True)
class Verdict:
    """How a row compares with the reference row: the median of the per-round ratios of
    their times (`round_ratios`) and its 95% confidence interval, low to high."""

    kind: str            # "reference", "same code", "faster", "slower" or "no clear difference"
    ratio: float
    low: float = 1.0
    high: float = 1.0

    def __str__(self) -> str:
        interval = f"95% CI {_times(self.low)}-{_times(self.high)}x" \
            if self.low != self.high else "no rounds to pair"
        if self.kind in ("faster", "slower"):
            return f"{self.kind}, {_times(self.ratio)}x ({interval})"
        if self.kind == NO_CLEAR_DIFFERENCE:
            return f"{self.kind} ({_times(self.ratio)}x; {interval})"
        return self.kind


def _times(ratio: float) -> str:
    """A ratio in two significant digits, without an exponent (170, not 1.7e+02)."""
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"


def ratio_interval(ratios: list[float]) -> tuple[float, float, float]:
    """The median of `ratios` and a 95% confidence interval for it: the order statistics of
    rank n/2 -+ 0.98 sqrt(n) (the sign test's interval; it holds whatever the distribution
    of the ratios, as long as rounds are independent)."""
    ordered = sorted(ratios)
    count = len(ordered)
    half_width = 0.98 * count ** 0.5
    low = max(0, int(np.floor(count / 2 - half_width)))
    high = min(count - 1, int(np.ceil(count / 2 + half_width)) - 1)
    return float(np.median(ordered)), ordered[low], ordered[high]


def verdict(row: Timing, reference: Timing) -> Verdict:
    """"same code" when both rows run identical code. Otherwise, with the median of the
    per-round ratios of row over reference and its 95% interval: "faster" (or "slower") when
    the whole interval is below 1 / (1 + MARGIN) (above 1 + MARGIN), else "no clear
    difference". Timings without rounds compare the ratio of their medians with the margin,
    and call a difference only where their p10-p90 ranges do not overlap."""
    if row is reference:
        return Verdict("reference", 1.0)
    ratios = round_ratios(row, reference)
    if ratios:
        ratio, low, high = ratio_interval(ratios)
        faster, slower = high < 1 / (1 + MARGIN), low > 1 + MARGIN
    else:
        ratio = row.median / reference.median
        low = high = ratio
        faster = ratio < 1 / (1 + MARGIN) and row.p90 < reference.p10
        slower = ratio > 1 + MARGIN and row.p10 > reference.p90
    if row.code is not None and row.code == reference.code:
        return Verdict("same code", ratio, low, high)
    if faster:
        return Verdict("faster", ratio, low, high)
    if slower:
        return Verdict("slower", ratio, low, high)
    return Verdict(NO_CLEAR_DIFFERENCE, ratio, low, high)


def clearly_faster(row: Timing, other: Timing) -> bool:
    """`row` is faster than `other` by the verdict's rule (margin and ranges)."""
    return verdict(row, other).kind == "faster"


def _record(entry: dict[str, object]) -> None:
    """Append `entry` (with the lesson's name) to the conclusions file, when one is named."""
    path = os.environ.get(CONCLUSIONS_VARIABLE)
    if not path:
        return
    lesson = os.path.splitext(os.path.basename(sys.argv[0] or "notebook"))[0]
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps({"lesson": lesson, **entry}) + "\n")


def conclude(sentence: str, stable: str | None = None) -> None:
    """Print a sentence computed from timings (a conclusion), and record it. `stable` is its
    qualitative content, what must not change between two runs, when the sentence also holds
    measured numbers (which do): by default the whole sentence."""
    print(sentence)
    _record({"kind": "sentence", "text": sentence,
             "stable": sentence if stable is None else stable})


def code_identity(model: Any) -> str:
    """What decides the work a compiled model does: its OpenCL, its launch plan and the
    runtime's switches. Two models with equal identities run the same code."""
    result = model.result
    return "\n".join([result.source, repr(result.kernels.launches),
                      f"dynamic_batching={result.options.dynamic_batching}"])


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1e3


def compare(calls: Mapping[str, Callable[[], object]], *, budget_s: float = 4.0,
            warmup: int = 2, codes: Mapping[str, str] | None = None,
            min_samples: int = MIN_SAMPLES) -> dict[str, Timing]:
    """Time every call of `calls` ({label: call of no arguments}), interleaved.

    After `warmup` untimed calls of each, rounds of one turn per label (the order rotates
    each round) run until every label has `min_samples` samples and the budget is spent,
    or `MAX_SAMPLES` is reached. A label whose warm-up call took a small fraction of the
    slowest label's is called up to `MAX_REPEATS` times per turn (each call one sample), so
    fast rows get more samples at little cost (at most `MAX_SAMPLES` a row). Quick mode
    halves the budget and takes at most `QUICK_MAX_SAMPLES` a row. `codes` gives
    each label's `code_identity`, for the "same code" verdict."""
    labels = list(calls)
    first = {label: float("inf") for label in labels}   # the fastest warm-up call
    for label in labels:
        for _ in range(max(warmup, 1)):
            first[label] = min(first[label], _timed(calls[label]))
    slowest = max(first.values(), default=0.0)
    repeats = {label: int(max(1, min(MAX_REPEATS, slowest / max(4 * first[label], 1e-6))))
               for label in labels}
    budget_ms = budget_s * 1e3 * (0.5 if quick() else 1.0)
    per_round = max(sum(first[label] * repeats[label] for label in labels), 1e-3)
    most = QUICK_MAX_SAMPLES if quick() else MAX_SAMPLES
    rounds = int(min(most, max(min_samples, budget_ms // per_round)))
    samples: dict[str, list[float]] = {label: [] for label in labels}
    numbers: dict[str, list[int]] = {label: [] for label in labels}
    collecting = gc.isenabled()
    gc.disable()
    try:
        for round_number in range(rounds):
            shift = round_number % len(labels)
            for label in labels[shift:] + labels[:shift]:
                for _ in range(min(repeats[label], most - len(samples[label]))):
                    samples[label].append(_timed(calls[label]))
                    numbers[label].append(round_number)
    finally:
        if collecting:
            gc.enable()
    codes = codes or {}
    return {label: Timing(label, tuple(samples[label]), codes.get(label),
                          tuple(numbers[label])) for label in labels}


def timing_rows(timings: Mapping[str, Timing], reference: str | None = None
                ) -> list[tuple[object, ...]]:
    """(label, samples, p10, median, p90, verdict against `reference`) for each row; a row
    that runs the same code as an earlier row other than the reference says so."""
    base = timings[reference] if reference is not None else None
    rows: list[tuple[object, ...]] = []
    earlier: list[Timing] = []
    for label, row in timings.items():
        text = str(verdict(row, base)) if base is not None else ""
        twin = next((other for other in earlier if row.code is not None
                     and other.code == row.code and other is not base), None)
        if twin is not None and text != "same code":
            text = f"same code as {twin.label}" + (f"; {text}" if text else "")
        rows.append((label, len(row.samples), row.p10, row.median, row.p90, text))
        earlier.append(row)
    return rows


TIMING_HEADERS = ("samples", "p10 ms", "median ms", "p90 ms")


def timing_table(timings: Mapping[str, Timing], reference: str | None = None, *,
                 first: str = "configuration", columns: tuple[str, ...] = (),
                 values: Mapping[str, tuple[object, ...]] | None = None) -> str:
    """A table of `timings`: the label, the `columns` of `values[label]`, the sample count,
    p10, median and p90, and the verdict against `reference` (when given)."""
    from common import table

    headers = [first, *columns, *TIMING_HEADERS] + ([f"vs {reference}"] if reference else [])
    rows = []
    for label, samples, p10, median, p90, against in timing_rows(timings, reference):
        if reference is not None:
            base, mine = timings[reference], timings[label]
            _record({"kind": "verdict", "reference": reference, "row": label,
                     "verdict": verdict(mine, base).kind,
                     "text": f"{against} (p10/median/p90 {mine.p10:.3g}/{mine.median:.3g}/"
                             f"{mine.p90:.3g} ms against {base.p10:.3g}/{base.median:.3g}/"
                             f"{base.p90:.3g} ms, {len(mine.samples)} and "
                             f"{len(base.samples)} samples)"})
        extra = tuple((values or {}).get(label, ("",) * len(columns)))
        rows.append((label, *extra, samples, p10, median, p90)
                    + ((against,) if reference else ()))
    return table(headers, rows)

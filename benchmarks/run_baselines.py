"""Time the baselines on batches of structures: latency per batch, preparation on its own.

`measure_baseline` prepares every batch (untimed for the latency, but its own time is
reported), runs one pass over all batches as warm-up, then times `passes` passes with one
sample per batch call, and reports the median, p10 and p90 over those samples. Cycling through
different batches (instead of repeating one) keeps the numbers from flattering caches that a
real stream of inputs would not keep warm.

    python -m benchmarks.run_baselines --model treelstm --hidden 256 512 --batch 1 10
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.baselines import IMPLEMENTATIONS, TITLES, make_baseline
from benchmarks.baselines.common import Baseline, canonical_model, random_weights
from benchmarks.inputs import SST_TEST, batches_of, grids, perfect_trees, read_sst
from benchmarks.timing import Timing, timing_from_samples
from cortexlang.inputs.structure import Structure


@dataclass(frozen=True)
class BaselineResult:
    """One baseline on one workload: latency per batch and preparation time per batch."""

    implementation: str
    model: str
    hidden: int
    batch_size: int
    latency: Timing
    prepare_ms: float
    compile_s: float | None
    notes: str


def measure_baseline(baseline: Baseline, batches: Sequence[Sequence[Structure]],
                     passes: int = 5) -> tuple[Timing, float]:
    """(latency per batch, median preparation milliseconds per batch); see the module doc."""
    prepare_samples = []
    prepared = []
    for batch in batches:
        started = time.perf_counter_ns()
        prepared.append(baseline.prepare(batch))
        prepare_samples.append((time.perf_counter_ns() - started) / 1e6)
    for item in prepared:
        baseline.run(item)
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    samples = []
    try:
        for _ in range(passes):
            for item in prepared:
                started = time.perf_counter_ns()
                baseline.run(item)
                samples.append((time.perf_counter_ns() - started) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timing_from_samples(samples), float(np.median(prepare_samples))


def workload(model: str, batch_size: int, count: int, features: int
             ) -> tuple[list[list[Structure]], int]:
    """The protocol's inputs for a model: SST test trees for the tree models, 10 x 10 grids
    for the DAG-RNN (with `features` inputs per cell); returns batches and vocabulary size."""
    if model == "dagrnn":
        return grids(10, 10, features, batch_size, count), 1
    trees, vocabulary = read_sst(SST_TEST)
    return batches_of(trees, batch_size, count), vocabulary


def run_baselines(model: str, hiddens: Sequence[int], batch_sizes: Sequence[int],
                  implementations: Sequence[str] = IMPLEMENTATIONS, count: int = 20,
                  passes: int = 5, jax_mode: str = "scan") -> list[BaselineResult]:
    """Measure each implementation for every H and batch size; skips missing frameworks."""
    model = canonical_model(model)
    results = []
    for hidden in hiddens:
        for batch_size in batch_sizes:
            batches, vocabulary = workload(model, batch_size, count, hidden)
            weights = random_weights(model, hidden, vocabulary, seed=0)
            for implementation in implementations:
                try:
                    if implementation == "jax_level":
                        from benchmarks.baselines.jax_level import make_jax_level
                        baseline: Baseline = make_jax_level(model, weights, hidden, jax_mode)
                    else:
                        baseline = make_baseline(implementation, model, weights, hidden)
                except ImportError:
                    continue
                latency, prepare_ms = measure_baseline(baseline, batches, passes)
                compile_s = getattr(baseline, "compile_seconds", None)
                results.append(BaselineResult(implementation, model, hidden, batch_size,
                                              latency, prepare_ms, compile_s, baseline.notes))
    return results


def format_results(results: Sequence[BaselineResult]) -> str:
    """A plain-text table, one row per result."""
    lines = [f"{'baseline':30} {'model':9} {'H':>4} {'B':>3} {'median ms':>10} {'p10':>8} "
             f"{'p90':>8} {'prep ms':>8} {'compile s':>9}"]
    for r in results:
        compile_text = f"{r.compile_s:9.2f}" if r.compile_s is not None else f"{'':9}"
        lines.append(f"{TITLES[r.implementation]:30} {r.model:9} {r.hidden:4d} "
                     f"{r.batch_size:3d} {r.latency.median_ms:10.3f} {r.latency.p10_ms:8.3f} "
                     f"{r.latency.p90_ms:8.3f} {r.prepare_ms:8.3f} {compile_text}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="treelstm")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--baselines", nargs="+", default=list(IMPLEMENTATIONS))
    parser.add_argument("--count", type=int, default=20, help="batches cycled through")
    parser.add_argument("--passes", type=int, default=5, help="timed passes over the batches")
    parser.add_argument("--jax-mode", default="scan", choices=("scan", "level"))
    args = parser.parse_args(argv)
    results = run_baselines(args.model, args.hidden, args.batch, args.baselines, args.count,
                            args.passes, args.jax_mode)
    print(format_results(results))


if __name__ == "__main__":
    main()

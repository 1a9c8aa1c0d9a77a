"""Time the baselines on batches of structures: latency per batch, preparation on its own.

`measure_baseline` prepares every batch (untimed for the latency, but its own time is
reported), runs one pass over all batches as warm-up, then times `passes` passes with one
sample per batch call, and reports the median, p10 and p90 over those samples. Cycling through
different batches (instead of repeating one) keeps the numbers from flattering caches that a
real stream of inputs would not keep warm. Batch sizes 1 and 10 cut the same pool of trees
(by default the first 200 SST test trees), so their per-tree costs compare directly.

On a shared machine each pass first waits (a few seconds at most) until other processes
leave the CPUs, and the other processes' share of the CPUs while timing is reported.

    python -m benchmarks.run_baselines --model treelstm --hidden 256 512 --batch 1 10
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from benchmarks.baselines import IMPLEMENTATIONS, TITLES, make_baseline
from benchmarks.baselines.common import Baseline, canonical_model, random_weights
from benchmarks.inputs import SST_TEST, batches_of, grids, perfect_trees, read_sst
from benchmarks.timing import Timing, background_load, timing_from_samples, wait_until_quiet
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
    background_load: float | None


def measure_baseline(baseline: Baseline, batches: Sequence[Sequence[Structure]],
                     passes: int = 5, quiet: bool = True
                     ) -> tuple[Timing, float, float | None]:
    """(latency per batch, median preparation milliseconds per batch, other processes' share
    of the CPUs while timing); see the module docstring. `quiet` waits for a quiet machine
    before each pass. Compilation inside `prepare` (JAX) is not counted as preparation."""
    prepare_samples = []
    prepared = []
    for batch in batches:
        compiled = getattr(baseline, "compile_seconds", 0.0)
        started = time.perf_counter_ns()
        prepared.append(baseline.prepare(batch))
        elapsed = (time.perf_counter_ns() - started) / 1e6
        # A JAX baseline compiles new shapes inside prepare; that is reported on its own.
        elapsed -= 1e3 * (getattr(baseline, "compile_seconds", 0.0) - compiled)
        prepare_samples.append(elapsed)
    for item in prepared:
        baseline.run(item)
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    samples = []
    shares = []
    try:
        for _ in range(passes):
            if quiet:
                wait_until_quiet(timeout_s=5.0)
            with background_load() as load:
                for item in prepared:
                    started = time.perf_counter_ns()
                    baseline.run(item)
                    samples.append((time.perf_counter_ns() - started) / 1e6)
            if load.fraction is not None:
                shares.append(load.fraction)
    finally:
        if gc_was_enabled:
            gc.enable()
    share = float(np.mean(shares)) if shares else None
    return timing_from_samples(samples), float(np.median(prepare_samples)), share


def workload(model: str, batch_size: int, pool: int, features: int, inputs: str = "default"
             ) -> tuple[list[list[Structure]], int]:
    """The protocol's inputs, `pool` structures cut into batches of `batch_size`; returns the
    batches and the vocabulary size. `inputs`: "sst" (SST test trees, the default for tree
    models), "perfect" (perfect trees of height 7, 255 nodes), "grid" (10 x 10 grids with
    `features` inputs per cell, the default and only choice for the DAG-RNN)."""
    count = max(1, pool // batch_size)
    if model == "dagrnn" or inputs == "grid":
        return grids(10, 10, features, batch_size, count), 1
    if inputs == "perfect":
        vocabulary = 1000
        return perfect_trees(7, batch_size, count, vocabulary), vocabulary
    trees, vocabulary = read_sst(SST_TEST)
    return batches_of(trees, batch_size, count), vocabulary


@dataclass(frozen=True)
class Workload:
    """What one measurement runs: a model at one H and batch size, on the protocol's inputs."""

    model: str
    hidden: int
    batch_size: int
    pool: int = 200
    passes: int = 3
    inputs: str = "default"
    jax_mode: str = "level"
    quiet: bool = True


def measure_one(implementation: str, job: Workload) -> BaselineResult | None:
    """Build the baseline, prepare the batches and time it; None if its framework is
    missing. Weights are uniform in +-0.1 (seed 0), as in the evaluation protocol."""
    batches, vocabulary = workload(job.model, job.batch_size, job.pool, job.hidden, job.inputs)
    weights = random_weights(job.model, job.hidden, vocabulary, seed=0)
    try:
        if implementation == "jax_level":
            from benchmarks.baselines.jax_level import make_jax_level
            baseline: Baseline = make_jax_level(job.model, weights, job.hidden, job.jax_mode)
        else:
            baseline = make_baseline(implementation, job.model, weights, job.hidden)
    except ImportError:
        return None
    latency, prepare_ms, load = measure_baseline(baseline, batches, job.passes, job.quiet)
    return BaselineResult(implementation, job.model, job.hidden, job.batch_size, latency,
                          prepare_ms, getattr(baseline, "compile_seconds", None),
                          baseline.notes, load)


def run_baselines(model: str, hiddens: Sequence[int], batch_sizes: Sequence[int],
                  implementations: Sequence[str] = IMPLEMENTATIONS, pool: int = 200,
                  passes: int = 3, jax_mode: str = "level", inputs: str = "default",
                  quiet: bool = True, isolate: bool = True) -> list[BaselineResult]:
    """Measure each implementation for every H and batch size; skips missing frameworks.

    With `isolate` (the default) every measurement runs in a fresh process. Sharing one
    process is unfair to whoever runs second: OpenBLAS's threads (numpy), PyTorch's OpenMP
    threads and XLA's thread pool each keep spinning for a while after their work, so a
    baseline that follows another one in the same process loses CPU time to its threads.
    """
    model = canonical_model(model)
    results = []
    context = multiprocessing.get_context("spawn")
    for hidden in hiddens:
        for batch_size in batch_sizes:
            job = Workload(model, hidden, batch_size, pool, passes, inputs, jax_mode, quiet)
            for implementation in implementations:
                if isolate:
                    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
                        result = executor.submit(measure_one, implementation, job).result()
                else:
                    result = measure_one(implementation, job)
                if result is not None:
                    results.append(result)
    return results


def format_results(results: Sequence[BaselineResult]) -> str:
    """A plain-text table, one row per result."""
    lines = [f"{'baseline':30} {'model':9} {'H':>4} {'B':>3} {'median ms':>10} {'p10':>8} "
             f"{'p90':>8} {'prep ms':>8} {'compile s':>9} {'others':>6}"]
    for r in results:
        compile_text = f"{r.compile_s:9.2f}" if r.compile_s is not None else f"{'':9}"
        load = f"{100 * r.background_load:5.0f}%" if r.background_load is not None else ""
        lines.append(f"{TITLES[r.implementation]:30} {r.model:9} {r.hidden:4d} "
                     f"{r.batch_size:3d} {r.latency.median_ms:10.3f} {r.latency.p10_ms:8.3f} "
                     f"{r.latency.p90_ms:8.3f} {r.prepare_ms:8.3f} {compile_text} {load:>6}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="treelstm")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--baselines", nargs="+", default=list(IMPLEMENTATIONS))
    parser.add_argument("--pool", type=int, default=200,
                        help="structures cut into batches and cycled through")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the batches")
    parser.add_argument("--jax-mode", default="level", choices=("scan", "level"))
    parser.add_argument("--inputs", default="default", choices=("default", "sst", "perfect",
                                                                "grid"))
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for other processes to leave the CPUs")
    parser.add_argument("--same-process", action="store_true",
                        help="run every baseline in this process (see run_baselines)")
    args = parser.parse_args(argv)
    results = run_baselines(args.model, args.hidden, args.batch, args.baselines, args.pool,
                            args.passes, args.jax_mode, args.inputs, not args.no_wait,
                            not args.same_process)
    print(format_results(results))


if __name__ == "__main__":
    main()

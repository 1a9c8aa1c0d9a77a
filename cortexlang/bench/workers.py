"""The interpreter and the framework baselines, each measured in a process of its own.

Frameworks' thread pools keep spinning after their work and would slow whatever runs next in
the same process, so every implementation but cortexlang gets a spawned worker of its own,
which rebuilds the cell's model, weights and batches exactly as the parent built them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from cortexlang.bench.extras import checkout_on_path
from cortexlang.bench.inputs import (
    BASELINES,
    cell_batches,
    load_model,
    model_batches,
    time_batches,
)
from cortexlang.bench.timing import Timing
from cortexlang.inputs.weights import init_weights


@dataclass(frozen=True)
class Job:
    """One cell of one implementation, rebuilt in the child process exactly as the parent
    built it (same trees, batches and weights)."""

    impl: str
    model: str
    hidden: int
    batch: int
    trees: str
    trees_used: int
    quick: bool
    passes: int
    max_passes: int


class Workers:
    """One process of its own per implementation, started on first use and kept for the
    run's later cells (the interpreter and each baseline apart from each other and from
    cortexlang: even torch's two baselines, whose thread pools would meet in one process;
    a framework's start-up, seconds for torch, is paid once per implementation)."""

    def __init__(self) -> None:
        self.executors: dict[str, Any] = {}
        self.starting: list[Any] = []

    def _executor(self, impl: str) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if impl not in self.executors:
            context = multiprocessing.get_context("spawn")
            self.executors[impl] = ProcessPoolExecutor(max_workers=1, mp_context=context)
        return self.executors[impl]

    def start(self, impls: Sequence[str]) -> None:
        """Start every implementation's process now, importing what its jobs need, without
        waiting (see `ready`)."""
        self.starting += [self._executor(impl).submit(_start_job, impl) for impl in impls]

    def ready(self) -> None:
        """Wait until every process `start` began has finished starting."""
        for future in self.starting:
            future.result()
        self.starting = []

    def measure(self, job: Job) -> tuple[Timing, str] | str:
        """(timing, notes), or why the implementation was skipped."""
        self.ready()
        return self._executor(job.impl).submit(_measure_job, job).result()

    def close(self) -> None:
        for executor in self.executors.values():
            executor.shutdown()
        self.executors.clear()


def _start_job(impl: str) -> None:
    """A worker's start-up: the imports its measurements need (a framework's included; one
    that is missing is reported by the measurement itself)."""
    import importlib

    from cortexlang.inputs.load import load_structures  # noqa: F401
    from cortexlang.interp import interpret  # noqa: F401

    if impl in BASELINES:
        checkout_on_path()
        try:
            importlib.import_module(f"benchmarks.baselines.{BASELINES[impl]}")
        except ImportError:
            pass


def _measure_job(job: Job) -> tuple[Timing, str] | str:
    from cortexlang.inputs.load import load_structures
    from cortexlang.interp import interpret

    program = load_model(job.model, job.hidden)
    weights = init_weights(program.params, seed=0)
    trees = list(load_structures(job.trees).structures[:job.trees_used])
    batches = model_batches(job.model, job.batch, trees, program,
                            cell_batches(job.quick, job.batch))
    if job.impl == "interp":
        few = batches[:2 if job.quick else 4]
        timing = time_batches(partial(interpret, program, weights=weights), few, 1)
        return timing, f"{len(few)} batches, 1 pass"
    checkout_on_path()
    try:
        from benchmarks.baselines import make_baseline

        baseline = make_baseline(BASELINES[job.impl], job.model, weights, program.size("H"))
        prepared = [baseline.prepare(b) for b in batches]
    except (ImportError, ValueError, KeyError) as error:
        return str(error)
    return time_batches(baseline.run, prepared, job.passes, job.max_passes), baseline.notes


def available_baselines(skipped: list[str]) -> list[str]:
    """The baselines whose code and framework are here; the others are listed as skipped."""
    checkout_on_path()
    try:
        import benchmarks.baselines  # noqa: F401
    except ImportError:
        skipped.append("all framework baselines: they live in the source checkout's "
                              "benchmarks/ folder, which this installation does not have")
        return []
    import importlib.util

    available = []
    for impl, module in BASELINES.items():
        framework = {"torch_eager": "torch", "torch_level": "torch",
                     "jax_level": "jax"}.get(module)
        if framework is not None and importlib.util.find_spec(framework) is None:
            skipped.append(f"{impl}: {framework} is not installed "
                                  f"(make bench installs the optional baselines)")
            continue
        available.append(impl)
    return available

"""The bench's inputs: the example models at a cell's sizes, the trees and batches they run
on, and the timing of a run over batches (shared by the bench, its worker processes and the
scripts in `benchmarks/` and `scripts/`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cortexlang.bench.config import BenchConfig
from cortexlang.bench.timing import Timing, time_until_stable
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.ir.checked import CheckedProgram

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHARED_SST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst" / "test.txt"
BUNDLED_TREES = EXAMPLES / "data" / "sst_shaped.ptb"
BASELINES = {"numpy-nodes": "numpy_nodes", "torch-eager": "torch_eager",
             "torch-level": "torch_level", "jax-level": "jax_level"}


# ---------------------------------------------------------------------------------------------
# Inputs and models


def tree_source(config: BenchConfig) -> Path:
    if config.trees is not None:
        return Path(config.trees)
    return SHARED_SST if SHARED_SST.exists() else BUNDLED_TREES


def model_sizes(model: str, hidden: int) -> dict[str, int]:
    if model == "mvrnn":
        return {"H": max(8, hidden // 4)}
    if model == "dagrnn":
        return {"H": hidden, "X": hidden}
    return {"H": hidden}


def load_model(model: str, hidden: int) -> CheckedProgram:
    return load_program(str(EXAMPLES / f"{model}.cx"), model_sizes(model, hidden))


def model_batches(model: str, batch: int, trees: list[Structure], program: CheckedProgram,
                  count: int) -> list[list[Structure]]:
    if model == "dagrnn":
        rng = np.random.default_rng(0)
        features = program.size("X")
        return [[generators.grid(10, 10, features, rng) for _ in range(batch)]
                for _ in range(count)]
    usable = max(1, min(count, len(trees) // batch))
    return [trees[i * batch:(i + 1) * batch] for i in range(usable)]


# ---------------------------------------------------------------------------------------------
# Timing


def time_batches(run: Callable[[Any], object], batches: Sequence[Any], passes: int,
                 max_passes: int | None = None) -> Timing:
    """One untimed pass over all batches, then at least `passes` timed passes, more (up to
    `max_passes`) until stable: see `cortexlang.bench.timing`."""
    return time_until_stable(run, batches, min_passes=passes,
                             max_passes=max(passes, max_passes or passes))


def cell_batches(quick: bool, batch: int) -> int:
    """How many different batches a cell cycles through."""
    return 8 if quick else (100 if batch == 1 else 20)

"""The linearizer's cost for the batches a latency measurement sees: one SST-shaped tree, ten,
a 10 x 10 grid, and a large batch (where the vectorised path is the one that matters).

    python -m benchmarks.linearize_micro [--repeats N] [--general]

`--general` forces the general (vectorised) path for every size, for a before/after
comparison with the small-input fast path. Prints the median microseconds per call.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.runtime import linearize as linearizer


def cases() -> dict[str, tuple[list[Structure], int]]:
    trees = generators.sst_like_trees(1010, rng=7)
    rng = np.random.default_rng(3)
    return {
        "1 SST-shaped tree": (trees[:1], 2),
        "10 SST-shaped trees": (trees[1:11], 2),
        "one 10x10 grid": ([generators.grid(10, 10, 16, rng)], 2),
        "10 10x10 grids": ([generators.grid(10, 10, 16, rng) for _ in range(10)], 2),
        "1000 SST-shaped trees": (trees[10:1010], 2),
    }


def median_us(structures: Sequence[Structure], max_children: int, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        linearizer.linearize(structures, max_children=max_children)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        linearizer.linearize(structures, max_children=max_children)
        samples.append((time.perf_counter_ns() - started) / 1e3)
    return float(np.median(samples))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--general", action="store_true",
                        help="force the general path (no small-input fast path)")
    args = parser.parse_args(argv)
    if args.general:
        linearizer.SMALL_INPUT_NODES = 0
    print(f"{'batch':<24}{'nodes':>8}{'median us':>12}")
    for name, (structures, max_children) in cases().items():
        repeats = args.repeats if sum(s.num_nodes for s in structures) < 5000 else 20
        nodes = sum(structure.num_nodes for structure in structures)
        print(f"{name:<24}{nodes:>8}{median_us(structures, max_children, repeats):>12.1f}")


if __name__ == "__main__":
    main()

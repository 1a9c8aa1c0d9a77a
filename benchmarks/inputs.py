"""Benchmark inputs: SST test trees in batches, perfect trees and grids, with their vocabulary.

SST trees are read with the project's PTB reader; the vocabulary is the one built while
reading (so V is the number of distinct tokens of the file plus `<unk>`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cortexlang.inputs import generators
from cortexlang.inputs.ptb import iter_ptb
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import VocabBuilder

SST_TEST = Path(os.environ.get("CORTEX_SHARED", "/work/shared")) / "data" / "sst" / "test.txt"


def read_sst(path: str | os.PathLike[str] = SST_TEST) -> tuple[list[Structure], int]:
    """All trees of an SST file and the size of the vocabulary built while reading them."""
    builder = VocabBuilder()
    trees = list(iter_ptb(path, builder.add))
    return trees, len(builder)


def batches_of(structures: list[Structure], batch_size: int,
               count: int) -> list[list[Structure]]:
    """The first `count` batches of `batch_size` consecutive structures."""
    if len(structures) < batch_size * count:
        raise ValueError(f"{len(structures)} structures cannot fill {count} batches of "
                         f"{batch_size}")
    return [structures[i * batch_size:(i + 1) * batch_size] for i in range(count)]


def perfect_trees(height: int, batch_size: int, count: int, vocabulary: int,
                  seed: int = 0) -> list[list[Structure]]:
    """Batches of perfect binary trees (height 7 has 255 nodes, the TreeFC benchmark)."""
    rng = np.random.default_rng(seed)
    return [[generators.perfect_tree(height, rng, vocab_size=vocabulary)
             for _ in range(batch_size)] for _ in range(count)]


def grids(rows: int, columns: int, features: int, batch_size: int, count: int,
          seed: int = 0) -> list[list[Structure]]:
    """Batches of rows x columns DAG-RNN grids with uniform input vectors of `features`."""
    rng = np.random.default_rng(seed)
    return [[generators.grid(rows, columns, features, rng) for _ in range(batch_size)]
            for _ in range(count)]

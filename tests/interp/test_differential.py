"""Every example model through the interpreter agrees with its independent numpy reference."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from interp_support import (
    EXAMPLE_NAMES,
    SMALL_SIZES,
    SST_TEST,
    assert_matches_reference,
    small_example,
    weights_for,
)

from cortexlang.inputs import generators
from cortexlang.inputs.ptb import iter_ptb
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import VocabBuilder, remap_words

BINARY_TREE_MODELS = ("treefc", "treegru", "treelstm", "sentiment", "mvrnn")
TREE_MODELS = BINARY_TREE_MODELS + ("childsum_treelstm",)
DTYPES = (np.float32, np.float64)


def structures_for(name: str, seed: int = 1) -> list[Structure]:
    """A batch mixing the shapes a model of this kind can meet."""
    vocabulary = SMALL_SIZES[name].get("V", 2)
    if name == "dagrnn":
        width = SMALL_SIZES[name]["X"]
        return [generators.grid(rows, cols, width, rng=seed + rows * 10 + cols)
                for rows, cols in ((1, 1), (1, 4), (4, 1), (3, 5))]
    if name == "lstm_sequence":
        return [generators.sequence(length, rng=seed + length, vocab_size=vocabulary)
                for length in (1, 2, 9)]
    batch = generators.sst_like_trees(4, rng=seed, vocab_size=vocabulary)
    batch += [generators.single_leaf(rng=seed, vocab_size=vocabulary),
              generators.perfect_tree(3, rng=seed, vocab_size=vocabulary),
              generators.skewed(6, "left", rng=seed, vocab_size=vocabulary),
              generators.skewed(5, "right", rng=seed, vocab_size=vocabulary),
              generators.chain(6, rng=seed, vocab_size=vocabulary)]
    if name == "childsum_treelstm":
        batch += [generators.random_nary_tree(4, rng=seed + extra, leaves=12,
                                              vocab_size=vocabulary) for extra in range(3)]
    return batch


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_matches_reference(name: str, dtype: type) -> None:
    program = small_example(name)
    assert_matches_reference(name, program, structures_for(name), weights_for(program, 3),
                             dtype)


def sst_trees(count: int) -> tuple[list[Structure], int]:
    """The first `count` SST test trees and the size of their vocabulary."""
    if not SST_TEST.exists():
        pytest.skip(f"{SST_TEST} is not available")
    builder = VocabBuilder()
    trees = list(islice(iter_ptb(SST_TEST, builder.add), count))
    vocab, remap = builder.freeze()
    return remap_words(trees, remap), len(vocab)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("name", TREE_MODELS)
def test_sst_trees_match_reference(name: str, dtype: type) -> None:
    trees, vocabulary = sst_trees(40)
    program = small_example(name, H=16, V=vocabulary)
    assert_matches_reference(name, program, trees, weights_for(program, 5), dtype)


def test_float64_is_not_float32() -> None:
    """The dtype is honoured all the way: float64 results differ from float32 in low bits."""
    program = small_example("treelstm")
    trees = structures_for("treelstm")
    weights = weights_for(program)
    single = assert_matches_reference("treelstm", program, trees, weights, np.float32)
    double = assert_matches_reference("treelstm", program, trees, weights, np.float64)
    assert double.outputs["h"].dtype == np.float64
    assert not np.array_equal(single.outputs["h"].astype(np.float64), double.outputs["h"])
    np.testing.assert_allclose(single.outputs["h"], double.outputs["h"], rtol=1e-4, atol=1e-6)

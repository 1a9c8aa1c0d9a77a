"""Property: on any batch of structures, the compiled model computes what the interpreter
computes. Hypothesis draws batches mixing every tree shape (single leaves, chains, perfect,
skewed, SST-like, wide n-ary) for TreeLSTM and child-sum TreeLSTM, and grids for DAG-RNN.
Hypothesis draws from the run's seed (printed in the header), so `pytest --seed N` repeats
the draws of a failed run."""

from __future__ import annotations

import pytest
from compiler_support import grid, padded, run_seed, small_example, star, vocabulary
from differential import Differential, Inputs
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.passes.pipeline import Options
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import device_limits

pytestmark = pytest.mark.opencl

TREE_KINDS = ("single_leaf", "chain", "perfect", "skewed_left", "skewed_right", "sst", "nary",
              "star")
SETTINGS = settings(max_examples=20, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow])

tree_shapes = st.lists(st.tuples(st.sampled_from(TREE_KINDS), st.integers(1, 12),
                                  st.integers(0, 2**16)), min_size=1, max_size=8)
grid_shapes = st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16)),
                       min_size=1, max_size=6)


@pytest.fixture(scope="module")
def differential(opencl_device: Device) -> Differential:
    return Differential(opencl_device, device_limits(opencl_device))


def build_tree(kind: str, size: int, seed: int, width: int, vocab: int) -> Structure:
    """One tree of a named shape; `size` scales it."""
    if kind == "single_leaf":
        tree = generators.single_leaf(rng=seed, vocab_size=vocab)
    elif kind == "chain":
        tree = generators.chain(size, rng=seed, vocab_size=vocab)
    elif kind == "perfect":
        tree = generators.perfect_tree(size % 5, rng=seed, vocab_size=vocab)
    elif kind in ("skewed_left", "skewed_right"):
        tree = generators.skewed(size, kind.split("_")[1], rng=seed, vocab_size=vocab)
    elif kind == "sst":
        (tree,) = generators.sst_like_trees(1, rng=seed, vocab_size=vocab)
    elif kind == "nary" and width > 2:
        tree = generators.random_nary_tree(width, rng=seed, leaves=size, vocab_size=vocab)
    elif kind == "star" and width > 2:
        tree = star(min(width, 1 + size % width), vocab, seed)
    else:
        tree = generators.perfect_tree(1, rng=seed, vocab_size=vocab)
    return padded(tree, width)


@pytest.mark.parametrize(("name", "options"), [
    ("treelstm", Options()),
    ("treelstm", Options().without("fuse_levels")),
    ("childsum_treelstm", Options()),
    ("sentiment", Options().without("specialize_leaves")),
], ids=["treelstm", "treelstm-level", "childsum_treelstm", "sentiment-unspecialised"])
def test_random_tree_batches_agree_with_the_interpreter(differential: Differential, name: str,
                                                        options: Options) -> None:
    program = small_example(name)
    width, vocab = program.structure.max_children, vocabulary(program)

    @SETTINGS
    @hypothesis_seed(run_seed())
    @given(shapes=tree_shapes)
    def check(shapes: list[tuple[str, int, int]]) -> None:
        structures = [build_tree(kind, size, seed, width, vocab) for kind, size, seed in shapes]
        differential.check(name, program, options, Inputs(repr(shapes), structures))

    check()


def test_random_grid_batches_agree_with_the_interpreter(differential: Differential) -> None:
    program = small_example("dagrnn")
    width = program.inputs[0].shape[0]

    @SETTINGS
    @hypothesis_seed(run_seed())
    @given(shapes=grid_shapes)
    def check(shapes: list[tuple[int, int, int]]) -> None:
        structures = [grid(rows, cols, width, seed) for rows, cols, seed in shapes]
        differential.check("dagrnn", program, Options(), Inputs(repr(shapes), structures))

    check()

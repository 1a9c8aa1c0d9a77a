"""Properties over input shapes, drawn by Hypothesis: the interpreter agrees with the references
on any tree, grid or sequence, whatever the node numbering and however inputs are batched."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_support import assert_matches_reference, small_example, weights_for

from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.interp import interpret

NONE = -1
VOCABULARY = 50
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def binary_trees(draw: st.DrawFn, max_leaves: int = 24) -> Structure:
    """Any binary tree: each node over m >= 2 leaves splits them at a drawn point."""
    leaves = draw(st.integers(1, max_leaves))
    children: list[list[int]] = []
    words: list[int] = []
    # Explicit stack of (leaves, children ids collected, still to expand): post-order ids.
    pending: list[tuple[int, bool]] = [(leaves, False)]
    finished: list[int] = []
    while pending:
        count, combine = pending.pop()
        if combine:
            right, left = finished.pop(), finished.pop()
            children.append([left, right])
            words.append(NONE)
        elif count == 1:
            children.append([NONE, NONE])
            words.append(draw(st.integers(0, VOCABULARY - 1)))
        else:
            split = draw(st.integers(1, count - 1))
            pending += [(0, True), (count - split, False), (split, False)]
            continue
        finished.append(len(children) - 1)
    return Structure(np.array(children, np.int32), np.array(words, np.int32), len(children) - 1)


@st.composite
def renumbered(draw: st.DrawFn, structures: st.SearchStrategy[Structure]) -> Structure:
    """A structure with its node ids shuffled: children no longer come first by id."""
    structure = draw(structures)
    count = structure.num_nodes
    permutation = np.array(draw(st.permutations(range(count))), dtype=np.int64)
    return permute(structure, permutation)


def permute(structure: Structure, new_id: np.ndarray) -> Structure:
    """Node `i` becomes node `new_id[i]`."""
    count = structure.num_nodes
    old_id = np.empty(count, dtype=np.int64)
    old_id[new_id] = np.arange(count)
    children = np.where(structure.children >= 0, new_id[np.maximum(structure.children, 0)],
                        NONE)[old_id]
    features = None if structure.features is None else structure.features[old_id]
    return Structure(children.astype(np.int32), structure.words[old_id],
                     int(new_id[structure.root]), features=features, kind=structure.kind)


def generated(kind: str) -> st.SearchStrategy[Structure]:
    """Shapes from the project's generators, with a drawn size and seed."""
    seeds = st.integers(0, 2**16)
    if kind == "chain":
        return st.builds(lambda length, seed: generators.chain(length, seed, VOCABULARY),
                         st.integers(1, 40), seeds)
    if kind == "perfect":
        return st.builds(lambda height, seed: generators.perfect_tree(height, seed, VOCABULARY),
                         st.integers(0, 5), seeds)
    if kind == "skewed":
        return st.builds(lambda leaves, side, seed: generators.skewed(leaves, side, seed,
                                                                      VOCABULARY),
                         st.integers(1, 20), st.sampled_from(["left", "right"]), seeds)
    return st.builds(lambda seed: generators.single_leaf(seed, VOCABULARY), seeds)


ANY_BINARY_TREE = st.one_of(binary_trees(), generated("chain"), generated("perfect"),
                            generated("skewed"), generated("single"))


@PROPERTY_SETTINGS
@given(batch=st.lists(st.one_of(ANY_BINARY_TREE, renumbered(binary_trees(12))), min_size=1,
                      max_size=4))
def test_tree_lstm_on_any_batch_of_binary_trees(batch: list[Structure]) -> None:
    program = small_example("treelstm")
    assert_matches_reference("treelstm", program, batch, weights_for(program, 11), np.float64)


@PROPERTY_SETTINGS
@given(batch=st.lists(ANY_BINARY_TREE, min_size=1, max_size=3))
def test_tree_gru_and_mv_rnn_on_any_batch(batch: list[Structure]) -> None:
    for name in ("treegru", "mvrnn"):
        program = small_example(name)
        assert_matches_reference(name, program, batch, weights_for(program, 12), np.float64)


@PROPERTY_SETTINGS
@given(structure=binary_trees(), data=st.data())
def test_numbering_and_batching_do_not_change_results(structure: Structure,
                                                      data: st.DataObject) -> None:
    program = small_example("sentiment")
    weights = weights_for(program, 13)
    alone = interpret(program, [structure], weights, dtype=np.float64)
    new_id = np.array(data.draw(st.permutations(range(structure.num_nodes))), dtype=np.int64)
    shuffled = interpret(program, [permute(structure, new_id)], weights, dtype=np.float64)
    np.testing.assert_allclose(shuffled.outputs["h"], alone.outputs["h"], rtol=1e-13)
    np.testing.assert_allclose(shuffled.states["c"][new_id], alone.states["c"], rtol=1e-13)
    np.testing.assert_allclose(shuffled.outputs["sentiment"][new_id],
                               alone.outputs["sentiment"], rtol=1e-13)
    other = generators.perfect_tree(2, rng=1, vocab_size=VOCABULARY)
    batched = interpret(program, [other, structure, other], weights, dtype=np.float64)
    np.testing.assert_array_equal(batched.for_structure("h", 1), alone.outputs["h"][0])
    np.testing.assert_array_equal(batched.for_structure("sentiment", 1),
                                  alone.outputs["sentiment"])


@PROPERTY_SETTINGS
@given(max_children=st.integers(1, 6), leaves=st.integers(1, 25), seed=st.integers(0, 2**16),
       shuffle=st.booleans())
def test_child_sum_tree_lstm_on_wide_trees(max_children: int, leaves: int, seed: int,
                                          shuffle: bool) -> None:
    if max_children == 1:
        leaves = 1
    structure = generators.random_nary_tree(max_children, rng=seed, leaves=leaves,
                                            vocab_size=VOCABULARY)
    if shuffle:
        structure = permute(structure, np.random.default_rng(seed).permutation(
            structure.num_nodes))
    program = small_example("childsum_treelstm", K=6)
    assert_matches_reference("childsum_treelstm", program, [structure],
                             weights_for(program, 14), np.float64)


@PROPERTY_SETTINGS
@given(shapes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1,
                       max_size=3), seed=st.integers(0, 2**16))
def test_dag_rnn_on_grids(shapes: list[tuple[int, int]], seed: int) -> None:
    program = small_example("dagrnn")
    grids = [generators.grid(rows, cols, 5, rng=seed + index)
             for index, (rows, cols) in enumerate(shapes)]
    assert_matches_reference("dagrnn", program, grids, weights_for(program, 15), np.float64)


@PROPERTY_SETTINGS
@given(lengths=st.lists(st.integers(1, 30), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_sequence_lstm_on_sequences(lengths: list[int], seed: int) -> None:
    program = small_example("lstm_sequence")
    sequences = [generators.sequence(length, rng=seed + length, vocab_size=VOCABULARY)
                 for length in lengths]
    assert_matches_reference("lstm_sequence", program, sequences, weights_for(program, 16),
                             np.float64)

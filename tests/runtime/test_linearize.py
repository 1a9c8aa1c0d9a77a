"""The linearizer: properties over many shapes (Hypothesis), exact small cases, and errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortexlang.errors import InputError
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.runtime.linearize import Linearized, linearize

VOCABULARY = 50


def reference_heights(structure: Structure) -> np.ndarray:
    """Heights by plain relaxation, node by node: an independent implementation."""
    height = np.zeros(structure.num_nodes, dtype=np.int64)
    for _ in range(structure.num_nodes + 1):
        changed = False
        for node in range(structure.num_nodes):
            present = structure.children[node][structure.children[node] >= 0]
            value = 1 + int(height[present].max()) if present.size else 0
            if value != height[node]:
                height[node] = value
                changed = True
        if not changed:
            return height
    raise AssertionError("no fixed point: a cycle")


def permuted(structure: Structure, permutation: np.ndarray) -> Structure:
    """The same structure with node `old` renamed `permutation[old]` (any numbering)."""
    inverse = np.argsort(permutation)
    mapping = np.append(permutation, -1).astype(np.int32)
    children = mapping[structure.children[inverse]]
    features = None if structure.features is None else structure.features[inverse]
    labels = None if structure.labels is None else structure.labels[inverse]
    return replace(structure, children=children, words=structure.words[inverse],
                   root=int(permutation[structure.root]), labels=labels, features=features,
                   tokens=())


def used_columns(structures: list[Structure]) -> int:
    """The fewest columns that hold every present child of the batch."""
    used = 1
    for structure in structures:
        present = np.flatnonzero((structure.children >= 0).any(axis=0))
        if present.size:
            used = max(used, int(present[-1]) + 1)
    return used


def check(structures: list[Structure], result: Linearized, max_children: int) -> None:
    """Every invariant of a linearization against the original structures."""
    total = sum(structure.num_nodes for structure in structures)
    assert result.num_nodes == total and result.max_children == max_children
    assert result.children.shape == (total, max_children)
    for name in ("children", "num_children", "height", "batch_start", "batch_len", "words",
                 "labels", "roots", "tree_of", "old_id", "new_id", "node_offset"):
        assert getattr(result, name).dtype == np.int32, name
    ids = np.arange(total)
    # Topological order: children before parents, and strictly lower.
    present = result.children >= 0
    parents = np.repeat(ids, max_children).reshape(total, max_children)
    assert (result.children[present] < parents[present]).all()
    assert (result.height[result.children[present]] < result.height[parents[present]]).all()
    # Batches: contiguous, in order, covering each node once, one height each.
    assert result.batch_len.sum() == total and (result.batch_len > 0).all()
    assert np.array_equal(result.batch_start, np.cumsum(result.batch_len) - result.batch_len)
    assert result.max_batch_len == int(result.batch_len.max(initial=0))
    assert (np.diff(result.height) >= 0).all()
    for start, length in zip(result.batch_start, result.batch_len, strict=True):
        batch = slice(int(start), int(start + length))
        assert len(set(result.height[batch].tolist())) == 1
        if result.dynamic_batching:
            keys = result.tree_of[batch].astype(np.int64) * total + result.old_id[batch]
            assert (np.diff(keys) > 0).all()
    if result.dynamic_batching and total:
        assert len(np.unique(result.height)) == result.num_batches
    # Leaves first: exactly the ids below num_leaves have no children.
    assert np.array_equal(result.num_children == 0, ids < result.num_leaves)
    assert np.array_equal(result.num_children, present.sum(axis=1))
    # The permutation and its inverse, and every per-node input moved with its node.
    assert np.array_equal(np.sort(result.new_id), ids)
    original = result.node_offset[result.tree_of] + result.old_id
    assert np.array_equal(result.new_id[original], ids)
    for tree, structure in enumerate(structures):
        offset = int(result.node_offset[tree])
        assert result.roots[tree] == result.new_id[offset + structure.root]
        new = result.new_id[offset:offset + structure.num_nodes]
        assert np.array_equal(result.tree_of[new], np.full(structure.num_nodes, tree))
        assert np.array_equal(result.old_id[new], np.arange(structure.num_nodes))
        assert np.array_equal(result.words[new], structure.words)
        assert np.array_equal(result.height[new], reference_heights(structure))
        if structure.labels is not None:
            assert np.array_equal(result.labels[new], structure.labels)
        else:
            assert (result.labels[new] == -1).all()
        if structure.features is not None:
            assert result.features is not None
            assert np.array_equal(result.features[new], structure.features.astype(np.float32))
        mapped = np.full((structure.num_nodes, max_children), -1, dtype=np.int64)
        columns = min(max_children, structure.children.shape[1])
        local = structure.children[:, :columns]
        mapped[:, :columns] = np.where(local >= 0, result.new_id[offset + local], -1)
        assert np.array_equal(result.children[new], mapped)


seeds = st.integers(0, 2**16)


@st.composite
def shapes(draw: st.DrawFn) -> Structure:
    kind = draw(st.sampled_from(["single_leaf", "chain", "perfect", "skewed", "nary", "sst",
                                 "grid", "sequence"]))
    seed = draw(seeds)
    if kind == "single_leaf":
        structure = generators.single_leaf(seed, VOCABULARY)
    elif kind == "chain":
        structure = generators.chain(draw(st.integers(1, 40)), seed, VOCABULARY)
    elif kind == "perfect":
        structure = generators.perfect_tree(draw(st.integers(0, 5)), seed, VOCABULARY)
    elif kind == "skewed":
        structure = generators.skewed(draw(st.integers(1, 25)),
                                      draw(st.sampled_from(["left", "right"])), seed, VOCABULARY)
    elif kind == "nary":
        structure = generators.random_nary_tree(draw(st.integers(2, 6)), seed,
                                                leaves=draw(st.integers(1, 25)),
                                                vocab_size=VOCABULARY)
    elif kind == "sst":
        (structure,) = generators.sst_like_trees(1, seed, VOCABULARY)
    elif kind == "grid":
        structure = generators.grid(draw(st.integers(1, 6)), draw(st.integers(1, 6)), 3, seed)
    else:
        structure = generators.sequence(draw(st.integers(1, 30)), seed, VOCABULARY)
    if draw(st.booleans()):
        permutation = np.random.default_rng(seed).permutation(structure.num_nodes)
        structure = permuted(structure, permutation)
    return structure


@settings(max_examples=150, deadline=None)
@given(st.lists(shapes(), min_size=1, max_size=6), st.integers(0, 2), st.booleans())
def test_linearization_invariants(structures: list[Structure], extra_columns: int,
                                  dynamic_batching: bool) -> None:
    with_features = [s.features is not None for s in structures]
    if any(with_features) and not all(with_features):
        structures = [replace(structure, features=None) for structure in structures]
    max_children = used_columns(structures) + extra_columns
    result = linearize(structures, max_children=max_children, dynamic_batching=dynamic_batching)
    check(structures, result, max_children)
    if not dynamic_batching:
        assert (result.batch_len == 1).all() and result.num_batches == result.num_nodes
        batched = linearize(structures, max_children=max_children)
        assert np.array_equal(batched.children, result.children)


def test_two_small_trees_exactly() -> None:
    # Tree 0: (a b) c: nodes 0 a, 1 b, 2 (a b), 3 c, 4 root.  Tree 1: one leaf.
    first = Structure(children=np.array([[-1, -1], [-1, -1], [0, 1], [-1, -1], [2, 3]],
                                        dtype=np.int32),
                      words=np.array([1, 2, -1, 3, -1], dtype=np.int32), root=4)
    second = Structure(children=np.array([[-1, -1]], dtype=np.int32),
                       words=np.array([4], dtype=np.int32), root=0)
    result = linearize([first, second], max_children=2)
    assert result.num_leaves == 4
    assert result.batch_start.tolist() == [0, 4, 5] and result.batch_len.tolist() == [4, 1, 1]
    assert result.words.tolist() == [1, 2, 3, 4, -1, -1]
    assert result.children.tolist() == [[-1, -1]] * 4 + [[0, 1], [4, 2]]
    assert result.roots.tolist() == [5, 3]
    assert result.new_id.tolist() == [0, 1, 4, 2, 5, 3]
    assert result.node_offset.tolist() == [0, 5, 6]
    assert "6 nodes (4 leaves)" in result.describe()


def test_grid_heights_are_longest_paths() -> None:
    grid = generators.grid(3, 4, 2, rng=0)
    result = linearize([grid], max_children=2)
    rows, cols = np.divmod(np.arange(12), 4)
    assert np.array_equal(result.height[result.new_id], rows + cols)
    assert result.num_leaves == 1 and result.num_batches == 6
    assert result.features is not None and result.features.dtype == np.float32


def test_a_chain_of_100000_nodes() -> None:
    chain = generators.chain(100_000, rng=0)
    result = linearize([chain], max_children=2)
    assert result.num_batches == 100_000 and result.num_leaves == 1
    assert result.roots.tolist() == [99_999]
    assert np.array_equal(result.new_id, np.arange(100_000))


def test_an_empty_batch() -> None:
    result = linearize([], max_children=2)
    assert result.num_nodes == 0 and result.num_batches == 0 and result.num_trees == 0
    assert result.children.shape == (0, 2)


def test_sst_shaped_batch_heights_are_small() -> None:
    trees = generators.sst_like_trees(200, rng=5, vocab_size=VOCABULARY)
    result = linearize(trees, max_children=2)
    check(trees, result, 2)
    assert result.num_batches == int(result.height[-1]) + 1 < 40


def _one(children: list[list[int]], **fields: object) -> Structure:
    array = np.array(children, dtype=np.int32)
    values: dict[str, object] = {"children": array, "root": len(children) - 1,
                                 "words": np.full(len(children), -1, dtype=np.int32)}
    values.update(fields)
    return Structure(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("structures", "code"), [
    ([_one([[-1, -1, -1], [-1, -1, -1], [-1, -1, -1], [0, 1, 2]])], "E0550"),
    ([_one([[-1, -1], [0, 5]])], "E0551"),
    ([_one([[-1, -1], [0, -7]])], "E0551"),
    ([_one([[-1, -1], [0, -1]], root=2)], "E0551"),
    ([_one([[-1, -1], [2, -1], [1, 0]])], "E0552"),
    ([_one([[-1, -1], [1, 0]])], "E0552"),
    ([generators.grid(2, 2, 3), generators.grid(2, 2, 4)], "E0553"),
    ([generators.grid(2, 2, 3), generators.chain(3)], "E0553"),
])
def test_bad_structures_are_input_errors(structures: list[Structure], code: str) -> None:
    with pytest.raises(InputError) as caught:
        linearize(structures, max_children=2)
    assert caught.value.codes == [code]


def test_unused_columns_beyond_max_children_are_fine() -> None:
    wide = _one([[-1, -1, -1, -1], [-1, -1, -1, -1], [0, 1, -1, -1]])
    result = linearize([wide], max_children=2)
    assert result.children.tolist() == [[-1, -1], [-1, -1], [0, 1]]

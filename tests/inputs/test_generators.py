"""Generators: determinism, the documented shapes, and SST-like statistics within loose bounds."""

from __future__ import annotations

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure


def tree_height(structure: Structure) -> int:
    """Height of the root, assuming post-order ids (children before parents)."""
    height = np.zeros(structure.num_nodes, dtype=np.int64)
    for node in range(structure.num_nodes):
        present = structure.children[node][structure.children[node] >= 0]
        assert (present < node).all()
        if present.size:
            height[node] = 1 + height[present].max()
    return int(height[structure.root])


def test_sst_like_statistics_resemble_the_treebank() -> None:
    trees = generators.sst_like_trees(3000, rng=0, vocab_size=21701)
    leaves = np.array([int(tree.is_leaf().sum()) for tree in trees])
    heights = np.array([tree_height(tree) for tree in trees])
    assert 18 <= leaves.mean() <= 20.5 and 7.5 <= leaves.std() <= 11
    assert leaves.min() >= 2 and leaves.max() <= 56
    assert 9 <= heights.mean() <= 11 and heights.max() <= 40
    for tree, count in zip(trees[:50], leaves[:50], strict=True):
        assert tree.num_nodes == 2 * count - 1 and tree.max_arity == 2
        assert tree.root == tree.num_nodes - 1
        words = tree.words[tree.is_leaf()]
        assert (words >= 1).all() and (words < 21701).all()
        assert (tree.words[~tree.is_leaf()] == -1).all()
        assert set(tree.labels.tolist()) <= set(range(5))


def test_words_are_zipf_like() -> None:
    words = generators.zipf_words(50_000, rng=1, vocab_size=1000)
    counts = np.bincount(words, minlength=1000)
    assert counts[0] == 0 and counts[1] > counts[2] > counts[10] > counts[500]
    assert 0.1 < counts[1] / len(words) < 0.2


def test_the_same_seed_gives_the_same_structures() -> None:
    for kind, sizes in [("sst", {}), ("nary", {"max_children": 4, "leaves": 12}),
                        ("grid", {"rows": 3, "cols": 5}), ("sequence", {"length": 7})]:
        first = generators.synthetic(kind, 4, 9, **sizes)
        second = generators.synthetic(kind, 4, np.random.default_rng(9), **sizes)
        for one, other in zip(first, second, strict=True):
            assert np.array_equal(one.children, other.children)
            assert np.array_equal(one.words, other.words)


def test_fixed_shapes() -> None:
    perfect = generators.perfect_tree(7)
    assert perfect.num_nodes == 255 and tree_height(perfect) == 7
    assert int(perfect.is_leaf().sum()) == 128
    left = generators.skewed(5, "left")
    assert left.num_nodes == 9 and tree_height(left) == 4
    spine, leaf = left.children[left.root]
    assert leaf == left.root - 1 and left.is_leaf()[leaf] and not left.is_leaf()[spine]
    right = generators.skewed(5, "right")
    leaf, spine = right.children[right.root]
    assert tree_height(right) == 4 and right.is_leaf()[leaf] and not right.is_leaf()[spine]
    chain = generators.chain(6)
    assert chain.children[:, 0].tolist() == [-1, 0, 1, 2, 3, 4]
    assert (chain.children[:, 1] == -1).all() and tree_height(chain) == 5
    assert chain.words[0] >= 1 and (chain.words[1:] == -1).all()
    sequence = generators.sequence(4)
    assert sequence.kind == "sequence" and sequence.children.shape == (4, 1)
    assert (sequence.words >= 1).all()
    leaf = generators.single_leaf()
    assert leaf.num_nodes == 1 and leaf.root == 0


def test_grid_follows_the_structure_convention() -> None:
    grid = generators.grid(3, 4, 5, rng=2)
    assert grid.kind == "dag" and grid.root == 11 and grid.features is not None
    assert grid.features.shape == (12, 5) and grid.features.dtype == np.float64
    for row in range(3):
        for col in range(4):
            left = row * 4 + col - 1 if col > 0 else -1
            up = (row - 1) * 4 + col if row > 0 else -1
            assert grid.children[row * 4 + col].tolist() == [left, up]


def test_random_nary_trees_respect_the_arity() -> None:
    for seed in range(20):
        tree = generators.random_nary_tree(3, rng=seed, leaves=15)
        assert tree.children.shape[1] == 3 and tree.max_arity <= 3
        assert int(tree.is_leaf().sum()) == 15
        tree_height(tree)


def test_pseudo_words_are_distinct_and_writable() -> None:
    words = [generators.pseudo_word(word) for word in range(1, 5000)]
    assert len(set(words)) == len(words)
    assert all(word.isalpha() and word.isascii() for word in words)
    assert len(generators.pseudo_vocab(100)) == 100


@pytest.mark.parametrize(("kind", "sizes"), [
    ("forest", {}), ("grid", {"height": 3}), ("perfect", {"height": -1}),
    ("skewed", {"leaves": 3, "side": "up"}),
])
def test_synthetic_rejects_bad_requests(kind: str, sizes: dict[str, object]) -> None:
    with pytest.raises(InputError) as caught:
        generators.synthetic(kind, 2, 0, **sizes)
    assert caught.value.codes == ["E0560"]

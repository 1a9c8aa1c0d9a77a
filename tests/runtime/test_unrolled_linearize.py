"""The unrolled order (recursive unrolling): steps of two heights made of groups.

Each property is checked against the definition, recomputed here from the input trees with
plain Python (heights by recursion, parents by scanning): a node of odd height whose one
parent is one higher sits in its parent's group, just before it; every other node heads a
group of its own in step ceil(height / 2); groups and steps are contiguous id ranges.
"""

from __future__ import annotations

import numpy as np
import pytest

from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.runtime import linearize as linearize_module
from cortexlang.runtime.linearize import Linearized, linearize


def _tree(children: list[list[int]], root: int) -> Structure:
    return Structure(np.array(children, dtype=np.int32), np.zeros(len(children), np.int32),
                     root)


def _heights(children: np.ndarray) -> list[int]:
    height: dict[int, int] = {}

    def visit(node: int) -> int:
        if node not in height:
            kids = [int(c) for c in children[node] if c >= 0]
            height[node] = 1 + max(visit(c) for c in kids) if kids else 0
        return height[node]

    return [visit(node) for node in range(len(children))]


def _check(structures: list[Structure], linearized: Linearized, dynamic: bool = True) -> None:
    """The unrolled order of `linearized` against the definition, node by node."""
    assert linearized.unroll_depth == 2
    groups, batch_groups = linearized.group_start, linearized.batch_groups
    assert groups is not None and batch_groups is not None
    assert groups[0] == 0 and groups[-1] == linearized.num_nodes
    assert np.all(np.diff(groups) >= 1)
    assert batch_groups[0] == 0 and batch_groups[-1] == len(groups) - 1
    # Batches are whole groups.
    assert np.array_equal(groups[batch_groups[:-1]], linearized.batch_start)
    ends = linearized.batch_start + linearized.batch_len
    assert np.array_equal(groups[batch_groups[1:]], ends)
    # Children before parents; leaves first.
    kids = linearized.children
    for node in range(linearized.num_nodes):
        assert all(child < node for child in kids[node] if child >= 0)
    assert (linearized.num_children[:linearized.num_leaves] == 0).all()
    assert (linearized.num_children[linearized.num_leaves:] > 0).all()
    group_of = np.repeat(np.arange(len(groups) - 1), np.diff(groups))
    batch_of = np.repeat(np.arange(linearized.num_batches), linearized.batch_len)
    for tree, structure in enumerate(structures):
        heights = _heights(structure.children)
        parents: dict[int, list[int]] = {}
        for node, row in enumerate(structure.children):
            for child in row:
                if child >= 0:
                    parents.setdefault(int(child), []).append(node)
        base = linearized.node_offset[tree]
        for old, height in enumerate(heights):
            new = linearized.new_id[base + old]
            assert linearized.height[new] == height
            mine = parents.get(old, [])
            inlined = height % 2 == 1 and len(mine) == 1 and heights[mine[0]] == height + 1
            last = groups[group_of[new] + 1] - 1
            if inlined:
                parent = linearized.new_id[base + mine[0]]
                assert parent == last, (tree, old)   # in the parent's group, before it
            else:
                assert new == last, (tree, old)      # heads its own group
                if dynamic:
                    assert batch_of[new] == (height + 1) // 2


def test_a_binary_tree_takes_half_the_steps_and_pairs_odd_children() -> None:
    tree = generators.perfect_tree(4, rng=0)
    flat = linearize([tree], max_children=2)
    unrolled = linearize([tree], max_children=2, unroll_depth=2)
    assert flat.num_batches == 5 and unrolled.num_batches == 3
    _check([tree], unrolled)
    # Heights 3 and 4: the root's two children, then the root, one group.
    last = unrolled.batch_groups[-2]
    assert np.diff(unrolled.group_start)[last:].tolist() == [3]
    # Heights 1 and 2: four groups of two children and their parent.
    assert np.diff(unrolled.group_start)[unrolled.batch_groups[1]:last].tolist() == [3] * 4


@pytest.mark.parametrize("shape", ["single-leaf", "height-1", "height-2", "chain",
                                   "unary-odd", "no-pairs", "sst", "nary", "sequence"])
def test_every_shape_follows_the_definition(shape: str) -> None:
    structures = {
        "single-leaf": [generators.single_leaf(rng=0)],
        "height-1": [_tree([[-1, -1], [-1, -1], [0, 1]], 2)],
        "height-2": [generators.perfect_tree(2, rng=1)],
        "chain": [generators.chain(9, rng=2)],
        # A unary node of height 1 under a node of height 3: not paired (two heights apart).
        "unary-odd": [_tree([[-1, -1], [0, -1], [-1, -1], [2, -1], [3, -1], [1, 4]], 5)],
        # Only heights 0 and 1, each height-1 node a root: no node pairs.
        "no-pairs": [_tree([[-1, -1], [-1, -1], [0, 1]], 2), generators.single_leaf(rng=3)],
        "sst": list(generators.sst_like_trees(12, rng=4)),
        "nary": [generators.random_nary_tree(4, rng=5, leaves=15)],
        "sequence": [generators.sequence(n, rng=6 + n) for n in (1, 2, 5, 8)],
    }[shape]
    width = max(s.children.shape[1] for s in structures)
    unrolled = linearize(structures, max_children=width, unroll_depth=2)
    _check(structures, unrolled)
    flat = linearize(structures, max_children=width)
    assert unrolled.num_batches == 1 + flat.num_batches // 2   # heights 0, 1-2, 3-4, ...
    if shape == "no-pairs":
        assert (np.diff(unrolled.group_start) == 1).all()


def test_a_node_with_two_parents_is_never_inlined() -> None:
    # Node 2 (height 1) is a child of 3 and of 4 (both height 2).
    dag = _tree([[-1, -1], [-1, -1], [0, 1], [2, -1], [2, 0], [3, 4]], 5)
    unrolled = linearize([dag], max_children=2, unroll_depth=2)
    _check([dag], unrolled)
    node = unrolled.new_id[2]
    assert node in unrolled.group_start.tolist()     # a group of its own
    assert node + 1 in unrolled.group_start.tolist()


def test_without_dynamic_batching_each_group_is_a_batch() -> None:
    trees = list(generators.sst_like_trees(3, rng=7))
    unrolled = linearize(trees, max_children=2, dynamic_batching=False, unroll_depth=2)
    _check(trees, unrolled, dynamic=False)
    assert np.array_equal(unrolled.batch_groups, np.arange(unrolled.num_groups + 1))


def test_the_small_and_the_general_path_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    trees = list(generators.sst_like_trees(4, rng=8))
    small = linearize(trees, max_children=2, unroll_depth=2)
    monkeypatch.setattr(linearize_module, "SMALL_INPUT_NODES", 0)
    general = linearize(trees, max_children=2, unroll_depth=2)
    for field in ("children", "height", "batch_start", "batch_len", "group_start",
                  "batch_groups", "new_id", "words"):
        assert np.array_equal(getattr(small, field), getattr(general, field)), field


def test_an_unknown_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="unroll_depth"):
        linearize([generators.single_leaf(rng=0)], max_children=2, unroll_depth=3)

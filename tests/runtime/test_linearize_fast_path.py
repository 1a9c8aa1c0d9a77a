"""The small-input fast path of the linearizer gives the general path's result, array for
array, and leaves every malformed input to the general path's located errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortexlang.errors import CortexError
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.runtime import linearize as linearizer

FIELDS = [field.name for field in dataclasses.fields(linearizer.Linearized)
          if field.name != "seconds"]


def both_paths(structures, max_children, dynamic_batching=True, monkeypatch=None):  # noqa: ANN001, ANN201
    fast = linearizer._linearize_small(structures, max_children, dynamic_batching, 0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linearizer, "SMALL_INPUT_NODES", 0)
        general = linearizer.linearize(structures, max_children=max_children,
                                       dynamic_batching=dynamic_batching)
    return fast, general


def assert_same(fast, general) -> None:  # noqa: ANN001
    assert fast is not None
    for name in FIELDS:
        ours, theirs = getattr(fast, name), getattr(general, name)
        if isinstance(theirs, np.ndarray):
            assert ours.dtype == theirs.dtype, name
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
        else:
            assert ours == theirs, name


def random_tree(draw, max_children: int) -> Structure:  # noqa: ANN001
    size = draw(st.integers(1, 12))
    # node i's parent is a random earlier node, then the ids are shuffled
    permutation = draw(st.permutations(range(size)))
    children = np.full((size, max_children), -1, dtype=np.int32)
    for node in range(1, size):
        free = [p for p in range(node) if (children[permutation[p]] < 0).any()]
        if not free:
            break
        parent = permutation[draw(st.sampled_from(free))]
        slots = np.flatnonzero(children[parent] < 0)
        children[parent, draw(st.sampled_from(list(slots)))] = permutation[node]
    reachable = {permutation[0]}
    stack = [permutation[0]]
    while stack:
        for child in children[stack.pop()]:
            if child >= 0 and child not in reachable:
                reachable.add(int(child))
                stack.append(int(child))
    words = np.array(draw(st.lists(st.integers(-1, 50), min_size=size, max_size=size)),
                     dtype=np.int32)
    return Structure(children, words, int(permutation[0]))


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 3), st.booleans())
def test_random_forests_match_the_general_path(data, max_children: int,  # noqa: ANN001
                                               dynamic: bool) -> None:
    forest = [random_tree(data.draw, max_children) for _ in range(data.draw(st.integers(1, 5)))]
    assert_same(*both_paths(forest, max_children, dynamic))


def test_sst_trees_and_grids_match_the_general_path() -> None:
    trees = generators.sst_like_trees(10, rng=1)
    assert_same(*both_paths(trees[:1], 2))
    assert_same(*both_paths(trees, 2))
    rng = np.random.default_rng(0)
    grids = [generators.grid(4, 5, 3, rng), generators.grid(3, 3, 3, rng)]
    assert_same(*both_paths(grids, 2))                       # DAGs, features
    assert_same(*both_paths([generators.sequence(7, rng=2)], 1))
    assert_same(*both_paths(trees[:3], 4))                  # padded to more children


def test_a_small_batch_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(linearizer, "_levels", lambda *args: calls.append(args))
    linearizer.linearize(generators.sst_like_trees(2, rng=3), max_children=2)
    assert calls == []          # the general sweep did not run


@pytest.mark.parametrize("make", [
    lambda: Structure(np.array([[1, 5], [-1, -1]], dtype=np.int32),
                      np.zeros(2, dtype=np.int32), 0),            # child outside: E0551
    lambda: Structure(np.array([[1, -1], [0, -1]], dtype=np.int32),
                      np.zeros(2, dtype=np.int32), 0),            # a cycle: E0552
    lambda: Structure(np.array([[-1, -1]], dtype=np.int32), np.zeros(1, dtype=np.int32), 3),
    lambda: Structure(np.array([[-1, -1, 0], [-1, -1, -1]], dtype=np.int32),
                      np.zeros(2, dtype=np.int32), 0),            # position 2 > max: E0550
])
def test_malformed_small_inputs_get_the_general_paths_errors(make) -> None:  # noqa: ANN001
    structure = make()
    assert linearizer._linearize_small([structure], 2, True, 0.0) is None
    with pytest.raises(CortexError) as fast_error:
        linearizer.linearize([structure], max_children=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linearizer, "SMALL_INPUT_NODES", 0)
        with pytest.raises(CortexError) as general_error:
            linearizer.linearize([structure], max_children=2)
    assert fast_error.value.render() == general_error.value.render()

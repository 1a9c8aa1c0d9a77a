"""The interpreter's semantics, one rule of `cortexlang.ir.checked` at a time, on small models."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from interp_support import small_example, weights_for

from cortexlang.errors import CortexError, InputError
from cortexlang.frontend.check import check_source
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.interp import interpret
from cortexlang.interp.evaluate import NodeEvaluator
from cortexlang.ir.operators import sigmoid, softmax

NONE = -1


def tree(children: list[list[int]], words: list[int] | None = None, root: int | None = None,
         features: np.ndarray | None = None) -> Structure:
    rows = np.array(children, dtype=np.int32)
    count = rows.shape[0]
    return Structure(rows, np.array(words if words is not None else [NONE] * count, np.int32),
                     count - 1 if root is None else root, features=features)


REDUCTIONS = """
model Reductions
sizes H = 2
structure tree(max_children=3)
param E[4, H]
input word: token
state s[H], m[H], x[H], third[H], count[H]
leaf n:
    s = E[word(n)]; m = E[word(n)]; x = E[word(n)]; third = E[word(n)]; count = zeros(H)
internal n:
    s = sum(s[k] for k in children(n))
    m = mean(s[k] for k in children(n))
    x = max(s[k] for k in children(n))
    third = s[child(n, 2)]
    count = num_children(n) * ones(H)
output s[root], m[root], x[root], third[root], count[root]
"""


def test_reductions_follow_the_children_and_missing_children_read_zeros() -> None:
    program = check_source(REDUCTIONS)
    table = np.array([[1.0, -2.0], [3.0, 4.0], [-5.0, 6.0], [0.0, 0.0]])
    # node 3 has two children (0, 1) and an empty third slot; node 4 has three.
    structure = tree([[NONE] * 3, [NONE] * 3, [NONE] * 3, [0, 1, NONE], [3, 2, 1]],
                     words=[0, 1, 2, NONE, NONE])
    result = interpret(program, [structure], {"E": table}, dtype=np.float64)
    states = result.states
    np.testing.assert_array_equal(states["s"][3], [4.0, 2.0])
    np.testing.assert_array_equal(states["m"][3], [2.0, 1.0])
    np.testing.assert_array_equal(states["x"][3], [3.0, 4.0])
    np.testing.assert_array_equal(states["third"][3], [0.0, 0.0])   # child(n, 2) is missing
    np.testing.assert_array_equal(states["count"][3], [2.0, 2.0])
    np.testing.assert_array_equal(result.outputs["s"][0], [2.0, 12.0])
    np.testing.assert_array_equal(result.outputs["third"][0], [3.0, 4.0])
    np.testing.assert_array_equal(result.outputs["count"][0], [3.0, 3.0])


CONDITIONS = """
model Conditions
sizes H = 1
structure tree(max_children=2)
param E[3, H]
input word: token
state h[H], leftleaf[H]
internal n:
    leaf_word = E[word(n)] if isleaf(n) else zeros(H)
    h = leaf_word + (1 if num_children(n) == 2 else 10) + sum(h[k] for k in children(n))
    leftleaf = ones(H) if isleaf(left(n)) else zeros(H)
output total[all] = h + (E[word(n)] if isleaf(n) else 100 * ones(H))
"""


def test_structural_selects_without_a_leaf_rule() -> None:
    program = check_source(CONDITIONS)
    assert not program.leaf_explicit
    # 0, 1 leaves; 2 = (0, 1); 3 = (2) with one child; leaves run the internal rule too.
    structure = tree([[NONE, NONE], [NONE, NONE], [0, 1], [2, NONE]], words=[0, 1, NONE, NONE])
    table = np.array([[1.0], [2.0], [4.0]])
    result = interpret(program, [structure], {"E": table}, dtype=np.float64)
    # A leaf has no children: word + 10 (num_children is 0, not 2).
    np.testing.assert_array_equal(result.states["h"][:, 0], [11.0, 12.0, 24.0, 34.0])
    # isleaf of a missing child is false: a leaf's own left child is missing.
    np.testing.assert_array_equal(result.states["leftleaf"][:, 0], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(result.outputs["total"][:, 0], [12.0, 14.0, 124.0, 134.0])
    assert result.selectors == {"total": "all"}


def test_word_lookups_only_where_evaluated() -> None:
    """Internal nodes of SST trees have no word; the guarded lookup never runs there."""
    program = small_example("childsum_treelstm")
    trees = generators.sst_like_trees(3, rng=4, vocab_size=50)
    assert all((t.words[~t.is_leaf()] == NONE).all() for t in trees)
    interpret(program, trees, weights_for(program))


def test_a_missing_word_is_a_located_input_error() -> None:
    program = small_example("treefc")
    good = generators.perfect_tree(1, rng=0, vocab_size=50)
    bad = tree([[NONE, NONE], [NONE, NONE], [0, 1]], words=[3, NONE, NONE])
    with pytest.raises(InputError) as raised:
        interpret(program, [good, bad], weights_for(program))
    assert raised.value.codes == ["E0554"]
    diagnostic = raised.value.diagnostics[0]
    assert "structure 1, node 1" in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.line == 16
    assert "Emb[word(n)]" in str(raised.value)


def test_a_word_outside_the_table_is_an_input_error() -> None:
    program = small_example("treefc")
    with pytest.raises(InputError) as raised:
        interpret(program, [tree([[NONE, NONE]], words=[50])], weights_for(program))
    assert raised.value.codes == ["E0555"]


def test_word_matrices_are_shared_modulo_the_table() -> None:
    program = small_example("mvrnn")     # M = 7 word matrices
    weights = weights_for(program)
    result = interpret(program, [tree([[NONE, NONE]], words=[45])], weights, dtype=np.float64)
    np.testing.assert_array_equal(result.states["A"][0], weights["EmbM"][45 % 7])


@pytest.mark.parametrize("features, message", [(None, "no feature vectors"),
                                               (np.zeros((4, 3)), "features of shape")])
def test_vector_inputs_come_from_features(features: np.ndarray | None, message: str) -> None:
    program = small_example("dagrnn")    # X = 5
    grid = generators.grid(2, 2, 5, rng=0)
    bad = Structure(grid.children, grid.words, grid.root, features=features)
    with pytest.raises(InputError, match=message) as raised:
        interpret(program, [grid, bad], weights_for(program))
    assert raised.value.codes == ["E0556"]


@pytest.mark.parametrize("children, code", [
    ([[NONE, NONE], [0, 2], [1, NONE]], "E0552"),           # 1 -> 2 -> 1
    ([[NONE, NONE], [0, 0], [1, 1]], None),                  # a DAG may share children
    ([[NONE, NONE], [0, 5]], "E0551"),
    ([[NONE, NONE, NONE], [0, NONE, 0]], "E0550"),           # a third child in a binary model
])
def test_malformed_structures(children: list[list[int]], code: str | None) -> None:
    program = small_example("treefc")
    structure = tree(children, words=[1] + [NONE] * (len(children) - 1))
    if code is None:
        interpret(program, [structure], weights_for(program))
        return
    with pytest.raises(InputError) as raised:
        interpret(program, [structure], weights_for(program))
    assert raised.value.codes == [code]


def test_dag_nodes_are_computed_once_and_any_numbering_works(
        monkeypatch: pytest.MonkeyPatch) -> None:
    program = small_example("dagrnn")
    grid = generators.grid(3, 3, 5, rng=2)
    # Number the cells backwards, so that children have larger ids than their parents.
    count = grid.num_nodes
    new_id = np.arange(count)[::-1]
    children = np.where(grid.children >= 0, new_id[np.maximum(grid.children, 0)], NONE)
    backwards = Structure(children[::-1].astype(np.int32), grid.words[::-1].copy(),
                          int(new_id[grid.root]), features=grid.features[::-1].copy())
    visits: list[int] = []
    original = NodeEvaluator.run_rule

    def counting(self: NodeEvaluator, rule: object, node: int) -> None:
        visits.append(node)
        original(self, rule, node)  # type: ignore[arg-type]

    monkeypatch.setattr(NodeEvaluator, "run_rule", counting)
    weights = weights_for(program)
    forwards = interpret(program, [grid], weights, dtype=np.float64)
    assert sorted(visits) == list(range(count))
    visits.clear()
    reordered = interpret(program, [backwards], weights, dtype=np.float64)
    assert sorted(visits) == list(range(count))
    np.testing.assert_allclose(reordered.outputs["h"], forwards.outputs["h"], rtol=1e-14)
    np.testing.assert_allclose(reordered.states["h"][::-1], forwards.states["h"], rtol=1e-14)


def test_weights_are_checked_against_the_model() -> None:
    program = small_example("treefc")
    weights = weights_for(program)
    leaf = [tree([[NONE, NONE]], words=[1])]
    with pytest.raises(InputError) as raised:
        interpret(program, leaf, {k: v for k, v in weights.items() if k != "W"})
    assert raised.value.codes == ["E0530"]
    with pytest.raises(InputError) as raised:
        interpret(program, leaf, {**weights, "b": np.zeros(3)})
    assert raised.value.codes == ["E0532"]
    with pytest.raises(InputError) as raised:
        interpret(program, leaf, {**weights, "b": np.zeros(8, dtype=np.int64)})
    assert raised.value.codes == ["E0535"]
    with pytest.raises(ValueError):
        interpret(program, leaf, weights, dtype=np.float16)


def test_batches_and_offsets() -> None:
    program = small_example("sentiment")
    trees = generators.sst_like_trees(3, rng=1, vocab_size=50)
    result = interpret(program, trees, weights_for(program))
    sizes = [t.num_nodes for t in trees]
    assert result.node_offset.tolist() == [0, *np.cumsum(sizes).tolist()]
    assert result.outputs["h"].shape == (3, 8)
    assert result.outputs["sentiment"].shape == (sum(sizes), 5)
    np.testing.assert_allclose(result.outputs["sentiment"].sum(axis=1), 1.0, rtol=1e-6)
    assert result.for_structure("sentiment", 2).shape == (sizes[2], 5)
    assert set(result.timings) == {"compute"}
    empty = interpret(program, [], weights_for(program))
    assert empty.node_offset.tolist() == [0]
    assert empty.outputs["h"].shape == (0, 8) and empty.states["c"].shape == (0, 8)


def test_a_chain_of_100000_nodes_runs_without_recursion() -> None:
    program = small_example("treefc", H=4, V=10)
    weights = weights_for(program)
    chain = generators.chain(100_000, rng=0, vocab_size=10)
    start = time.perf_counter()
    result = interpret(program, [chain], weights, dtype=np.float64)
    assert time.perf_counter() - start < 30
    # The chain's nodes have one child: h_t = tanh(W h_{t-1} + b).
    hidden = weights["Emb"][chain.words[0]]
    for _ in range(chain.num_nodes - 1):
        hidden = np.tanh(weights["W"] @ hidden + weights["b"])
    np.testing.assert_allclose(result.outputs["h"][0], hidden, rtol=1e-12)


def test_sigmoid_and_softmax_are_stable() -> None:
    values = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sigmoid(values)
        probabilities = softmax(values)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [0.0, 9.357623e-14, 0.5, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(probabilities, [0, 0, 0, 0, 1], atol=1e-30)
    assert sigmoid(np.float64(2.0)) == pytest.approx(1 / (1 + np.exp(-2.0)))


TWO_TOKENS = """
model TwoTokens
sizes H = 2
structure binary_tree
param E[4, H], T[4, H]
input word: token
input tag: token
state h[H]
leaf n:
    h = E[word(n)] + T[tag(n)]
internal n:
    h = h[left(n)] + h[right(n)]
output h[root]
"""


def test_a_second_token_input_is_rejected_by_the_checker() -> None:
    # Inputs carry one token per node, so the checker refuses a model that needs two.
    with pytest.raises(CortexError) as raised:
        check_source(TWO_TOKENS)
    assert raised.value.codes == ["E0215"]


LEAF_FEATURES = """
model LeafFeatures
sizes H = 2, X = 3
structure tree(max_children=3)
param U[H, X]
input x[X]
state h[H]
internal n:
    h = (U @ x(n) if isleaf(n) else zeros(H)) + sum(h[k] for k in children(n))
output h[root]
"""


def test_vector_inputs_on_the_leaves_of_a_tree() -> None:
    program = check_source(LEAF_FEATURES)
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    structure = tree([[NONE] * 3, [NONE] * 3, [NONE] * 3, [0, 1, 2]], features=features)
    weights = {"U": np.eye(2, 3)}
    result = interpret(program, [structure], weights, dtype=np.float64)
    np.testing.assert_array_equal(result.outputs["h"][0], features[:3, :2].sum(axis=0))

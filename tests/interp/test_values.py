"""The value checks a run makes before computing (cortexlang.interp.values)."""

from __future__ import annotations

import numpy as np

from cortexlang.frontend.check import check_source
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.interp import values

MODEL = """model M
sizes H = 3
structure binary_tree
param W[H, H], b[H]
input x[H]
state h[H]
leaf n:
    h = W @ x(n) + b
internal n:
    h = h[left(n)] + h[right(n)]
output h[root]
"""


def _tree(children: list[list[int]], features: np.ndarray | None = None,
          **meta: object) -> Structure:
    array = np.array(children, dtype=np.int32)
    return Structure(children=array, words=np.full(len(children), -1, dtype=np.int32),
                     root=len(children) - 1, features=features, meta=dict(meta))


def test_finite_values_pass_and_each_bad_parameter_is_named_once() -> None:
    program = check_source(MODEL, "m.cx")
    weights = {"W": np.ones((3, 3)), "b": np.zeros(3)}
    assert values.nonfinite_weights(program, weights, "w.npz") == []
    weights["W"][2, 1] = -np.inf
    weights["W"][0, 0] = np.nan
    weights["b"][:] = np.nan
    found = values.nonfinite_weights(program, weights, "w.npz")
    assert [d.code for d in found] == ["E0580", "E0580"]
    assert "1 NaN and 1 infinite values (the first at [0, 0])" in found[0].message
    assert "3 NaN values" in found[1].message
    assert found[0].span is not None and (found[0].span.line, found[0].span.column) == (4, 7)


def test_features_are_located_at_their_file_and_line() -> None:
    features = np.zeros((3, 2))
    features[1, 1] = np.nan
    bad = _tree([[-1, -1], [-1, -1], [0, 1]], features, path="t.ptb", line=7)
    good = _tree([[-1, -1], [-1, -1], [0, 1]], np.zeros((3, 2)))
    (found,) = values.nonfinite_features([good, bad])
    assert found.code == "E0581" and "structure 1" in found.message
    assert "node 1, feature 1" in found.message and str(found.span) == "t.ptb:7:1"
    record = _tree([[-1, -1]], np.full((1, 2), np.inf), path="g.json", record="$[4]")
    (found,) = values.nonfinite_features([record])
    assert "(g.json, $[4])" in found.message and found.span is None


def test_unary_nodes_only_matter_in_binary_trees_and_reports_are_capped() -> None:
    program = check_source(MODEL, "m.cx")
    unary = _tree([[-1, -1], [0, -1], [-1, -1], [1, 2]])
    assert values.binary_arity(program, generators.sst_like_trees(20, rng=3)) == []
    found = values.binary_arity(program, [unary] * (values.MAX_REPORTED + 3))
    assert len(found) == values.MAX_REPORTED and found[0].code == "E0582"
    assert "node 1 has one child" in found[0].message
    nary = check_source(MODEL.replace("binary_tree", "tree(max_children=2)"), "m.cx")
    assert values.binary_arity(nary, [unary]) == []

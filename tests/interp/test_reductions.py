"""Reductions over `children(n)` mean the same in every structure kind, not only in n-ary
trees: in a binary_tree `sum(h[k] for k in children(n))` is `h[left(n)] + h[right(n)]`, and
in a sequence `max(h[k] for k in children(n))` is `h[prev(n)]` (one child). Both backends
agree (docs/language.md states it)."""

from __future__ import annotations

import numpy as np
import pytest

from cortexlang.backends import BackendOptions, get_backend
from cortexlang.errors import EnvironmentProblem
from cortexlang.frontend.check import check_source
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.weights import init_weights

BINARY = """model Binary
sizes H = 4, V = 30
structure binary_tree
param Emb[V, H]
param W[H, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = tanh(W @ CHILDREN)
output h[all]
"""
SEQUENCE = """model Sequence
sizes H = 4, V = 30
structure sequence
param Emb[V, H]
param W[H, H], U[H, H]
input word: token
state h[H]
leaf n:
    h = tanh(U @ Emb[word(n)])
internal n:
    h = tanh(W @ CHILDREN + U @ Emb[word(n)])
output h[all]
"""
CASES = {
    "binary_tree sum": (BINARY, "sum(h[k] for k in children(n))", "(h[left(n)] + h[right(n)])"),
    "binary_tree mean": (BINARY, "mean(h[k] for k in children(n))",
                         "((h[left(n)] + h[right(n)]) / 2)"),
    "sequence max": (SEQUENCE, "max(h[k] for k in children(n))", "h[prev(n)]"),
    "sequence sum": (SEQUENCE, "sum(h[k] for k in children(n))", "h[prev(n)]"),
}


def _structures(kind: str) -> list[Structure]:
    if kind == "sequence":
        return [generators.sequence(length, rng=length, vocab_size=30) for length in (1, 2, 7)]
    return generators.sst_like_trees(3, rng=1, vocab_size=30) + [generators.single_leaf(
        rng=2, vocab_size=30)]


@pytest.mark.parametrize("backend", ["interp", "compiled"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_reduction_over_children_equals_the_explicit_children(case: str,
                                                                backend: str) -> None:
    template, reduction, explicit = CASES[case]
    reduced = check_source(template.replace("CHILDREN", reduction), "reduced.cx")
    spelled = check_source(template.replace("CHILDREN", explicit), "explicit.cx")
    structures = _structures(reduced.structure.kind)
    weights = init_weights(reduced.params, 3, dtype=np.float32)
    reference = get_backend("interp")(spelled, structures, weights, BackendOptions())
    try:
        result = get_backend(backend)(reduced, structures, weights, BackendOptions())
    except EnvironmentProblem:
        pytest.skip("no working OpenCL device")
    np.testing.assert_allclose(result.outputs["h"], reference.outputs["h"], rtol=1e-5,
                               atol=1e-6)

"""hoist_invariants: node-independent work leaves the rules for `uniforms`, computed once
per weights."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    assert_same_meaning,
    program_from_source,
    small_example,
    stage_before,
    weights_for,
)

from cortexlang.ir.recursive import RecursiveProgram, format_recursive, verify_recursive
from cortexlang.ir.recursive_eval import evaluate_uniforms
from cortexlang.passes.hoist_invariants import hoist_invariants, hoist_invariants_result
from cortexlang.passes.pipeline import Options

GATE = """\
model Gate
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H], W[H, H], g[H]
input word: token
state h[H]
leaf n:
    h = sigmoid(g) * Emb[word(n)]
internal n:
    h = sigmoid(g) * tanh(W @ (h[left(n)] + h[right(n)]) + 2 * g)
output h[root]
"""
# Without refactoring, so that the rules stay as written.
OPTIONS = Options().without("refactor_recursion")

# sigmoid(g) (in both rules) and 2 * g move to the uniforms, each rule reading them through
# a `uniform` operator; the product with W and everything that reads a child stays.
EXPECTED = """\
recursive program Gate
structure binary_tree, at most 2 children
leaves specialised
param Emb: 3x2
param W: 2x2
param g: 2
state h: 2
recursion edges: h <- child 0, h <- child 1
uniform (computed once per weights):
  leaf_t0: 2 = param[param=g]()                                          # line 8
  leaf_t1: 2 = unary[op=sigmoid](leaf_t0)                                # line 8
  internal_t0: 2 = param[param=g]()                                      # line 10
  internal_t1: 2 = unary[op=sigmoid](internal_t0)                        # line 10
  internal_t7: scalar = const[value=2]()                                 # line 10
  internal_t8: 2 = binary[op=mul](internal_t7, internal_t0)              # line 10
rule leaf(node):
  t1: 2 = uniform[name=leaf_t1]()                                        # line 8
  t2: 2 = lookup[param=Emb, input=word, moduli=()]()                     # line 8
  h: 2 = binary[op=mul](t1, t2)                                          # line 8
  state h <- h
rule internal(node):
  t1: 2 = uniform[name=internal_t1]()                                    # line 10
  t2: 2x2 = param[param=W]()                                             # line 10
  t3: 2 = child_state[state=h, child=0]()                                # line 10
  t4: 2 = child_state[state=h, child=1]()                                # line 10
  t5: 2 = binary[op=add](t3, t4)                                         # line 10
  t6: 2 = matmul(t2, t5)                                                 # line 10
  t8: 2 = uniform[name=internal_t8]()                                    # line 10
  t9: 2 = binary[op=add](t6, t8)                                         # line 10
  t10: 2 = unary[op=tanh](t9)                                            # line 10
  h: 2 = binary[op=mul](t1, t10)                                         # line 10
  state h <- h
output h[root]
note specialize_leaves: leaves run the source's leaf rule on their own node range
note hoist_invariants: 3 node-independent operators hoisted
"""


def test_node_independent_operators_become_uniforms() -> None:
    program = program_from_source(GATE, "gate.cx")
    before = stage_before(program, "hoist_invariants", OPTIONS)
    assert not before.uniforms

    after = hoist_invariants(before)

    assert format_recursive(after) == EXPECTED
    assert after.notes[-1] == ("hoist_invariants", "3 node-independent operators hoisted")
    verify_recursive(after)
    assert_same_meaning(program, before, after)


def test_uniforms_are_computed_once_from_the_weights() -> None:
    program = program_from_source(GATE, "gate.cx")
    after = hoist_invariants(stage_before(program, "hoist_invariants", OPTIONS))
    weights = weights_for(program)
    values = evaluate_uniforms(after, weights)
    gate = 1 / (1 + np.exp(-weights["g"].astype(np.float64)))
    np.testing.assert_allclose(values["leaf_t1"], gate, rtol=1e-6)
    np.testing.assert_allclose(values["internal_t1"], gate, rtol=1e-6)
    np.testing.assert_allclose(values["internal_t8"], 2 * weights["g"], rtol=1e-6)


NOT_APPLIED = "every computed operator depends on the node"


def assert_unchanged(before: RecursiveProgram) -> None:
    """Nothing to hoist: the pass returns the very program it was given, and says why."""
    result = hoist_invariants_result(before)
    assert result.ir is before and result.note == NOT_APPLIED
    assert hoist_invariants(before) is before


def test_nothing_left_to_hoist_returns_the_same_program() -> None:
    program = program_from_source(GATE, "gate.cx")
    assert_unchanged(hoist_invariants(stage_before(program, "hoist_invariants", OPTIONS)))


def test_the_refactored_leaf_of_treefc_has_nothing_to_hoist() -> None:
    assert_unchanged(stage_before(small_example("treefc"), "hoist_invariants"))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_keeps_its_meaning(name: str) -> None:
    program = small_example(name)
    before = stage_before(program, "hoist_invariants")
    after = hoist_invariants(before)
    verify_recursive(after)
    assert_same_meaning(program, before, after, seeds=(0,))

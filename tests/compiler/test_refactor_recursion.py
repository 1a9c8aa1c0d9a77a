"""refactor_recursion: `W @ (sum of child states)` becomes a sum of `W @ h` products that each
child computes at the end of its own step; it explains why when it cannot apply."""

from __future__ import annotations

import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    assert_same_meaning,
    program_from_source,
    small_example,
    stage_before,
)

from cortexlang.ir.recursive import format_recursive, verify_recursive
from cortexlang.passes.refactor_recursion import refactor_recursion, refactor_recursion_result

TREE_FC = """\
model Tiny
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H], W[H, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = tanh(W @ (h[left(n)] + h[right(n)]))
output h[root]
"""

# A new state h_W = W @ h, computed by every node (leaf and internal) after its own h; the
# parent adds its children's h_W instead of multiplying, and reads h_W only.
EXPECTED = """\
recursive program Tiny
structure binary_tree, at most 2 children
leaves specialised
param Emb: 3x2
param W: 2x2
state h: 2
state h_W: 2
recursion edges: h_W <- child 0, h_W <- child 1
rule leaf(node):
  h: 2 = lookup[param=Emb, input=word, moduli=()]()                      # line 8
  w_W: 2x2 = param[param=W]()
  h_W: 2 = matmul(w_W, h)
  state h <- h
  state h_W <- h_W
rule internal(node):
  t4_c0: 2 = child_state[state=h_W, child=0]()                           # line 10
  t4_c1: 2 = child_state[state=h_W, child=1]()                           # line 10
  t4_s1: 2 = binary[op=add](t4_c0, t4_c1)                                # line 10
  h: 2 = unary[op=tanh](t4_s1)                                           # line 10
  w_W: 2x2 = param[param=W]()
  h_W: 2 = matmul(w_W, h)
  state h <- h
  state h_W <- h_W
output h[root]
note specialize_leaves: leaves run the source's leaf rule on their own node range
note refactor_recursion: moved W @ h into each child's step
"""

NO_PRODUCT = """\
model Sum
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = tanh(h[left(n)] + h[right(n)])
output h[root]
"""


def test_a_product_with_the_sum_of_children_moves_into_the_children() -> None:
    program = program_from_source(TREE_FC, "tiny.cx")
    before = stage_before(program, "refactor_recursion")

    after = refactor_recursion(before)

    assert format_recursive(after) == EXPECTED
    assert after.notes[-1] == ("refactor_recursion", "moved W @ h into each child's step")
    assert not any(op.kind == "matmul" and "child_state" in
                   {after.internal.op_map()[arg].kind for arg in op.args}
                   for op in after.internal.ops)
    verify_recursive(after)
    assert_same_meaning(program, before, after)


def test_child_sum_reductions_refactor_every_child_position() -> None:
    program = small_example("childsum_treelstm")
    before = stage_before(program, "refactor_recursion")

    after = refactor_recursion(before)

    assert after.notes[-1] == ("refactor_recursion",
                               "moved U_iou @ h, U_f @ h into each child's step")
    new_states = {state.name: state.shape for state in after.states}.items() - \
        {state.name: state.shape for state in before.states}.items()
    hidden = program.size("H")
    assert dict(new_states) == {"h_U_iou": (3 * hidden,), "h_U_f": (hidden,)}
    edges = after.recursion_edges()
    assert {state for state, _ in edges} == {"c", "h_U_iou", "h_U_f"}
    assert {child for _, child in edges} == set(range(program.structure.max_children))
    verify_recursive(after)
    assert_same_meaning(program, before, after)


@pytest.mark.parametrize(("name", "why"), [
    ("treelstm", "t4: U @ concat(...) mixes children by position"),
    ("sentiment", "t4: U @ concat(...) mixes children by position"),
    ("treegru", "t4: U_g @ concat(...) mixes children by position; "
                "t11: U_h @ concat(...) mixes children by position"),
])
def test_it_explains_why_it_does_not_apply_to_positional_children(name: str, why: str) -> None:
    """TreeLSTM multiplies U by [h_left; h_right]: a child would need to know whether it is
    a left or a right child to multiply by the right half of U, so the pass says so."""
    before = stage_before(small_example(name), "refactor_recursion")

    result = refactor_recursion_result(before)

    # The very program it was given, its text untouched: the reason travels beside it.
    assert result.ir is before and result.note == why
    assert refactor_recursion(before) is before


def test_without_a_product_it_says_there_is_nothing_to_move() -> None:
    program = program_from_source(NO_PRODUCT, "sum.cx")
    before = stage_before(program, "refactor_recursion")

    result = refactor_recursion_result(before)

    assert result.ir is before
    assert result.note == "no product of a weight and child states"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_keeps_its_meaning(name: str) -> None:
    program = small_example(name)
    before = stage_before(program, "refactor_recursion")
    after = refactor_recursion(before)
    verify_recursive(after)
    assert_same_meaning(program, before, after, seeds=(0,))

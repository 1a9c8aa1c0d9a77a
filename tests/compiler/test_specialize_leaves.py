"""specialize_leaves: separate leaf code, derived from the internal rule where the source has
no leaf rule (every child read as absent)."""

from __future__ import annotations

import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    assert_same_meaning,
    program_from_source,
    rule_text,
    small_example,
    stage_before,
)

from cortexlang.ir.recursive import format_recursive, verify_recursive
from cortexlang.passes.specialize_leaves import specialize_leaves, specialize_leaves_result

# No leaf rule: leaves run the internal rule, reading both children as zeros.
NO_LEAF_RULE = """\
model Tiny
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H], W[H, H]
input word: token
state h[H]
internal n:
    h = tanh(W @ (h[left(n)] + h[right(n)])) + (Emb[word(n)] if isleaf(n) else zeros(H))
output h[root]
"""

# The internal rule with every child source (child_state, num_children) replaced by the
# constant 0; identical constants merged, dead operators (t2, the second child) dropped.
EXPECTED_DERIVED_LEAF = """\
rule leaf(node):
  t0: 2x2 = param[param=W]()                                             # line 8
  t1: 2 = const[value=0]()                                               # line 8
  t3: 2 = binary[op=add](t1, t1)                                         # line 8
  t4: 2 = matmul(t0, t3)                                                 # line 8
  t5: 2 = unary[op=tanh](t4)                                             # line 8
  t6: scalar = const[value=0]()
  t8: scalar = binary[op=eq](t6, t6)
  t9: 2 = lookup[param=Emb, input=word, moduli=()]()                     # line 8
  t11: 2 = select(t8, t9, t1)                                            # line 8
  h: 2 = binary[op=add](t5, t11)                                         # line 8
  state h <- h
"""

WITH_LEAF_RULE = """\
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


def test_a_missing_leaf_rule_is_derived_with_absent_children() -> None:
    program = program_from_source(NO_LEAF_RULE, "tiny.cx")
    before = stage_before(program, "specialize_leaves")
    assert not before.specialized
    assert "leaves share one conditional rule" in format_recursive(before)

    after = specialize_leaves(before)

    assert after.specialized
    assert "leaves specialised" in format_recursive(after)
    assert rule_text(after, "leaf") == EXPECTED_DERIVED_LEAF
    # isleaf(n) is num_children() == 0: false wherever the internal rule runs.
    assert "binary[op=eq]" in rule_text(before, "internal")
    assert "binary[op=eq]" not in rule_text(after, "internal")
    assert after.notes[-1] == ("specialize_leaves",
                               "derived the leaf rule from the internal rule with absent "
                               "children; 1 comparison of num_children() decided in the "
                               "internal rule (it runs at nodes with children: isleaf(n) "
                               "is false there)")
    verify_recursive(after)
    assert_same_meaning(program, before, after)


def test_an_explicit_leaf_rule_is_kept_as_written() -> None:
    program = program_from_source(WITH_LEAF_RULE, "tiny.cx")
    before = stage_before(program, "specialize_leaves")

    after = specialize_leaves(before)

    assert after.specialized
    assert after.leaf == before.leaf and after.internal == before.internal
    assert rule_text(after, "leaf") == """\
rule leaf(node):
  h: 2 = lookup[param=Emb, input=word, moduli=()]()                      # line 8
  state h <- h
"""
    assert after.notes[-1][0] == "specialize_leaves"
    verify_recursive(after)
    assert_same_meaning(program, before, after)
    again = specialize_leaves_result(after)
    assert again.ir is after and again.note == "the leaves are specialised already"


ARITY_BRANCH = """\
model Arity
sizes H = 2, V = 3
structure tree(max_children=3)
param Emb[V, H], W[H, H]
input word: token
state h[H]
internal n:
    s = sum(h[k] for k in children(n))
    x = Emb[word(n)] if isleaf(n) else zeros(H)
    h = tanh(W @ s) + x + (s if num_children(n) == 2 else zeros(H))
output h[root]
"""


def test_only_comparisons_decided_by_some_child_fold() -> None:
    """isleaf(n) folds in the internal rule; num_children(n) == 2 depends on the node."""
    program = program_from_source(ARITY_BRANCH, "arity.cx")
    before = stage_before(program, "specialize_leaves")
    after = specialize_leaves(before)
    internal = {op.name: op for op in after.internal.ops}
    comparisons = [op for op in internal.values() if op.kind == "binary"
                   and op.attr("op") == "eq"]
    assert len(comparisons) == 1
    assert internal[comparisons[0].args[1]].attr("value") == 2.0
    verify_recursive(after)
    assert_same_meaning(program, before, after)


def test_the_dead_leaf_product_leaves_the_internal_rule() -> None:
    """ChildSumTreeLSTM's `W_iou @ Emb[word(n)] if isleaf(n) else zeros(3H)`: after
    specialisation and folding, internal nodes no longer look their word up."""
    from cortexlang.passes.fold_constants import fold_constants

    program = small_example("childsum_treelstm")
    folded = fold_constants(specialize_leaves(stage_before(program, "specialize_leaves")))
    kinds = {op.kind for op in folded.internal.ops}
    assert "lookup" not in kinds and "select" not in kinds
    assert "lookup" in {op.kind for op in folded.leaf.ops}


def test_a_specialised_program_comes_back_unchanged() -> None:
    program = program_from_source(NO_LEAF_RULE, "tiny.cx")
    once = specialize_leaves(stage_before(program, "specialize_leaves"))
    assert specialize_leaves(once) is once


def test_the_derived_leaf_reads_no_child() -> None:
    program = program_from_source(NO_LEAF_RULE, "tiny.cx")
    after = specialize_leaves(stage_before(program, "specialize_leaves"))
    kinds = {op.kind for op in after.leaf.ops}
    assert not kinds & {"child_state", "child_exists", "child_is_leaf", "num_children"}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_keeps_its_meaning(name: str) -> None:
    program = small_example(name)
    before = stage_before(program, "specialize_leaves")
    after = specialize_leaves(before)
    verify_recursive(after)
    assert_same_meaning(program, before, after, seeds=(0,))

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
from cortexlang.passes.specialize_leaves import specialize_leaves

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
    assert after.internal is before.internal
    assert after.notes[-1] == ("specialize_leaves",
                               "derived the leaf rule from the internal rule with absent "
                               "children")
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

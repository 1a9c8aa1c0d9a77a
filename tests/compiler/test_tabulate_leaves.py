"""tabulate_leaves: a leaf whose state depends on its token alone reads a per-token table
computed once per weights; the pass notes why when it cannot apply."""

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
from cortexlang.passes.pipeline import Options
from cortexlang.passes.tabulate_leaves import tabulate_leaves, tabulate_leaves_result

GATE = """\
model Gate
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H], W[H, H], g[H]
input word: token
state h[H]
leaf n:
    h = tanh(W @ Emb[word(n)] + g)
internal n:
    h = tanh(W @ (h[left(n)] + h[right(n)]))
output h[root]
"""
OPTIONS = Options().without("refactor_recursion")

# The leaf rule moves, unchanged, to the table rule evaluated for each of the 3 tokens; a
# leaf copies the row of its token.
EXPECTED_LEAF_PART = """\
leaf tables (computed once per weights, 3 tokens):
  t0: 2x2 = param[param=W]()                                             # line 8
  t1: 2 = lookup[param=Emb, input=word, moduli=()]()                     # line 8
  t2: 2 = matmul(t0, t1)                                                 # line 8
  t3: 2 = param[param=g]()                                               # line 8
  t4: 2 = binary[op=add](t2, t3)                                         # line 8
  h: 2 = unary[op=tanh](t4)                                              # line 8
  table leaf_h <- h
rule leaf(node):
  table_h: 2 = table[name=leaf_h, input=word]()                          # line 7
  state h <- table_h
"""


def test_a_token_only_leaf_becomes_a_table() -> None:
    program = program_from_source(GATE, "gate.cx")
    before = stage_before(program, "tabulate_leaves", OPTIONS)

    after = tabulate_leaves(before)

    assert EXPECTED_LEAF_PART in format_recursive(after)
    assert after.table_rule == before.leaf and after.table_rows == 3
    assert after.internal == before.internal
    assert after.notes[-1] == ("tabulate_leaves", "leaf states precomputed for 3 tokens "
                               "(0 MiB); a leaf reads its rows")
    verify_recursive(after)
    assert_same_meaning(program, before, after)


def test_a_tabulated_program_comes_back_unchanged() -> None:
    program = program_from_source(GATE, "gate.cx")
    once = tabulate_leaves(stage_before(program, "tabulate_leaves", OPTIONS))
    assert tabulate_leaves(once) is once
    assert tabulate_leaves_result(once).note == "the leaves read tables already"


@pytest.mark.parametrize(("name", "options", "why"), [
    ("mvrnn", Options(), "the leaf reads more than its token's embedding rows"),
    ("dagrnn", Options(), "the leaf reads more than its token's embedding rows"),
    ("treelstm", Options().without("specialize_leaves"), "leaves are not specialised"),
])
def test_it_says_why_it_does_not_apply(name: str, options: Options, why: str) -> None:
    before = stage_before(small_example(name), "tabulate_leaves", options)

    result = tabulate_leaves_result(before)

    assert result.ir is before and result.note == why


COPY_ONLY = GATE.replace("h = tanh(W @ Emb[word(n)] + g)", "h = Emb[word(n)]")
CONSTANT_LEAF = GATE.replace("h = tanh(W @ Emb[word(n)] + g)", "h = tanh(g)")


@pytest.mark.parametrize(("source", "why"), [
    (COPY_ONLY, "the leaf only copies embedding rows; there is nothing to compute"),
    (CONSTANT_LEAF, "the leaf state does not depend on the leaf"),
], ids=["copy-only", "constant-leaf"])
def test_leaves_with_nothing_to_tabulate_are_left_alone(source: str, why: str) -> None:
    before = stage_before(program_from_source(source, "gate.cx"), "tabulate_leaves", OPTIONS)
    result = tabulate_leaves_result(before)
    assert result.ir is before and result.note == why


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_keeps_its_meaning(name: str) -> None:
    program = small_example(name)
    before = stage_before(program, "tabulate_leaves")
    after = tabulate_leaves(before)
    verify_recursive(after)
    assert_same_meaning(program, before, after, seeds=(0,))

"""fold_constants: operators on constants and identities with 0 and 1 fold away."""

from __future__ import annotations

import math

import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    assert_same_meaning,
    program_from_source,
    rule_text,
    small_example,
    stage_before,
)

from cortexlang.ir.checked import CheckedProgram
from cortexlang.ir.recursive import Op, RecursiveProgram, verify_recursive
from cortexlang.passes.fold_constants import fold_constants, fold_constants_result, fold_op
from cortexlang.passes.pipeline import Options

# Child-sum style: no leaf rule, so the derived leaf computes U @ (0 + 0 + 0).
SUM_TREE = """\
model SumTree
sizes H = 2, V = 3, K = 3
structure tree(max_children=K)
param Emb[V, H], U[H, H], b[H]
input word: token
state h[H]
internal n:
    s = sum(h[k] for k in children(n))
    h = tanh(U @ s + b) + (Emb[word(n)] if isleaf(n) else zeros(H))
output h[root]
"""

# U @ 0 is 0, 0 + b is b, isleaf is the constant 1 so the select picks Emb, and the
# dead constants go: h = tanh(b) + Emb[word(n)].
EXPECTED_LEAF = """\
rule leaf(node):
  t11: 2 = param[param=b]()                                              # line 9
  t13: 2 = unary[op=tanh](t11)                                           # line 9
  t16: 2 = lookup[param=Emb, input=word, moduli=()]()                    # line 9
  h: 2 = binary[op=add](t13, t16)                                        # line 9
  state h <- h
"""


def _sum_tree_before() -> tuple[CheckedProgram, RecursiveProgram]:
    program = program_from_source(SUM_TREE, "sumtree.cx")
    return program, stage_before(program, "fold_constants")


def test_the_derived_leaf_loses_its_product_with_zero_children() -> None:
    program, before = _sum_tree_before()
    assert any(op.kind == "matmul" for op in before.leaf.ops)

    after = fold_constants(before)

    assert rule_text(after, "leaf") == EXPECTED_LEAF
    assert not any(op.kind == "matmul" for op in after.leaf.ops)
    # In the internal rule specialize_leaves made isleaf(n) the constant 0, so the select
    # picks zeros(H) and the word's lookup, a leaf-only term, goes: h = tanh(U @ s + b).
    assert set(after.internal.ops) < set(before.internal.ops)
    assert {op.kind for op in set(before.internal.ops) - set(after.internal.ops)} == \
        {"lookup", "select", "const", "binary"}
    assert after.internal.results == (("h", "t13"),)
    assert after.notes[-1] == ("fold_constants", "14 operators folded away")
    verify_recursive(after)
    assert_same_meaning(program, before, after)


def test_nothing_to_fold_returns_the_same_object_and_says_why() -> None:
    _, before = _sum_tree_before()
    once = fold_constants(before)
    result = fold_constants_result(once)
    assert result.ir is once and not result.changed(once)
    assert result.note == "no operator has constant operands"
    applied = fold_constants_result(before)
    assert applied.changed(before) and applied.note == "14 operators folded away"


def test_without_specialisation_the_shared_rule_keeps_its_children() -> None:
    program = program_from_source(SUM_TREE, "sumtree.cx")
    before = stage_before(program, "fold_constants", Options().without("specialize_leaves"))
    after = fold_constants(before)
    # isleaf(n) is not known in a rule that leaves and internal nodes share.
    assert any(op.kind == "select" for op in after.leaf.ops)
    assert_same_meaning(program, before, after)


# -- single operators ---------------------------------------------------------------------


def const(name: str, value: float, shape: tuple[int, ...] = (2,)) -> Op:
    return Op(name, "const", (), shape, (("value", value),))


X = Op("x", "child_state", (), (2,), (("state", "h"), ("child", 0)))
RESOLVED = {"x": X, "zero": const("zero", 0.0), "one": const("one", 1.0),
            "two": const("two", 2.0), "minus": const("minus", -1.0),
            "big": const("big", 1000.0), "s0": const("s0", 0.0, ())}


def binary(op: str, lhs: str, rhs: str) -> Op:
    return Op("r", "binary", (lhs, rhs), (2,), (("op", op),))


def unary(op: str, arg: str) -> Op:
    return Op("r", "unary", (arg,), (2,), (("op", op),))


@pytest.mark.parametrize(("op", "expected"), [
    (binary("add", "x", "zero"), "x"),
    (binary("add", "zero", "x"), "x"),
    (binary("sub", "x", "zero"), "x"),
    (binary("mul", "x", "one"), "x"),
    (binary("mul", "one", "x"), "x"),
    (binary("div", "x", "one"), "x"),
], ids=["x+0", "0+x", "x-0", "x*1", "1*x", "x/1"])
def test_identities_forward_the_other_operand(op: Op, expected: str) -> None:
    assert fold_op(op, RESOLVED) == expected


@pytest.mark.parametrize(("op", "value"), [
    (binary("mul", "x", "zero"), 0.0),
    (binary("mul", "zero", "x"), 0.0),
    (binary("add", "two", "one"), 3.0),
    (binary("sub", "one", "two"), -1.0),
    (binary("div", "one", "two"), 0.5),
    (binary("max", "minus", "two"), 2.0),
    (binary("lt", "one", "two"), 1.0),
    (binary("ge", "one", "two"), 0.0),
    (unary("sigmoid", "zero"), 0.5),
    (unary("tanh", "zero"), 0.0),
    (unary("relu", "minus"), 0.0),
    (unary("neg", "two"), -2.0),
    (unary("exp", "zero"), 1.0),
    (unary("log", "one"), 0.0),
    (unary("softmax", "two"), 0.5),
    (Op("r", "matmul", ("x", "zero"), (2,)), 0.0),
    (Op("r", "concat", ("two", "two"), (4,)), 2.0),
    (Op("r", "slice", ("two",), (1,), (("start", 0), ("stop", 1))), 2.0),
], ids=lambda value: value.kind + ":" + str(value.attr("op")) if isinstance(value, Op) else "")
def test_constant_operands_fold_to_a_constant(op: Op, value: float) -> None:
    folded = fold_op(op, RESOLVED)
    assert isinstance(folded, Op) and folded.kind == "const"
    assert folded.name == op.name and folded.shape == op.shape
    assert math.isclose(folded.attr("value"), value, abs_tol=1e-12)


@pytest.mark.parametrize("op", [
    unary("log", "zero"),
    unary("log", "minus"),
    binary("div", "one", "zero"),
    unary("exp", "big"),
    binary("add", "x", "two"),
    binary("mul", "x", "two"),
    Op("r", "concat", ("one", "two"), (4,)),
], ids=["log0", "log-1", "1/0", "exp-overflow", "x+2", "x*2", "concat-mixed"])
def test_operators_without_a_finite_constant_value_stay(op: Op) -> None:
    assert fold_op(op, RESOLVED) == op


def test_a_select_on_a_constant_condition_picks_a_branch() -> None:
    resolved = dict(RESOLVED, yes=const("yes", 1.0, ()), no=const("no", 0.0, ()))
    assert fold_op(Op("r", "select", ("yes", "x", "zero"), (2,)), resolved) == "x"
    assert fold_op(Op("r", "select", ("no", "x", "zero"), (2,)), resolved) == "zero"
    # A scalar branch cannot stand for a vector result: the select stays.
    scalar_branch = Op("r", "select", ("no", "x", "s0"), (2,))
    assert fold_op(scalar_branch, resolved) == scalar_branch


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_keeps_its_meaning(name: str) -> None:
    program = small_example(name)
    before = stage_before(program, "fold_constants")
    after = fold_constants(before)
    verify_recursive(after)
    assert_same_meaning(program, before, after, seeds=(0,))

"""Leaf specialisation: separate code for leaves and internal nodes, no per-node branch.

Legal always. The linearizer numbers leaves first, so the leaf rule runs on one contiguous
range and `isleaf(n)` disappears from the internal rule's code. Where the source gives no
leaf rule, the leaf rule is derived from the internal rule by reading every child as absent
(zero state, no children); `fold_constants` then removes the work that became zero.

The internal rule then runs only at nodes with at least one child (a leaf is a node
without children), so a comparison of `num_children()` with a constant that is decided for
every count of 1 or more becomes that constant: `isleaf(n)` (`num_children() == 0`) is
false there, and `fold_constants` removes the leaf-only branch of a `select` with it (the
`W @ Emb[word(n)] if isleaf(n) else ...` of ChildSumTreeLSTM would otherwise run at every
internal node and be thrown away).
"""

from __future__ import annotations

import math
from dataclasses import replace

from cortexlang.ir.operators import OPERATORS, Kind, Operator, operator_of
from cortexlang.ir.recursive import Op, RecursiveProgram
from cortexlang.passes.result import PassResult, unchanged
from cortexlang.passes.rewrite import rewrite_rule

_ABSENT_CHILD_KINDS = ("child_state", "child_exists", "child_is_leaf", "num_children")


def _decided_from_one(comparison: Operator, constant: float) -> float | None:
    """The value of `num_children() OP constant` if it is the same for every count >= 1,
    else None. A comparison with `constant` changes value only at the counts around it, so
    the counts 1, floor, ceil and floor + 1 of the constant (those >= 1) decide it."""
    if comparison.fold is None or not math.isfinite(constant):
        return None
    below, above = math.floor(constant), math.ceil(constant)
    counts = {1.0} | {float(count) for count in (below, above, below + 1) if count >= 1}
    values = {comparison.fold((count, constant), ()) for count in counts}
    return values.pop() if len(values) == 1 else None


def _read_children_as_absent(op: Op, _resolved: dict[str, Op]) -> Op | str:
    if op.kind in _ABSENT_CHILD_KINDS:
        return Op(op.name, "const", (), op.shape, (("value", 0.0),), op.span)
    return op


def _with_some_child(op: Op, resolved: dict[str, Op]) -> Op | str:
    """In the internal rule: a comparison of num_children() with a constant, decided by
    num_children() >= 1, becomes a constant."""
    comparison = operator_of(op)
    if comparison is None or comparison.kind is not Kind.COMPARISON or op.shape != ():
        return op
    lhs, rhs = (resolved.get(arg) for arg in op.args)
    if lhs is not None and rhs is not None and rhs.kind == "num_children" \
            and lhs.kind == "const" and comparison.mirrored is not None:
        lhs, rhs, comparison = rhs, lhs, OPERATORS[comparison.mirrored]
    if lhs is None or rhs is None or lhs.kind != "num_children" or rhs.kind != "const":
        return op
    value = _decided_from_one(comparison, rhs.attr("value"))
    if value is None:
        return op
    return Op(op.name, "const", (), op.shape, (("value", value),), op.span)


def specialize_leaves(program: RecursiveProgram) -> RecursiveProgram:
    """Mark the program specialised; derive the leaf rule if the source had none."""
    return specialize_leaves_result(program).ir


def specialize_leaves_result(program: RecursiveProgram) -> PassResult[RecursiveProgram]:
    """Specialise the leaves and say how (an already specialised program as it is)."""
    if program.specialized:
        return unchanged(program, "the leaves are specialised already")
    leaf = program.leaf
    if not program.leaf_explicit:
        leaf = replace(rewrite_rule(program.internal, _read_children_as_absent), kind="leaf")
        note = "derived the leaf rule from the internal rule with absent children"
    else:
        note = "leaves run the source's leaf rule on their own node range"
    decided = [op.name for op in program.internal.ops
               if _with_some_child(op, program.internal.op_map()) is not op]
    internal = program.internal
    if decided:
        internal = rewrite_rule(program.internal, _with_some_child)
        note += (f"; {len(decided)} comparison{'s' if len(decided) > 1 else ''} of "
                 "num_children() decided in the internal rule (it runs at nodes with "
                 "children: isleaf(n) is false there)")
    return PassResult(replace(program, leaf=leaf, internal=internal, specialized=True,
                              notes=program.notes + (("specialize_leaves", note),)), note)

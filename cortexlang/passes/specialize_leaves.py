"""Leaf specialisation: separate code for leaves and internal nodes, no per-node branch.

Legal always. The linearizer numbers leaves first, so the leaf rule runs on one contiguous
range and `isleaf(n)` disappears from the internal rule's code. Where the source gives no
leaf rule, the leaf rule is derived from the internal rule by reading every child as absent
(zero state, no children); `fold_constants` then removes the work that became zero.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir.recursive import Op, RecursiveProgram
from cortexlang.passes.rewrite import rewrite_rule

_ABSENT_CHILD_KINDS = ("child_state", "child_exists", "child_is_leaf", "num_children")


def _read_children_as_absent(op: Op, _resolved: dict[str, Op]) -> Op | str:
    if op.kind in _ABSENT_CHILD_KINDS:
        return Op(op.name, "const", (), op.shape, (("value", 0.0),), op.span)
    return op


def specialize_leaves(program: RecursiveProgram) -> RecursiveProgram:
    """Mark the program specialised; derive the leaf rule if the source had none."""
    if program.specialized:
        return program
    leaf = program.leaf
    if not program.leaf_explicit:
        leaf = replace(rewrite_rule(program.internal, _read_children_as_absent), kind="leaf")
        note = "derived the leaf rule from the internal rule with absent children"
    else:
        note = "leaves run the source's leaf rule on their own node range"
    return replace(program, leaf=leaf, specialized=True,
                   notes=program.notes + (("specialize_leaves", note),))

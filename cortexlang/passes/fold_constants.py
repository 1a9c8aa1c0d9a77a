"""Constant propagation: fold operators on constants and algebraic identities with 0 and 1.

Each operator's fold, identities and absorbing element are its entries in the operator table
(`ir/operators.py`); this pass applies them.

Legal always (IEEE corner cases aside: `0 * x` is folded to 0 even where x could be infinite,
as every framework's graph optimiser does). It matters most for leaves derived from the
internal rule, where every child state is zero: `U @ h_sum` with `h_sum = 0` disappears.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cortexlang.ir.operators import Operator, operator_of
from cortexlang.ir.recursive import Op, RecursiveProgram
from cortexlang.passes.result import PassResult, unchanged
from cortexlang.passes.rewrite import rewrite_rule


def _const(op: Op, value: float) -> Op:
    return Op(op.name, "const", (), op.shape, (("value", float(value)),), op.span)


def _value(op: Op | None) -> float | None:
    return op.attr("value") if op is not None and op.kind == "const" else None


def fold_op(op: Op, resolved: dict[str, Op]) -> Op | str:
    """Fold one operator whose operands are already folded."""
    values = [_value(resolved.get(arg)) for arg in op.args]
    operator = operator_of(op)
    if operator is not None:
        return _fold_operator(op, operator, values, resolved)
    if op.kind == "slice" and values[0] is not None:
        return _const(op, values[0])
    if op.kind == "select" and values[0] is not None:
        chosen = op.args[1] if values[0] != 0.0 else op.args[2]
        return chosen if resolved[chosen].shape == op.shape else op
    return op


def _fold_operator(op: Op, operator: Operator, values: list[float | None],
                   resolved: dict[str, Op]) -> Op | str:
    """Constant operands fold by the operator's own fold (a binary operator only to a finite
    value); otherwise its identities and absorbing element apply."""
    if operator.fold is not None and values and all(v is not None for v in values):
        folded = operator.fold(tuple(v for v in values if v is not None), op.shape)
        if folded is None or (op.kind == "binary" and not np.isfinite(folded)):
            return op
        return _const(op, folded)
    if len(values) != 2:
        return op
    lhs, rhs = values

    def same_shape(arg: str) -> bool:
        return resolved[arg].shape == op.shape

    if operator.absorbing is not None and operator.absorbing in (lhs, rhs):
        return _const(op, operator.absorbing)
    if operator.right_identity is not None and rhs == operator.right_identity \
            and same_shape(op.args[0]):
        return op.args[0]
    if operator.left_identity is not None and lhs == operator.left_identity \
            and same_shape(op.args[1]):
        return op.args[1]
    return op


def fold_constants(program: RecursiveProgram) -> RecursiveProgram:
    """Fold every rule (the same object when nothing folds)."""
    return fold_constants_result(program).ir


def fold_constants_result(program: RecursiveProgram) -> PassResult[RecursiveProgram]:
    """Fold every rule; say how many operators disappeared, or why none did."""
    rules = {rule.kind: rewrite_rule(rule, fold_op) for rule in program.rules()}
    before = sum(len(rule.ops) for rule in program.rules())
    after = sum(len(rule.ops) for rule in rules.values())
    if all(rules[rule.kind] is rule for rule in program.rules()):
        return unchanged(program, "no operator has constant operands")
    note = f"{before - after} operators folded away"
    return PassResult(replace(program, leaf=rules["leaf"], internal=rules["internal"],
                              heads=rules.get("heads"),
                              notes=program.notes + (("fold_constants", note),)), note)

"""Constant propagation: fold operators on constants and algebraic identities with 0 and 1.

Legal always (IEEE corner cases aside: `0 * x` is folded to 0 even where x could be infinite,
as every framework's graph optimiser does). It matters most for leaves derived from the
internal rule, where every child state is zero: `U @ h_sum` with `h_sum = 0` disappears.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from cortexlang.ir.recursive import Op, RecursiveProgram
from cortexlang.passes.result import PassResult, unchanged
from cortexlang.passes.rewrite import rewrite_rule

_UNARY: dict[str, Callable[[float], float | None]] = {
    "neg": lambda x: -x, "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "tanh": math.tanh, "relu": lambda x: max(x, 0.0), "exp": math.exp,
    "log": lambda x: math.log(x) if x > 0 else None,
}
_BINARY: dict[str, Callable[[float, float], float | None]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b if b != 0 else None, "max": max,
    "lt": lambda a, b: float(a < b), "le": lambda a, b: float(a <= b),
    "gt": lambda a, b: float(a > b), "ge": lambda a, b: float(a >= b),
    "eq": lambda a, b: float(a == b), "ne": lambda a, b: float(a != b),
}


def _const(op: Op, value: float) -> Op:
    return Op(op.name, "const", (), op.shape, (("value", float(value)),), op.span)


def _value(op: Op | None) -> float | None:
    return op.attr("value") if op is not None and op.kind == "const" else None


def fold_op(op: Op, resolved: dict[str, Op]) -> Op | str:
    """Fold one operator whose operands are already folded."""
    values = [_value(resolved.get(arg)) for arg in op.args]
    if op.kind == "unary" and values[0] is not None:
        if op.attr("op") == "softmax":
            return _const(op, 1.0 / op.shape[0])
        try:
            folded = _UNARY[op.attr("op")](values[0])
        except OverflowError:
            folded = None
        return op if folded is None else _const(op, folded)
    if op.kind == "binary":
        return _fold_binary(op, values, resolved)
    if op.kind == "matmul" and (values[0] == 0.0 or values[1] == 0.0):
        return _const(op, 0.0)
    if op.kind == "concat" and values and all(v is not None for v in values) \
            and len(set(values)) == 1:
        return _const(op, values[0])  # type: ignore[arg-type]
    if op.kind == "slice" and values[0] is not None:
        return _const(op, values[0])
    if op.kind == "select" and values[0] is not None:
        chosen = op.args[1] if values[0] != 0.0 else op.args[2]
        return chosen if resolved[chosen].shape == op.shape else op
    return op


def _fold_binary(op: Op, values: list[float | None], resolved: dict[str, Op]) -> Op | str:
    name = op.attr("op")
    lhs, rhs = values
    if lhs is not None and rhs is not None:
        folded = _BINARY[name](lhs, rhs)
        return op if folded is None or not np.isfinite(folded) else _const(op, folded)

    def same_shape(arg: str) -> bool:
        return resolved[arg].shape == op.shape

    if name == "add":
        if rhs == 0.0 and same_shape(op.args[0]):
            return op.args[0]
        if lhs == 0.0 and same_shape(op.args[1]):
            return op.args[1]
    if name == "sub" and rhs == 0.0 and same_shape(op.args[0]):
        return op.args[0]
    if name == "mul":
        if lhs == 0.0 or rhs == 0.0:
            return _const(op, 0.0)
        if rhs == 1.0 and same_shape(op.args[0]):
            return op.args[0]
        if lhs == 1.0 and same_shape(op.args[1]):
            return op.args[1]
    if name == "div" and rhs == 1.0 and same_shape(op.args[0]):
        return op.args[0]
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

"""Forms of the loop IR's integer index expressions: the stride of a loop variable, the same
over the lanes of a vector, and affine forms. The steps that decide vector widths, blocked
layouts and dot products along k read them, as does the printer of vector loads."""

from __future__ import annotations

from cortexlang.ir import loops as L
from cortexlang.ir.loop_walk import mentions


def stride(expr: L.Expr, var: str) -> int | None:
    """The coefficient of `var` in an integer expression linear in it, else None.

    Used to decide vectorisation: a load whose index has stride 1 in a loop variable reads
    consecutive addresses as the variable steps; stride 0 is the same address (a broadcast)."""
    if isinstance(expr, L.Var):
        return 1 if expr.name == var else 0
    if isinstance(expr, L.Const):
        return 0
    if isinstance(expr, L.Load):
        return 0 if not mentions(expr.index, var) else None
    if isinstance(expr, L.Binary):
        lhs, rhs = stride(expr.lhs, var), stride(expr.rhs, var)
        if lhs is None or rhs is None:
            return None
        if expr.op == "+":
            return lhs + rhs
        if expr.op == "-":
            return lhs - rhs
        if expr.op == "*":
            if lhs == 0 and rhs == 0:
                return 0
            if isinstance(expr.lhs, L.Const) and lhs == 0:
                return int(expr.lhs.value) * rhs
            if isinstance(expr.rhs, L.Const) and rhs == 0:
                return lhs * int(expr.rhs.value)
            return None
        return 0 if lhs == 0 and rhs == 0 else None
    if isinstance(expr, L.Call):
        return 0 if not any(mentions(arg, var) for arg in expr.args) else None
    return None


def lane_stride(expr: L.Expr, var: str, lanes: int) -> int | None:
    """Like `stride`, for `lanes` consecutive values of `var` starting at a multiple of
    `lanes` (a work-item's vector of units): there `var / c` is the same in every lane and
    `var % c` steps by one when `lanes` divides `c`, as in the row and column of a
    flattened matrix."""
    if isinstance(expr, L.Binary) and expr.op in ("/", "%") and isinstance(expr.rhs, L.Const) \
            and expr.rhs.integer:
        inner = lane_stride(expr.lhs, var, lanes)
        if inner == 0:
            return 0
        divisor = int(expr.rhs.value)
        if isinstance(expr.lhs, L.Var) and expr.lhs.name == var and divisor % lanes == 0:
            return 0 if expr.op == "/" else 1
        return None
    if isinstance(expr, L.Binary) and expr.op in ("+", "-", "*"):
        lhs, rhs = lane_stride(expr.lhs, var, lanes), lane_stride(expr.rhs, var, lanes)
        if lhs is None or rhs is None:
            return None
        if expr.op == "*":
            if lhs and rhs:
                return None
            if lhs == 0 and rhs == 0:
                return 0
            # A lane-varying term times a constant (`var / c` is constant across lanes).
            constant = expr.rhs if lhs else expr.lhs
            return (lhs or rhs) * int(constant.value) if isinstance(constant, L.Const) else None
        return lhs + rhs if expr.op == "+" else lhs - rhs
    if isinstance(expr, L.Load | L.Call | L.Select):
        return 0 if not mentions(expr, var) else stride(expr, var)
    return stride(expr, var)


def affine(expr: L.Expr) -> tuple[dict[str, int], int] | None:
    """An integer expression as (coefficient per variable, constant), or None when it is
    not affine in its variables with constant coefficients (loads, calls, divisions)."""
    if isinstance(expr, L.Const):
        return ({}, int(expr.value)) if expr.integer else None
    if isinstance(expr, L.Var):
        return {expr.name: 1}, 0
    if isinstance(expr, L.Binary) and expr.op in ("+", "-", "*"):
        lhs, rhs = affine(expr.lhs), affine(expr.rhs)
        if lhs is None or rhs is None:
            return None
        if expr.op == "*":
            if lhs[0] and rhs[0]:
                return None
            (terms, scale), factor = (lhs, rhs[1]) if lhs[0] else (rhs, lhs[1])
            return {name: c * factor for name, c in terms.items()}, scale * factor
        sign = 1 if expr.op == "+" else -1
        terms = dict(lhs[0])
        for name, c in rhs[0].items():
            terms[name] = terms.get(name, 0) + sign * c
        return {n: c for n, c in terms.items() if c}, lhs[1] + sign * rhs[1]
    return None

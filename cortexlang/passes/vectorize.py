"""Vectorize unit loops (a kernel-IR step after tile_nodes): how many consecutive units of a
unit loop one work-item computes as one vector.

On a CPU a work-item computes the widest vector the device prefers (its
`preferred_vector_width`, never wider) that divides the loop's extent and that the loop
allows: contiguous stores, loads contiguous or the same in every lane, per-node conditions
and reductions. On a GPU neighbouring work-items coalesce their loads already, so each
computes one unit. The width of every unit loop is recorded in `Kernel.widths` (key
"rule.phase.position"), and the work-items a node tile needs (`Kernel.units`) follow.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram, kernel_units, unit_loops
from cortexlang.passes.kernel_steps import each_kernel, plural
from cortexlang.passes.result import PassResult, unchanged

CANDIDATES = (16, 8, 4, 2)


def vectorize(program: KernelProgram) -> PassResult[KernelProgram]:
    """Record each unit loop's vector width; say how many loops got one, or why none."""
    limits = program.limits
    if limits.is_gpu:
        return unchanged(program, "a GPU: neighbouring work-items coalesce their loads, so "
                         "each computes one unit")
    widest = max(1, limits.preferred_vector_width)
    if widest < min(CANDIDATES):
        return unchanged(program, f"the device prefers vectors of {widest} float")
    widened = each_kernel(program, lambda kernel: _vectorized(kernel, widest))
    loops = [width for kernel in widened.kernels for _, width in kernel.widths]
    if not any(width > 1 for width in loops):
        return unchanged(program, "no unit loop stores contiguously with an extent that a "
                         "vector divides")
    vectors = sum(width > 1 for width in loops)
    return PassResult(widened, f"{plural(vectors, 'unit loop')} of {len(loops)} in vectors "
                      f"of up to {max(loops)} units")


def _vectorized(kernel: Kernel, widest: int) -> Kernel:
    widths = tuple((key, _width(loop, widest)) for key, loop in unit_loops(kernel.phases))
    if not widths:
        return kernel
    widened = replace(kernel, widths=widths)
    return replace(widened, units=kernel_units(widened))


def _width(loop: L.Loop, widest: int) -> int:
    extent = int(loop.stop.value) if isinstance(loop.stop, L.Const) else 1
    for candidate in CANDIDATES:
        if candidate <= widest and extent % candidate == 0 and _vectorisable(loop, candidate):
            return candidate
    return 1


def _vectorisable(loop: L.Loop, lanes: int) -> bool:
    """Can `lanes` consecutive units of this loop be computed as one vector by one
    work-item? Stores must be contiguous, loads contiguous or the same in every lane."""
    values: list[L.Expr] = []
    for stmt in loop.body:
        if isinstance(stmt, L.Store):
            if L.lane_stride(stmt.index, "j", lanes) != 1:
                return False
            values.append(stmt.value)
        elif isinstance(stmt, L.Let):
            values.append(stmt.value)
    for value in values:
        for sub in L.walk_exprs(value):
            if isinstance(sub, L.Load) and L.lane_stride(sub.index, "j", lanes) not in (0, 1):
                return False
            if isinstance(sub, L.Select) and L.mentions(sub.condition, "j"):
                return False
            if isinstance(sub, L.Reduce) and L.mentions(sub.body, "j"):
                return False
    return all(not _uses_unit_as_value(value) for value in values)


def _uses_unit_as_value(expr: L.Expr) -> bool:
    if isinstance(expr, L.Var):
        return expr.name == "j"
    if isinstance(expr, L.Load):
        return False
    if isinstance(expr, L.Binary):
        return _uses_unit_as_value(expr.lhs) or _uses_unit_as_value(expr.rhs)
    if isinstance(expr, L.Call):
        return any(_uses_unit_as_value(arg) for arg in expr.args)
    if isinstance(expr, L.Select):
        return any(_uses_unit_as_value(e) for e in (expr.condition, expr.then, expr.otherwise))
    if isinstance(expr, L.Dot):
        return any(_uses_unit_as_value(s.lhs) or _uses_unit_as_value(s.rhs)
                   for s in expr.segments)
    if isinstance(expr, L.Reduce):
        return _uses_unit_as_value(expr.body)
    return False

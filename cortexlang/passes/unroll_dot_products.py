"""Unroll dot products along k by 4 with vector loads (a kernel-IR pass, after block_weights).

Where a work-item computes one unit at a time (vector width 1: GPUs, or unit loops that do
not vectorise), each of its dot products is a loop over k of scalar multiply-adds. When every
load of a product is contiguous in k (or the same at every k) and each segment's length is a
multiple of 4, the loop can step by 4 with `vload4` and `float4` accumulators, the form that
vectorises on CPUs. The decision is recorded per unit loop and product shape in
`Kernel.k_unrolled`, which the printer follows. A device whose vectors are narrower than 4
floats gets none (no vector type wider than the device's); a program with nothing to unroll
is returned as it is.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram, unit_loops
from cortexlang.passes.result import PassResult, unchanged

LANES = 4


def unroll_dot_products(program: KernelProgram) -> KernelProgram:
    """The kernel program with the dot products that can step along k by 4 marked so (the
    same object when there are none)."""
    return unroll_dot_products_result(program).ir


def unroll_dot_products_result(program: KernelProgram) -> PassResult[KernelProgram]:
    """Mark the dot products that step along k by 4; say how many, or why none."""
    width = program.limits.preferred_vector_width
    if width < LANES:
        return unchanged(program, f"the device's vectors hold {width} floats, fewer than "
                         f"{LANES}")
    kernels = tuple(_unrolled(kernel) for kernel in program.kernels)
    if all(new is old for new, old in zip(kernels, program.kernels, strict=True)):
        return unchanged(program, "no scalar dot product is contiguous in k with a length "
                         f"that is a multiple of {LANES}")
    count = sum(len(kernel.k_unrolled) for kernel in kernels)
    return PassResult(replace(program, kernels=kernels),
                      f"{count} dot-product shape{'s' if count != 1 else ''} step along k "
                      f"by {LANES}")


def _unrolled(kernel: Kernel) -> Kernel:
    widths = dict(kernel.widths)
    chosen: list[tuple[str, tuple[tuple[int, int], ...]]] = []
    for key, loop in unit_loops(kernel.phases):
        if widths.get(key, 1) != 1:
            continue  # the units are the vector lanes already
        shapes: dict[tuple[tuple[int, int], ...], bool] = {}
        for stmt in loop.body:
            if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot):
                shape = tuple((s.start, s.stop) for s in stmt.value.segments)
                shapes[shape] = shapes.get(shape, True) and all(
                    k_vectorisable(segment) for segment in stmt.value.segments)
        chosen += [(key, shape) for shape, fits in shapes.items() if fits]
    return replace(kernel, k_unrolled=tuple(chosen)) if chosen else kernel


def k_vectorisable(segment: L.Segment) -> bool:
    """Can this scalar dot-product segment step along k by 4 with vector loads?"""
    if (segment.stop - segment.start) % LANES:
        return False
    for side in (segment.lhs, segment.rhs):
        for sub in L.walk_exprs(side):
            if isinstance(sub, L.Select):
                return False
            if isinstance(sub, L.Load) and L.stride(sub.index, "k") not in (0, 1):
                return False
    return True

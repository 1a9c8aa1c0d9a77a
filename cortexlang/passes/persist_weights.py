"""Persist weights (a kernel-IR step after tile_rows; option `persist_weights`): a persistent
kernel copies the parameters its products read into local memory once per run.

Applies to the kernels that loop over the batches themselves (over the whole run: the
cooperative and hybrid strategies' `forward`). Parameters are taken in the order of their
printed names while they fit in half the device's local memory; the others stay in global
memory, each with a decision line saying why. With the level strategy every launch would copy
them again, so nothing is copied (the node tile blocks weights for the cache). Recorded in
`Kernel.cached_params`.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import WEIGHT_ROLES, BufferRef
from cortexlang.ir.kernels import Kernel, KernelProgram, ordered_buffers
from cortexlang.passes.result import PassResult, unchanged


def persist_weights(program: KernelProgram) -> PassResult[KernelProgram]:
    """Copy the products' parameters of persistent kernels into local memory where they fit;
    say which, or why none."""
    if not any(kernel.over is BatchRange.RUN for kernel in program.kernels):
        return unchanged(program, "weight persistence not applied: every per-level launch "
                         "would reload local memory; the node tile blocks weights for the "
                         "cache")
    sizes = {buffer.ref: buffer.row_size * 4 for buffer in program.buffers}
    decisions: list[str] = []
    kernels: list[Kernel] = []
    for kernel in program.kernels:
        if kernel.over is not BatchRange.RUN:
            kernels.append(kernel)
            continue
        cached: list[BufferRef] = []
        budget = program.limits.local_mem_size // 2
        for ref in ordered_buffers(product_params(kernel.phases)):
            if sizes[ref] <= budget:
                cached.append(ref)
                budget -= sizes[ref]
            else:
                decisions.append(f"{ref.ir_text} stays in global memory: {sizes[ref]} bytes "
                                 "do not fit in the local memory left")
        if cached:
            decisions.append("weights in local memory for the fused batches: "
                             + ", ".join(ref.ir_text for ref in cached))
            kernel = replace(kernel, cached_params=tuple(cached))
        kernels.append(kernel)
    if not any(kernel.cached_params for kernel in kernels):
        reason = "; ".join(decisions) if decisions else \
            "no product of the persistent kernel reads a parameter"
        return unchanged(program, reason)
    return PassResult(replace(program, kernels=tuple(kernels),
                              decisions=program.decisions + tuple(decisions)),
                      "; ".join(decisions))


def product_params(phases: tuple[L.Phase, ...]) -> set[BufferRef]:
    """The parameters the dot products of these phases read as their left operand."""
    names: set[BufferRef] = set()
    for stmt in L.walk_stmts(phases):
        if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot):
            for segment in stmt.value.segments:
                names.update(sub.buffer for sub in L.walk_exprs(segment.lhs)
                             if isinstance(sub, L.Load)
                             and sub.buffer.role in WEIGHT_ROLES)
    return names

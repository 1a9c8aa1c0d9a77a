"""Dense intermediates: temporaries indexed by position in the batch, not by node id.

Legal always: a temporary lives only while its node's rule runs, and the nodes of one batch
run together, so one row per node of the *largest batch* is enough. The temporaries shrink
from (nodes x row) to (largest batch x row) floats, which keeps them in cache.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BATCH_START, BufferRef, BufferRows, Role
from cortexlang.ir.loop_walk import map_exprs, map_stmts, substitute
from cortexlang.passes.result import PassResult, unchanged

_SLOT = {"node": L.Var("slot")}


def _rewrite(stmts: tuple[L.Stmt, ...], temps: set[BufferRef]) -> tuple[L.Stmt, ...]:
    """Temporaries loaded and stored by slot; every loop over nodes (or a group's members)
    defines its nodes' slot first."""
    def by_slot(expr: L.Expr) -> L.Expr:
        if isinstance(expr, L.Load) and expr.buffer in temps:
            return replace(expr, index=substitute(expr.index, _SLOT))
        return expr

    def slotted(stmt: L.Stmt) -> L.Stmt:
        if isinstance(stmt, L.Store) and stmt.buffer in temps:
            return replace(stmt, index=substitute(stmt.index, _SLOT))
        if isinstance(stmt, L.Loop) and stmt.kind in (L.LoopKind.NODES, L.LoopKind.MEMBERS):
            first = L.Var("i") if stmt.var == "i" else \
                L.Binary("-", L.Var("node"), L.Load(BATCH_START, L.Var("b")))
            return replace(stmt, body=(L.Let("slot", first, True),) + stmt.body)
        return stmt

    return map_stmts(map_exprs(stmts, by_slot), slotted)


def dense_intermediates(program: L.LoopProgram) -> L.LoopProgram:
    """Index every temporary by `slot`, the node's position in its batch (the same object
    when there is no temporary)."""
    return dense_intermediates_result(program).ir


def dense_intermediates_result(program: L.LoopProgram) -> PassResult[L.LoopProgram]:
    """Index every temporary by `slot`; say how many, or that there are none."""
    temps = {buffer.ref for buffer in program.buffers if buffer.ref.role is Role.TEMP}
    if not temps:
        return unchanged(program, "the loop program has no temporaries")
    buffers = tuple(replace(buffer, rows=BufferRows.BATCH) if buffer.ref in temps else buffer
                    for buffer in program.buffers)
    note = f"{len(temps)} temporaries sized by the largest batch instead of the node count"
    return PassResult(replace(program, buffers=buffers, body=_rewrite(program.body, temps),
                              notes=program.notes + (("dense_intermediates", note),)), note)

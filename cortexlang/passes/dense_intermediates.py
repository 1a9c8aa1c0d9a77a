"""Dense intermediates: temporaries indexed by position in the batch, not by node id.

Legal always: a temporary lives only while its node's rule runs, and the nodes of one batch
run together, so one row per node of the *largest batch* is enough. The temporaries shrink
from (nodes x row) to (largest batch x row) floats, which keeps them in cache.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BATCH_START, BufferRef, BufferRows, Role
from cortexlang.passes.result import PassResult, unchanged


def _rename(expr: L.Expr, temps: set[BufferRef]) -> L.Expr:
    if isinstance(expr, L.Load):
        index = _node_to_slot(expr.index) if expr.buffer in temps else _rename(expr.index, temps)
        return L.Load(expr.buffer, index)
    if isinstance(expr, L.Binary):
        return L.Binary(expr.op, _rename(expr.lhs, temps), _rename(expr.rhs, temps))
    if isinstance(expr, L.Call):
        return L.Call(expr.function, tuple(_rename(arg, temps) for arg in expr.args))
    if isinstance(expr, L.Select):
        return L.Select(_rename(expr.condition, temps), _rename(expr.then, temps),
                        _rename(expr.otherwise, temps))
    if isinstance(expr, L.Dot):
        return L.Dot(tuple(replace(s, lhs=_rename(s.lhs, temps), rhs=_rename(s.rhs, temps))
                           for s in expr.segments))
    if isinstance(expr, L.Reduce):
        return replace(expr, body=_rename(expr.body, temps))
    return expr


def _node_to_slot(expr: L.Expr) -> L.Expr:
    if isinstance(expr, L.Var) and expr.name == "node":
        return L.Var("slot")
    if isinstance(expr, L.Binary):
        return L.Binary(expr.op, _node_to_slot(expr.lhs), _node_to_slot(expr.rhs))
    return expr


def _rewrite(stmts: tuple[L.Stmt, ...], temps: set[BufferRef],
             in_heads: bool) -> tuple[L.Stmt, ...]:
    out: list[L.Stmt] = []
    for stmt in stmts:
        if isinstance(stmt, L.Let):
            out.append(L.Let(stmt.name, _rename(stmt.value, temps), stmt.integer))
        elif isinstance(stmt, L.Store):
            index = _node_to_slot(stmt.index) if stmt.buffer in temps else stmt.index
            out.append(replace(stmt, index=index, value=_rename(stmt.value, temps)))
        elif isinstance(stmt, L.If):
            out.append(L.If(stmt.condition, _rewrite(stmt.then, temps, in_heads),
                            _rewrite(stmt.otherwise, temps, in_heads)))
        elif isinstance(stmt, L.Phase):
            out.append(replace(stmt, body=_rewrite(stmt.body, temps, in_heads)))
        elif isinstance(stmt, L.Loop):
            body = _rewrite(stmt.body, temps, in_heads or stmt.var == "i")
            if stmt.kind in (L.LoopKind.NODES, L.LoopKind.MEMBERS):
                first = L.Var("i") if stmt.var == "i" else \
                    L.Binary("-", L.Var("node"), L.Load(BATCH_START, L.Var("b")))
                body = (L.Let("slot", first, True),) + body
            out.append(replace(stmt, body=body))
        else:
            out.append(stmt)
    return tuple(out)


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
    return PassResult(replace(program, buffers=buffers, body=_rewrite(program.body, temps, False),
                              notes=program.notes + (("dense_intermediates", note),)), note)

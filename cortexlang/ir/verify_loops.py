"""The loop IR's verifier: run after every step that produces a loop program (in tests, and
with the `verify` instrument)."""

from __future__ import annotations

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.loop_walk import children, expressions

# Scalars every kernel receives from the linearizer: the run's sizes.
FREE_VARIABLES = frozenset({"num_nodes", "num_leaves", "num_batches", "num_leaf_batches",
                            "zero_row", "num_heads"})


def verify_loops(program: L.LoopProgram) -> None:
    """Every buffer read or written is declared; every variable is defined before use."""
    declared = {buffer.ref for buffer in program.buffers}

    def check_expr(expr: L.Expr, scope: set[str]) -> None:
        bound = set(scope)
        for sub in expressions(expr):
            if isinstance(sub, L.Load) and sub.buffer not in declared:
                raise InternalError("verify_loops", f"load of undeclared {sub.buffer.ir_text}")
            if isinstance(sub, L.Reduce):
                bound.add(sub.var)
            if isinstance(sub, L.Dot):
                bound.update(segment.var for segment in sub.segments)
        for sub in expressions(expr):
            if isinstance(sub, L.Var) and sub.name not in bound and \
                    sub.name not in FREE_VARIABLES:
                raise InternalError("verify_loops", f"variable {sub.name} used before it is "
                                    "defined")

    def check(stmts: tuple[L.Stmt, ...], scope: set[str]) -> None:
        scope = set(scope)
        for stmt in stmts:
            if isinstance(stmt, L.Store) and stmt.buffer not in declared:
                raise InternalError("verify_loops", f"store to undeclared {stmt.buffer.ir_text}")
            for expr in children(stmt):
                if isinstance(expr, L.Expr):
                    check_expr(expr, scope)
            if isinstance(stmt, L.Let):
                scope.add(stmt.name)
            elif isinstance(stmt, L.If):
                check(stmt.then, scope)
                check(stmt.otherwise, scope)
            elif isinstance(stmt, L.Loop):
                check(stmt.body, scope | {stmt.var})
            elif isinstance(stmt, L.Phase):
                check(stmt.body, scope)

    check(program.body, set())

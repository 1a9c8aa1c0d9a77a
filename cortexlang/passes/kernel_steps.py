"""What the kernel-IR steps after `plan_kernels` share: rebuilding a program kernel by kernel
(the same object when no kernel changed), and the expressions of a unit loop's statements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram


def each_kernel(program: KernelProgram, change: Callable[[Kernel], Kernel]) -> KernelProgram:
    """`program` with `change` applied to every kernel: the very same object when `change`
    returned every kernel as it was given."""
    kernels = tuple(change(kernel) for kernel in program.kernels)
    if all(new is old for new, old in zip(kernels, program.kernels, strict=True)):
        return program
    return replace(program, kernels=kernels)


def stmt_exprs(stmts: tuple[L.Stmt, ...]) -> list[L.Expr]:
    """The expressions of these statements' lets and stores (nested statements excluded)."""
    return [expr for stmt in stmts for expr in (
        [stmt.value] if isinstance(stmt, L.Let) else
        [stmt.index, stmt.value] if isinstance(stmt, L.Store) else [])]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

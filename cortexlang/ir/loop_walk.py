"""Traversal of the loop IR (ir/loops.py), which the kernel IR reuses for its phases: the one
place that knows which fields of a node are its children.

Reading: `children` (a node's sub-expressions and sub-statements, in source order), `walk`
(pre-order, optionally not descending into some nodes), and the queries built on it
(`statements`, `expressions`, `loads`, `variables`, `mentions`).

Rewriting: `map_expr` rebuilds an expression bottom-up, `map_stmts` a block of statements,
`map_exprs` every expression of a block, and `substitute` replaces variables. Nodes are
frozen; a rewrite returns the *identical* object (and tuple) wherever nothing changed, so a
pass can tell with `is` that it did nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L

Node = L.Expr | L.Stmt
T = TypeVar("T")
N = TypeVar("N")


def children(node: Node) -> tuple[Node, ...]:
    """The sub-expressions and sub-statements of `node`, in the order the printer writes
    them (a dot product: each segment's left operand, then its right)."""
    match node:
        case L.Const() | L.Var():
            return ()
        case L.Load():
            return (node.index,)
        case L.Binary():
            return (node.lhs, node.rhs)
        case L.Call():
            return node.args
        case L.Select():
            return (node.condition, node.then, node.otherwise)
        case L.Dot():
            return tuple(side for segment in node.segments for side in (segment.lhs, segment.rhs))
        case L.Reduce():
            return (node.body,)
        case L.Let():
            return (node.value,)
        case L.Store():
            return (node.index, node.value)
        case L.If():
            return (node.condition, *node.then, *node.otherwise)
        case L.Loop():
            return (node.start, node.stop, *node.body)
        case L.Phase():
            return node.body
    raise InternalError("loop_walk", f"no traversal for {type(node).__name__}")


def walk(root: Node | Iterable[Node],
         descend: Callable[[Node], bool] | None = None) -> Iterator[Node]:
    """Every node of `root` (a node, or a block of them) in pre-order; the children of a
    node for which `descend` is false are skipped. Iterative: deep sums cost no recursion."""
    stack: list[Node] = [root] if isinstance(root, Node) else list(root)[::-1]
    while stack:
        node = stack.pop()
        yield node
        if descend is None or descend(node):
            stack.extend(reversed(children(node)))


def statements(root: Node | Iterable[Node]) -> Iterator[L.Stmt]:
    """Every statement, nested blocks included, in pre-order."""
    for node in walk(root, lambda node: isinstance(node, L.Stmt)):
        if isinstance(node, L.Stmt):
            yield node


def expressions(root: Node | Iterable[Node]) -> Iterator[L.Expr]:
    """Every expression and sub-expression (of every statement, nested ones included)."""
    for node in walk(root):
        if isinstance(node, L.Expr):
            yield node


def loads(root: Node | Iterable[Node]) -> list[L.Load]:
    """Every load, in pre-order (a load inside another's index after it)."""
    return [node for node in walk(root) if isinstance(node, L.Load)]


def variables(root: Node | Iterable[Node]) -> set[str]:
    """The names of the variables an expression (or block) reads."""
    return {node.name for node in walk(root) if isinstance(node, L.Var)}


def mentions(root: Node | Iterable[Node], name: str) -> bool:
    """Does `root` read the variable `name`?"""
    return any(isinstance(node, L.Var) and node.name == name for node in walk(root))


# ---------------------------------------------------------------------------------------------
# Rewriting


def _same(old: tuple[T, ...], new: Iterable[T]) -> tuple[T, ...]:
    """`old` itself when every element of `new` is the element of `old` it replaces."""
    rebuilt = tuple(new)
    if len(rebuilt) == len(old) and all(a is b for a, b in zip(rebuilt, old, strict=True)):
        return old
    return rebuilt


def _rebuilt(node: N, **fields: Any) -> N:
    """`node` with `fields` replaced: `node` itself when each is the object it has already."""
    if all(getattr(node, name) is value for name, value in fields.items()):
        return node
    return replace(node, **fields)  # type: ignore[type-var]


def map_expr(expr: L.Expr, change: Callable[[L.Expr], L.Expr]) -> L.Expr:
    """`expr` rebuilt bottom-up: `change` sees each node with its children already changed,
    and returns it or its replacement (which is not visited again)."""
    def visit(node: L.Expr) -> L.Expr:
        rebuilt: L.Expr
        match node:
            case L.Const() | L.Var():
                rebuilt = node
            case L.Load():
                rebuilt = _rebuilt(node, index=visit(node.index))
            case L.Binary():
                rebuilt = _rebuilt(node, lhs=visit(node.lhs), rhs=visit(node.rhs))
            case L.Call():
                rebuilt = _rebuilt(node, args=_same(node.args, map(visit, node.args)))
            case L.Select():
                rebuilt = _rebuilt(node, condition=visit(node.condition),
                                   then=visit(node.then), otherwise=visit(node.otherwise))
            case L.Dot():
                rebuilt = _rebuilt(node, segments=_same(node.segments, (
                    _rebuilt(segment, lhs=visit(segment.lhs), rhs=visit(segment.rhs))
                    for segment in node.segments)))
            case L.Reduce():
                rebuilt = _rebuilt(node, body=visit(node.body))
            case _:
                raise InternalError("loop_walk", f"no rewrite for {type(node).__name__}")
        return change(rebuilt)

    return visit(expr)


def map_stmts(stmts: tuple[L.Stmt, ...],
              change: Callable[[L.Stmt], L.Stmt]) -> tuple[L.Stmt, ...]:
    """`stmts` rebuilt bottom-up: `change` sees each statement with its nested blocks already
    changed (the same tuple when nothing changed)."""
    def visit(stmt: L.Stmt) -> L.Stmt:
        rebuilt: L.Stmt
        match stmt:
            case L.If():
                rebuilt = _rebuilt(stmt, then=map_stmts(stmt.then, change),
                                   otherwise=map_stmts(stmt.otherwise, change))
            case L.Loop() | L.Phase():
                rebuilt = _rebuilt(stmt, body=map_stmts(stmt.body, change))
            case _:
                rebuilt = stmt
        return change(rebuilt)

    return _same(stmts, map(visit, stmts))


def map_exprs(stmts: tuple[L.Stmt, ...],
              change: Callable[[L.Expr], L.Expr]) -> tuple[L.Stmt, ...]:
    """`stmts` with `map_expr(expr, change)` applied to every expression of every statement,
    nested blocks included (values, indices, conditions, loop bounds)."""
    def own(stmt: L.Stmt) -> L.Stmt:
        def mapped(expr: L.Expr) -> L.Expr:
            return map_expr(expr, change)

        match stmt:
            case L.Let():
                return _rebuilt(stmt, value=mapped(stmt.value))
            case L.Store():
                return _rebuilt(stmt, index=mapped(stmt.index), value=mapped(stmt.value))
            case L.If():
                return _rebuilt(stmt, condition=mapped(stmt.condition))
            case L.Loop():
                return _rebuilt(stmt, start=mapped(stmt.start), stop=mapped(stmt.stop))
        return stmt

    return map_stmts(stmts, own)


def substitute(expr: L.Expr, values: Mapping[str, L.Expr]) -> L.Expr:
    """`expr` with every variable named in `values` replaced by its value. A name a reduction
    or dot product binds inside `expr` cannot be substituted (it would be captured)."""
    bound = {node.var for node in walk(expr) if isinstance(node, L.Reduce)} | \
        {segment.var for node in walk(expr) if isinstance(node, L.Dot)
         for segment in node.segments}
    if bound & values.keys():
        raise InternalError("loop_walk", f"substituting bound variable(s) "
                            f"{', '.join(sorted(bound & values.keys()))}")

    def replaced(node: L.Expr) -> L.Expr:
        return values.get(node.name, node) if isinstance(node, L.Var) else node

    return map_expr(expr, replaced)

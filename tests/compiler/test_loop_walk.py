"""loop_walk: the loop IR's traversal toolkit (children, walk, map_expr, map_stmts, substitute)."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.loop_walk import (
    children,
    expressions,
    loads,
    map_expr,
    map_exprs,
    map_stmts,
    mentions,
    statements,
    substitute,
    variables,
    walk,
)

X = BufferRef(Role.STATE, "x")
ONE = L.Const(1, True)

# Classes of ir/loops.py that are no expression or statement: they hold nodes, and each
# node class that holds them says which of their fields are children.
CONTAINERS = {L.Segment, L.Buffer, L.LoopProgram}


def _node_classes() -> list[type]:
    return list(typing.get_args(L.Expr)) + list(typing.get_args(L.Stmt))


def test_every_dataclass_of_the_loop_ir_is_a_node_or_a_known_container() -> None:
    """A new node class must join `L.Expr` or `L.Stmt` (and so the test below)."""
    classes = {value for value in vars(L).values()
               if inspect.isclass(value) and dataclasses.is_dataclass(value)
               and value.__module__ == L.__name__}
    assert classes == set(_node_classes()) | CONTAINERS


def _sample(annotation: str, planted: list[object]) -> object:
    """A value for a field of this annotation; every expression or statement in it is a
    distinct object recorded in `planted`."""
    def fresh_expr() -> L.Expr:
        expr = L.Var(f"v{len(planted)}")
        planted.append(expr)
        return expr

    def fresh_stmt() -> L.Stmt:
        stmt = L.Let(f"s{len(planted)}", L.Const(0))
        planted.append(stmt)
        return stmt

    samples = {
        "Expr": fresh_expr, "Stmt": fresh_stmt,
        "tuple[Expr, ...]": lambda: (fresh_expr(), fresh_expr()),
        "tuple[Stmt, ...]": lambda: (fresh_stmt(), fresh_stmt()),
        "tuple[Segment, ...]": lambda: (L.Segment("k", 0, 4, fresh_expr(), fresh_expr()),
                                        L.Segment("k", 4, 8, fresh_expr(), fresh_expr())),
        "str": lambda: "name", "int": lambda: 2, "float": lambda: 1.5, "bool": lambda: True,
        "BufferRef": lambda: X, "LoopKind": lambda: L.LoopKind.UNITS,
        "BatchRange | None": lambda: BatchRange.ALL,
        "Span | None": lambda: None,
        "tuple[BufferRef, ...]": lambda: (X,),
    }
    assert annotation in samples, f"no sample for a field of type {annotation}"
    return samples[annotation]()


@pytest.mark.parametrize("node_class", _node_classes(), ids=lambda cls: cls.__name__)
def test_children_covers_every_field_of_every_node(node_class: type) -> None:
    """Every expression or statement a node holds (directly, in a tuple, or in a dot
    product's segments) is one of its children, in field order."""
    planted: list[object] = []
    node = node_class(**{field.name: _sample(str(field.type), planted)
                         for field in dataclasses.fields(node_class)})
    found = children(node)
    assert len(found) == len(planted)
    assert all(child is expected for child, expected in zip(found, planted, strict=True))


def test_walk_is_pre_order_in_field_order() -> None:
    body = (L.Let("a", L.Binary("+", L.Load(X, L.Var("j")), ONE)),
            L.If(L.Var("c"), (L.Store(X, L.Var("j"), L.Var("a")),), ()))
    loop = L.Loop("j", L.Const(0, True), L.Const(4, True), L.LoopKind.UNITS, body)
    names = [type(node).__name__ + (f":{node.name}" if isinstance(node, L.Var) else "")
             for node in walk(loop)]
    assert names == ["Loop", "Const", "Const", "Let", "Binary", "Load", "Var:j", "Const",
                     "If", "Var:c", "Store", "Var:j", "Var:a"]
    assert [type(stmt).__name__ for stmt in statements(loop)] == ["Loop", "Let", "If", "Store"]
    assert loads(loop) == [L.Load(X, L.Var("j"))]
    assert variables(body) == {"j", "c", "a"} and mentions(loop, "c")
    # Not descending into loads: only `j` as a value is left.
    outside = walk(body[0], lambda node: not isinstance(node, L.Load))
    assert L.Var("j") not in outside


def test_walk_of_a_deep_sum_needs_no_recursion() -> None:
    expr: L.Expr = L.Var("x")
    for _ in range(5000):
        expr = L.Binary("+", expr, ONE)
    assert sum(1 for _ in expressions(expr)) == 10001


def test_a_rewrite_that_changes_nothing_returns_the_same_objects() -> None:
    dot = L.Dot((L.Segment("k", 0, 4, L.Load(X, L.Var("k")), L.Var("a")),))
    expr = L.Call("tanh", (L.Select(L.Var("c"), dot, L.Reduce("sum", "k", 0, 4, ONE)),))
    assert map_expr(expr, lambda node: node) is expr
    assert substitute(expr, {"absent": ONE}) is expr
    stmts: tuple[L.Stmt, ...] = (
        L.Phase("leaf", 0, (L.Loop("j", ONE, ONE, L.LoopKind.UNITS,
                                   (L.Let("a", expr), L.Store(X, L.Var("j"), L.Var("a")))),)),
        L.If(L.Var("c"), (L.Let("b", ONE),), ()))
    assert map_stmts(stmts, lambda stmt: stmt) is stmts
    assert map_exprs(stmts, lambda node: node) is stmts


def test_a_rewrite_rebuilds_only_the_path_to_a_change() -> None:
    kept = L.Let("kept", L.Var("x"))
    changed = L.Let("changed", L.Binary("*", L.Var("node"), L.Const(4, True)))
    phase = L.Phase("internal", 1, (kept, changed), (X,))
    (new,) = map_exprs((phase,), lambda node: L.Var("slot") if node == L.Var("node") else node)
    assert isinstance(new, L.Phase) and new is not phase
    assert new.body[0] is kept
    assert new.body[1] == L.Let("changed", L.Binary("*", L.Var("slot"), L.Const(4, True)))
    assert (new.rule, new.index, new.stores) == (phase.rule, phase.index, phase.stores)


def test_substitute_replaces_variables_bottom_up() -> None:
    expr = L.Binary("+", L.Load(X, L.Binary("*", L.Var("node"), L.Const(2, True))),
                    L.Var("node"))
    row = L.Binary("+", L.Var("i"), ONE)
    assert substitute(expr, {"node": row}) == L.Binary(
        "+", L.Load(X, L.Binary("*", row, L.Const(2, True))), row)
    # The replacement is not visited again: `i` inside it stays.
    assert substitute(L.Var("node"), {"node": row, "i": ONE}) is row


def test_substitute_refuses_a_variable_a_reduction_binds() -> None:
    reduce = L.Reduce("max", "k", 0, 4, L.Load(X, L.Var("k")))
    with pytest.raises(InternalError):
        substitute(reduce, {"k": ONE})

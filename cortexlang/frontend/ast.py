"""The syntax tree of a .cx program, exactly as written (names unresolved, shapes unevaluated).

Nodes are frozen, slotted dataclasses; spans are excluded from equality so that a program
and its pretty-printed-then-reparsed copy compare equal. The checker
(`cortexlang.frontend.check`) turns this tree into the typed `CheckedProgram`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortexlang.errors import Span


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric literal; `is_integer` remembers whether it was written without a point."""

    value: float
    is_integer: bool
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Scaled:
    """`3H`: an integer times a size, written without `*` as in the equations."""

    factor: int
    name: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Reduce:
    """`sum(body for k in children(n))`: a reduction over the children of a node."""

    op: str
    body: Expr
    var: str
    iterator: str
    node: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class SliceIndex:
    start: Expr | None
    stop: Expr | None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Subscript:
    """`base[index]`: a parameter row, a child's state, or a slice of a vector."""

    base: Expr
    index: Expr | SliceIndex
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class BinOp:
    """`lhs op rhs` with op one of + - * / % @."""

    op: str
    lhs: Expr
    rhs: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Neg:
    arg: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    lhs: Expr
    rhs: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Ternary:
    """`then if condition else otherwise`."""

    condition: Expr
    then: Expr
    otherwise: Expr
    span: Span | None = _span()


Expr = Number | Name | Scaled | Call | Reduce | Subscript | BinOp | Neg | Compare | Ternary


# ---------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True, slots=True)
class SizeDecl:
    name: str
    value: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class StructureDecl:
    kind: str
    args: tuple[tuple[str, Expr], ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ParamDecl:
    name: str
    shape: tuple[Expr, ...]
    init: Expr | None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class InputDecl:
    """`input word: token` (kind "token", no shape) or `input x[X]` (kind "vector")."""

    name: str
    kind: str
    shape: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class StateDecl:
    name: str
    shape: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Statement:
    """`a, b = expr`: one or more targets (several only with `split`)."""

    targets: tuple[str, ...]
    value: Expr
    span: Span | None = _span()
    target_spans: tuple[Span | None, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """`leaf n:` or `internal n:` followed by its statements."""

    kind: str
    node: str
    statements: tuple[Statement, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class OutputDecl:
    """`output h[root]`, `output h[all]`, or a head: `output p[root] = softmax(W @ h + b)`."""

    name: str
    selector: str
    value: Expr | None
    span: Span | None = _span()
    selector_span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    sizes: tuple[SizeDecl, ...]
    structures: tuple[StructureDecl, ...]
    params: tuple[ParamDecl, ...]
    inputs: tuple[InputDecl, ...]
    states: tuple[StateDecl, ...]
    rules: tuple[Rule, ...]
    outputs: tuple[OutputDecl, ...]
    span: Span | None = _span()
    path: str = field(default="<input>", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

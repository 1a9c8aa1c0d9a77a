"""The checked program: names resolved, sizes evaluated, every expression typed with its shape.

This is what the checker produces and what both the reference interpreter and the compiler
consume. Semantics, shared by every backend:

- A rule computes the state of one node `n`. Its statements run in order; a bare state name
  read after it was assigned in the rule is the node's new value.
- `State(name, child)` with a child selector reads a child's final state. A child that does
  not exist (past the node's arity, or a DAG border) reads as zeros of the state's shape.
- `ChildReduce` sums (or averages, or takes the elementwise max of) its body over the node's
  existing children; over no children the result is zeros. Operators (`Unary.op`,
  `Binary.op`, `ChildReduce.op`) are named as in the operator table, `ir/operators.py`,
  whose numpy implementations are their meaning.
- `IsLeaf(child)` is true when that child exists and has no children: a missing child is not
  a leaf.
- Shapes are tuples of ints: () scalar, (H,) vector, (H, W) matrix. Binary elementwise
  operations broadcast a scalar against a tensor; otherwise shapes must match.
- `MatMul` is [m, k] @ [k] -> [m] or [m, k] @ [k, p] -> [m, p]. `Concat` and `Slice` work
  on axis 0.

Every node is a frozen, slotted dataclass; spans are excluded from equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortexlang.errors import Span

Shape = tuple[int, ...]


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Which node: child selectors and structural conditions


@dataclass(frozen=True, slots=True)
class ChildAt:
    """The node's child number `index` (`left(n)` is 0, `right(n)` is 1)."""

    index: int


@dataclass(frozen=True, slots=True)
class ChildVar:
    """The child bound by a `for k in children(n)` reduction."""

    var: str


ChildRef = ChildAt | ChildVar


@dataclass(frozen=True, slots=True)
class IsLeaf:
    """True when the node (or the given child) has no children."""

    child: ChildRef | None


@dataclass(frozen=True, slots=True)
class NumChildrenCompare:
    """`num_children(n) OP value`."""

    op: str
    value: int


Condition = IsLeaf | NumChildrenCompare


# ---------------------------------------------------------------------------------------------
# Token indices (for embedding lookups)


@dataclass(frozen=True, slots=True)
class TokenIndex:
    """The node's token id from a `token` input, e.g. `word(n)`."""

    input: str


@dataclass(frozen=True, slots=True)
class IndexMod:
    """`index % modulus`: e.g. a small table of word matrices indexed by `word(n) % 32`."""

    index: IndexExpr
    modulus: int


IndexExpr = TokenIndex | IndexMod


# ---------------------------------------------------------------------------------------------
# Typed expressions


@dataclass(frozen=True, slots=True)
class Const:
    """A constant tensor with every element equal to `value` (a literal, zeros(), ones())."""

    value: float
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Lookup:
    """`param[index]`: the row (or matrix) of a parameter selected by a token index."""

    param: str
    index: IndexExpr
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class NodeInput:
    """The node's vector input, e.g. `x(n)` for a grid cell."""

    name: str
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class NumChildren:
    """`num_children(n)` as a float scalar (structural, not a value)."""

    shape: Shape = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class State:
    """A state tensor: of the node itself (`child` None, already assigned) or of a child."""

    name: str
    child: ChildRef | None
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Local:
    name: str
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    """An elementwise (or, for softmax, vector-wide) operator; `op` names its entry in the
    operator table (`ir/operators.py`), as do `Binary.op` and `ChildReduce.op`."""

    op: str
    arg: TypedExpr
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: TypedExpr
    rhs: TypedExpr
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class MatMul:
    lhs: TypedExpr
    rhs: TypedExpr
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Concat:
    parts: tuple[TypedExpr, ...]
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Slice:
    arg: TypedExpr
    start: int
    stop: int
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ChildReduce:
    op: str
    var: str
    body: TypedExpr
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Select:
    condition: Condition
    then: TypedExpr
    otherwise: TypedExpr
    shape: Shape
    span: Span | None = _span()


TypedExpr = (Const | Param | Lookup | NodeInput | NumChildren | State | Local | Unary | Binary
             | MatMul | Concat | Slice | ChildReduce | Select)


# ---------------------------------------------------------------------------------------------
# The program


@dataclass(frozen=True, slots=True)
class Assign:
    """`target = value`; `target` is a state of the node or a rule-local temporary."""

    target: str
    value: TypedExpr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class CheckedRule:
    kind: str
    node: str
    statements: tuple[Assign, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class StructureInfo:
    """kind: binary_tree | tree | dag | sequence; max_children bounds every node's arity."""

    kind: str
    max_children: int

    @property
    def words_only_at_leaves(self) -> bool:
        return self.kind in ("binary_tree", "tree")


@dataclass(frozen=True, slots=True)
class ParamInfo:
    name: str
    shape: Shape
    init: tuple[str, tuple[float, ...]]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class InputInfo:
    """kind "token" (an int id per node, shape ()) or "vector" (a float vector per node)."""

    name: str
    kind: str
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class StateInfo:
    name: str
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class OutputInfo:
    """An output: `value` evaluated at the root of each structure, or at every node."""

    name: str
    selector: str
    value: TypedExpr
    shape: Shape
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class CheckedProgram:
    """A legal, fully typed model. `leaf_explicit` is False when the source gave no leaf rule
    and leaves run the internal rule with every child reading as zeros."""

    name: str
    sizes: tuple[tuple[str, int], ...]
    structure: StructureInfo
    params: tuple[ParamInfo, ...]
    inputs: tuple[InputInfo, ...]
    states: tuple[StateInfo, ...]
    leaf: CheckedRule
    internal: CheckedRule
    outputs: tuple[OutputInfo, ...]
    leaf_explicit: bool = True
    path: str = field(default="<input>", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    def size(self, name: str) -> int:
        return dict(self.sizes)[name]

    def param(self, name: str) -> ParamInfo:
        return next(param for param in self.params if param.name == name)

    def state(self, name: str) -> StateInfo:
        return next(state for state in self.states if state.name == name)

    def input(self, name: str) -> InputInfo:
        return next(item for item in self.inputs if item.name == name)

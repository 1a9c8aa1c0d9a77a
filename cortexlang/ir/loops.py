"""Stage 2, the loop IR: recursion turned into loops over the linearizer's arrays.

Every per-node temporary is an explicit tensor (`Buffer`), the recursion is a *sequential*
loop over batches, and each batch runs *parallel* loops over its nodes and over the hidden
units. Indices go through the linearizer's arrays (`children[node, 1]`), loop bounds vary per
batch (`batch_start[b]`, `batch_len[b]`), and where leaves are not specialised a conditional
picks the rule per node. A node's rule is split into `Phase`s: within a phase every unit is
computed independently; a phase boundary is a synchronisation point inside the node (a value
that a later phase reads at arbitrary indices, e.g. the operand of a matrix product, has to be
complete first).

Expressions are scalar: each describes one element, for one node and one unit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cortexlang.errors import Span
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BufferRef, BufferRows

# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True, slots=True)
class Const:
    value: float
    integer: bool = False


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Load:
    """`buffer[index]`; a buffer is a typed reference (role and name, ir/buffers.py)."""

    buffer: BufferRef
    index: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic (+ - * / %), integer or float, and comparisons (< <= > >= == !=)."""

    op: str
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Call:
    """A math function: sigmoid tanh exp log relu max min, or `float` (int to float)."""

    function: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Select:
    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True, slots=True)
class Segment:
    """One range of a dot product: sum over var in [start, stop) of lhs * rhs."""

    var: str
    start: int
    stop: int
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Dot:
    """A dot product, split into segments (one per concatenated part of the operand)."""

    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Reduce:
    """`op` (max or sum) of body over var in [start, stop)."""

    op: str
    var: str
    start: int
    stop: int
    body: Expr


Expr = Const | Var | Load | Binary | Call | Select | Dot | Reduce


# ---------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True, slots=True)
class Let:
    """A named scalar temporary: computed once per node and unit."""

    name: str
    value: Expr
    integer: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    """`buffer[index] = value`, storing operator `op`'s value, from `span` in the source."""

    buffer: BufferRef
    index: Expr
    value: Expr
    op: str = ""
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def note(self) -> str:
        """What the printers write beside the store: the operator and its source line."""
        if self.span is None:
            return self.op
        return f"{self.op}, line {self.span.line}"


@dataclass(frozen=True, slots=True)
class If:
    condition: Expr
    then: tuple[Stmt, ...]
    otherwise: tuple[Stmt, ...]


class LoopKind(enum.Enum):
    """What a loop runs over, and so how it runs."""

    BATCHES = "batches"  # the batches, one after another (sequential)
    NODES = "nodes"      # the nodes of a batch, or the head nodes (parallel)
    UNITS = "units"      # the units of a node's values (parallel)
    # With the recursion unrolled (`unroll_recursion`):
    GROUPS = "groups"    # the groups of a batch (parallel), each holding a loop over
    MEMBERS = "members"  # the group's nodes, in order, on one work-item (sequential)


@dataclass(frozen=True, slots=True)
class Loop:
    """`kind`: what the loop runs over (`LoopKind`). `batches`: which batches a loop over
    batches covers (HEADS on the loop over the head nodes); the bounds say the same for the
    printer, and no stage reads them back."""

    var: str
    start: Expr
    stop: Expr
    kind: LoopKind
    body: tuple[Stmt, ...]
    batches: BatchRange | None = None


@dataclass(frozen=True, slots=True)
class Phase:
    """A fused region of one rule; `index` orders phases, `stores` names what it produces."""

    rule: str
    index: int
    body: tuple[Stmt, ...]
    stores: tuple[BufferRef, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)


Stmt = Let | Store | If | Loop | Phase


@dataclass(frozen=True, slots=True)
class Buffer:
    """A tensor of rows of `row_size` floats (or ints); how many rows, `rows` says
    (`BufferRows`)."""

    ref: BufferRef
    rows: BufferRows
    row_size: int
    integer: bool = False


@dataclass(frozen=True, slots=True)
class LoopProgram:
    name: str
    buffers: tuple[Buffer, ...]
    body: tuple[Stmt, ...]
    node_tile: int = 1
    notes: tuple[tuple[str, str], ...] = ()

    def buffer(self, ref: BufferRef) -> Buffer:
        return next(buffer for buffer in self.buffers if buffer.ref == ref)


# ---------------------------------------------------------------------------------------------
# Printer

_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}


def format_expr(expr: Expr, parent: int = 0) -> str:
    """C-like text of an expression (also what the OpenCL printer starts from)."""
    if isinstance(expr, Const):
        if expr.integer:
            return str(int(expr.value))
        if expr.value == float("-inf"):
            return "-inf"
        return f"{expr.value:g}"
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Load):
        return f"{expr.buffer.ir_text}[{format_expr(expr.index)}]"
    if isinstance(expr, Binary):
        level = _PRECEDENCE[expr.op]
        text = f"{format_expr(expr.lhs, level)} {expr.op} {format_expr(expr.rhs, level + 1)}"
        return f"({text})" if level < parent else text
    if isinstance(expr, Call):
        return f"{expr.function}({', '.join(format_expr(arg) for arg in expr.args)})"
    if isinstance(expr, Select):
        text = (f"{format_expr(expr.condition, 1)} ? {format_expr(expr.then, 1)} : "
                f"{format_expr(expr.otherwise, 1)}")
        return f"({text})" if parent else text
    if isinstance(expr, Dot):
        parts = [f"sum({s.var} in {s.start}..{s.stop}: {format_expr(s.lhs, 6)} * "
                 f"{format_expr(s.rhs, 6)})" for s in expr.segments]
        return " + ".join(parts)
    if isinstance(expr, Reduce):
        return f"{expr.op}({expr.var} in {expr.start}..{expr.stop}: {format_expr(expr.body)})"
    raise AssertionError(f"unhandled expression {expr!r}")


def _format_stmt(stmt: Stmt, depth: int, lines: list[str]) -> None:
    pad = "    " * depth
    if isinstance(stmt, Let):
        lines.append(f"{pad}{'int' if stmt.integer else 'float'} {stmt.name} = "
                     f"{format_expr(stmt.value)}")
    elif isinstance(stmt, Store):
        note = f"    # {stmt.note}" if stmt.note else ""
        lines.append(f"{pad}{stmt.buffer.ir_text}[{format_expr(stmt.index)}] = "
                     f"{format_expr(stmt.value)}{note}")
    elif isinstance(stmt, If):
        lines.append(f"{pad}if {format_expr(stmt.condition)}:")
        for inner in stmt.then:
            _format_stmt(inner, depth + 1, lines)
        if stmt.otherwise:
            lines.append(f"{pad}else:")
            for inner in stmt.otherwise:
                _format_stmt(inner, depth + 1, lines)
    elif isinstance(stmt, Loop):
        mode = "sequential" if stmt.kind is LoopKind.BATCHES else \
            "sequential members, one work-item" if stmt.kind is LoopKind.MEMBERS else \
            f"parallel {stmt.kind.value}"
        lines.append(f"{pad}for {stmt.var} in {format_expr(stmt.start)} .. "
                     f"{format_expr(stmt.stop)}:    # {mode}")
        for inner in stmt.body:
            _format_stmt(inner, depth + 1, lines)
    elif isinstance(stmt, Phase):
        stores = ", ".join(ref.ir_text for ref in stmt.stores)
        lines.append(f"{pad}phase {stmt.rule}.{stmt.index}:    # stores {stores}")
        for inner in stmt.body:
            _format_stmt(inner, depth + 1, lines)
    else:
        raise AssertionError(f"unhandled statement {stmt!r}")


def format_loops(program: LoopProgram) -> str:
    """Deterministic text of the loop program (the stage's printer)."""
    lines = [f"loop program {program.name}"]
    for buffer in program.buffers:
        kind = "int" if buffer.integer else "float"
        lines.append(f"buffer {buffer.ref.ir_text}: "
                     f"{kind}[{buffer.rows.value}][{buffer.row_size}]")
    for stmt in program.body:
        _format_stmt(stmt, 0, lines)
    return "\n".join(lines) + "\n"

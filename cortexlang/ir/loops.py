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

from cortexlang.errors import InternalError, Span
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


# ---------------------------------------------------------------------------------------------
# Verifier


def walk_exprs(expr: Expr):  # type: ignore[no-untyped-def]
    """Every sub-expression, depth first."""
    yield expr
    if isinstance(expr, Load):
        yield from walk_exprs(expr.index)
    elif isinstance(expr, Binary):
        yield from walk_exprs(expr.lhs)
        yield from walk_exprs(expr.rhs)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from walk_exprs(arg)
    elif isinstance(expr, Select):
        yield from walk_exprs(expr.condition)
        yield from walk_exprs(expr.then)
        yield from walk_exprs(expr.otherwise)
    elif isinstance(expr, Dot):
        for segment in expr.segments:
            yield from walk_exprs(segment.lhs)
            yield from walk_exprs(segment.rhs)
    elif isinstance(expr, Reduce):
        yield from walk_exprs(expr.body)


def mentions(expr: Expr, name: str) -> bool:
    return any(isinstance(sub, Var) and sub.name == name for sub in walk_exprs(expr))


def stride(expr: Expr, var: str) -> int | None:
    """The coefficient of `var` in an integer expression linear in it, else None.

    Used to decide vectorisation: a load whose index has stride 1 in a loop variable reads
    consecutive addresses as the variable steps; stride 0 is the same address (a broadcast)."""
    if isinstance(expr, Var):
        return 1 if expr.name == var else 0
    if isinstance(expr, Const):
        return 0
    if isinstance(expr, Load):
        return 0 if not mentions(expr.index, var) else None
    if isinstance(expr, Binary):
        lhs, rhs = stride(expr.lhs, var), stride(expr.rhs, var)
        if lhs is None or rhs is None:
            return None
        if expr.op == "+":
            return lhs + rhs
        if expr.op == "-":
            return lhs - rhs
        if expr.op == "*":
            if lhs == 0 and rhs == 0:
                return 0
            if isinstance(expr.lhs, Const) and lhs == 0:
                return int(expr.lhs.value) * rhs
            if isinstance(expr.rhs, Const) and rhs == 0:
                return lhs * int(expr.rhs.value)
            return None
        return 0 if lhs == 0 and rhs == 0 else None
    if isinstance(expr, Call):
        return 0 if not any(mentions(arg, var) for arg in expr.args) else None
    return None


def lane_stride(expr: Expr, var: str, lanes: int) -> int | None:
    """Like `stride`, for `lanes` consecutive values of `var` starting at a multiple of
    `lanes` (a work-item's vector of units): there `var / c` is the same in every lane and
    `var % c` steps by one when `lanes` divides `c`, as in the row and column of a
    flattened matrix."""
    if isinstance(expr, Binary) and expr.op in ("/", "%") and isinstance(expr.rhs, Const) \
            and expr.rhs.integer:
        inner = lane_stride(expr.lhs, var, lanes)
        if inner == 0:
            return 0
        divisor = int(expr.rhs.value)
        if isinstance(expr.lhs, Var) and expr.lhs.name == var and divisor % lanes == 0:
            return 0 if expr.op == "/" else 1
        return None
    if isinstance(expr, Binary) and expr.op in ("+", "-", "*"):
        lhs, rhs = lane_stride(expr.lhs, var, lanes), lane_stride(expr.rhs, var, lanes)
        if lhs is None or rhs is None:
            return None
        if expr.op == "*":
            if lhs and rhs:
                return None
            if lhs == 0 and rhs == 0:
                return 0
            # A lane-varying term times a constant (`var / c` is constant across lanes).
            constant = expr.rhs if lhs else expr.lhs
            return (lhs or rhs) * int(constant.value) if isinstance(constant, Const) else None
        return lhs + rhs if expr.op == "+" else lhs - rhs
    if isinstance(expr, Load | Call | Select):
        return 0 if not mentions(expr, var) else stride(expr, var)
    return stride(expr, var)


def affine(expr: Expr) -> tuple[dict[str, int], int] | None:
    """An integer expression as (coefficient per variable, constant), or None when it is
    not affine in its variables with constant coefficients (loads, calls, divisions)."""
    if isinstance(expr, Const):
        return ({}, int(expr.value)) if expr.integer else None
    if isinstance(expr, Var):
        return {expr.name: 1}, 0
    if isinstance(expr, Binary) and expr.op in ("+", "-", "*"):
        lhs, rhs = affine(expr.lhs), affine(expr.rhs)
        if lhs is None or rhs is None:
            return None
        if expr.op == "*":
            if lhs[0] and rhs[0]:
                return None
            (terms, scale), factor = (lhs, rhs[1]) if lhs[0] else (rhs, lhs[1])
            return {name: c * factor for name, c in terms.items()}, scale * factor
        sign = 1 if expr.op == "+" else -1
        terms = dict(lhs[0])
        for name, c in rhs[0].items():
            terms[name] = terms.get(name, 0) + sign * c
        return {n: c for n, c in terms.items() if c}, lhs[1] + sign * rhs[1]
    return None


def walk_stmts(stmts: tuple[Stmt, ...]):  # type: ignore[no-untyped-def]
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, If):
            yield from walk_stmts(stmt.then)
            yield from walk_stmts(stmt.otherwise)
        elif isinstance(stmt, (Loop, Phase)):
            yield from walk_stmts(stmt.body)


def verify_loops(program: LoopProgram) -> None:
    """Every buffer read or written is declared; every variable is defined before use."""
    declared = {buffer.ref for buffer in program.buffers}

    def check(stmts: tuple[Stmt, ...], scope: set[str]) -> None:
        scope = set(scope)
        for stmt in stmts:
            exprs: list[Expr] = []
            if isinstance(stmt, Let):
                exprs = [stmt.value]
            elif isinstance(stmt, Store):
                exprs = [stmt.index, stmt.value]
                if stmt.buffer not in declared:
                    raise InternalError("verify_loops",
                                        f"store to undeclared {stmt.buffer.ir_text}")
            elif isinstance(stmt, If):
                exprs = [stmt.condition]
            elif isinstance(stmt, Loop):
                exprs = [stmt.start, stmt.stop]
            for expr in exprs:
                bound = set(scope)
                for sub in walk_exprs(expr):
                    if isinstance(sub, Load) and sub.buffer not in declared:
                        raise InternalError("verify_loops",
                                            f"load of undeclared {sub.buffer.ir_text}")
                    if isinstance(sub, (Reduce,)):
                        bound.add(sub.var)
                    if isinstance(sub, Dot):
                        bound.update(segment.var for segment in sub.segments)
                for sub in walk_exprs(expr):
                    if isinstance(sub, Var) and sub.name not in bound and \
                            sub.name not in _FREE_VARIABLES:
                        raise InternalError("verify_loops", f"variable {sub.name} used before "
                                            "it is defined")
            if isinstance(stmt, Let):
                scope.add(stmt.name)
            elif isinstance(stmt, If):
                check(stmt.then, scope)
                check(stmt.otherwise, scope)
            elif isinstance(stmt, Loop):
                check(stmt.body, scope | {stmt.var})
            elif isinstance(stmt, Phase):
                check(stmt.body, scope)

    check(program.body, set())


# Scalars every kernel receives from the linearizer: the run's sizes.
_FREE_VARIABLES = {"num_nodes", "num_leaves", "num_batches", "num_leaf_batches", "zero_row",
                   "num_heads"}

"""The scalar expression of one element of an operator, for `lower_loops` (stage 2).

Each phase stores its outputs element by element: `element(op, index)` builds the
scalar expression of one element, sharing repeated work through `Let`s, reading earlier
phases' results from memory, and splitting a product's dot product at the boundaries of a
concatenated operand so that every segment reads one contiguous row.
"""

from __future__ import annotations

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.buffers import CHILDREN, NUM_CHILDREN, BufferRef, Role
from cortexlang.ir.operators import Element, Kind, Operator, operator_of
from cortexlang.ir.recursive import SOURCE_KINDS, Op, RecursiveProgram
from cortexlang.passes.loop_indices import SCALAR, Index, flat_size, iadd, iconst, imul
from cortexlang.passes.place_operators import RulePlan


class Evaluator:
    """Builds the statements of one phase of one rule, for one node."""

    def __init__(self, program: RecursiveProgram, plan: RulePlan, phase: int,
                 node_lets: dict[str, L.Let], token_input: dict[str, str]) -> None:
        self.program = program
        self.plan = plan
        self.ops = plan.rule.op_map()
        self.phase = phase
        self.node_lets = node_lets          # shared by every phase of the node
        self.token_input = token_input
        self.lets: list[L.Stmt] = []
        self.memo: dict[tuple[str, tuple[str, ...]], L.Expr] = {}
        self.counter = 0

    # -- node-level values (computed once per node, before the phases) -------------------------
    def node_value(self, name: str, value: L.Expr, integer: bool = True) -> L.Var:
        if name not in self.node_lets:
            self.node_lets[name] = L.Let(name, value, integer)
        return L.Var(name)

    def child_id(self, position: int) -> L.Var:
        index = iadd(imul(L.Var("node"), iconst(self.program.max_children)), iconst(position))
        return self.node_value(f"child{position}", L.Load(CHILDREN, index))

    def token_row(self, op: Op) -> L.Var:
        input_name = op.attr("input")
        value: L.Expr = L.Call("imax", (L.Load(BufferRef(Role.TOKENS, input_name), L.Var("node")),
                                        iconst(0)))
        suffix = ""
        for modulus in op.attr("moduli", ()):
            value = L.Binary("%", value, iconst(modulus))
            suffix += f"_mod{modulus}"
        # `token_` keeps the input's name apart from the generated node values (child0,
        # count, node, ...): an input may be called anything.
        return self.node_value(f"token_{input_name}{suffix}", value)

    # -- elements ------------------------------------------------------------------------------
    def let(self, value: L.Expr) -> L.Expr:
        if isinstance(value, (L.Const, L.Var)):
            return value
        name = f"v{self.counter}"
        self.counter += 1
        self.lets.append(L.Let(name, value))
        return L.Var(name)

    def element(self, name: str, index: Index, inline: bool = False) -> L.Expr:
        """The expression of element `index` of operator `name`.

        `inline` is set inside a dot product's loop: no `Let` may be emitted there, and
        every operand is addressable by construction."""
        op = self.ops[name]
        buffer = self.plan.buffers.get(name)
        if buffer is not None and op.kind not in SOURCE_KINDS and \
                self.plan.phase[name] < self.phase:
            row = L.Var("node")
            offset = imul(row, iconst(flat_size(op.shape)))
            return L.Load(buffer, iadd(offset, index.flat(op.shape)))
        key = (name, index.key())
        if key in self.memo:
            return self.memo[key]
        value = self._compute(op, index, inline)
        if not inline and not isinstance(value, (L.Load,)):
            value = self.let(value)
        if not inline:
            self.memo[key] = value
        return value

    def _compute(self, op: Op, index: Index, inline: bool) -> L.Expr:
        kind = op.kind
        if kind == "const":
            return L.Const(float(op.attr("value")))
        if kind == "param":
            return L.Load(BufferRef(Role.WEIGHT, op.attr("param")), index.flat(op.shape))
        if kind == "uniform":
            return L.Load(BufferRef(Role.UNIFORM, op.attr("name")), index.flat(op.shape))
        if kind == "lookup":
            row = imul(self.token_row(op), iconst(flat_size(op.shape)))
            return L.Load(BufferRef(Role.WEIGHT, op.attr("param")),
                          iadd(row, index.flat(op.shape)))
        if kind == "table":
            row = imul(self.token_row(op), iconst(flat_size(op.shape)))
            return L.Load(BufferRef(Role.TABLE, op.attr("name")), iadd(row, index.flat(op.shape)))
        if kind == "input":
            row = imul(L.Var("node"), iconst(flat_size(op.shape)))
            return L.Load(BufferRef(Role.INPUT, op.attr("input")), iadd(row, index.flat(op.shape)))
        if kind == "child_state":
            child = self.child_id(op.attr("child"))
            row = imul(child, iconst(flat_size(op.shape)))
            return L.Load(BufferRef(Role.STATE, op.attr("state")), iadd(row, index.flat(op.shape)))
        if kind == "child_exists":
            child = self.child_id(op.attr("child"))
            return L.Select(L.Binary("!=", child, L.Var("zero_row")), L.Const(1.0), L.Const(0.0))
        if kind == "child_is_leaf":
            child = self.child_id(op.attr("child"))
            return L.Select(L.Binary("<", child, L.Var("num_leaves")), L.Const(1.0),
                            L.Const(0.0))
        if kind == "num_children":
            return self.node_value("count", L.Call("float", (L.Load(NUM_CHILDREN,
                                                                    L.Var("node")),)), False)
        if kind == "own_state":
            row = imul(L.Var("node"), iconst(flat_size(op.shape)))
            return L.Load(BufferRef(Role.STATE, op.attr("state")), iadd(row, index.flat(op.shape)))
        operator = operator_of(op)
        if operator is not None and operator.kind is Kind.VECTOR:
            return self._softmax(op, index, inline)
        if operator is not None and operator.element is not None:
            operands = tuple(self._operand(arg, index, inline) for arg in op.args)
            return element(operator, operands)
        if kind == "select":
            condition = self.element(op.args[0], SCALAR, inline)
            then = self._operand(op.args[1], index, inline)
            otherwise = self._operand(op.args[2], index, inline)
            return L.Select(L.Binary("!=", condition, L.Const(0.0)), then, otherwise)
        if kind == "slice":
            return self.element(op.args[0], index.shifted(op.attr("start")), inline)
        if kind == "concat":
            return self._concat(op, index, inline)
        if kind == "matmul":
            if inline:
                raise InternalError("lower_loops", f"product {op.name} inside a dot product")
            return self._matmul(op, index)
        raise InternalError("lower_loops", f"unhandled operator kind {kind}")

    def _operand(self, name: str, index: Index, inline: bool) -> L.Expr:
        """An elementwise operand: scalars broadcast."""
        if not self.ops[name].shape:
            return self.element(name, SCALAR, inline)
        return self.element(name, index, inline)

    def _concat(self, op: Op, index: Index, inline: bool) -> L.Expr:
        offset = 0
        pieces: list[tuple[int, int, str]] = []
        for part in op.args:
            rows = self.ops[part].shape[0]
            pieces.append((offset, offset + rows, part))
            offset += rows
        overlapping = [p for p in pieces if p[0] < index.high and p[1] > index.low]
        if len(overlapping) == 1:
            start, _, part = overlapping[0]
            return self.element(part, index.shifted(-start), inline)
        # The row is only known at run time: choose the part with a conditional.
        result: L.Expr | None = None
        for start, stop, part in reversed(overlapping):
            value = self.element(part, index.shifted(-start), inline)
            if result is None:
                result = value
            else:
                result = L.Select(L.Binary("<", index.dims[0], iconst(stop)), value, result)
        assert result is not None
        return result

    def _segments(self, name: str) -> list[tuple[int, str]]:
        """A product operand split at its concatenation boundaries: (row offset, part)."""
        op = self.ops[name]
        if op.kind == "concat" and self.plan.buffers.get(name) is None:
            segments: list[tuple[int, str]] = []
            offset = 0
            for part in op.args:
                segments.extend((offset + inner, piece) for inner, piece in self._segments(part))
                offset += self.ops[part].shape[0]
            return segments
        return [(0, name)]

    def _matmul(self, op: Op, index: Index) -> L.Expr:
        lhs_name, rhs_name = op.args
        lhs_op = self.ops[lhs_name]
        segments: list[L.Segment] = []
        for offset, part in self._segments(rhs_name):
            rows = self.ops[part].shape[0]
            k = L.Var("k")
            column = iadd(k, iconst(offset))
            if lhs_op.kind == "param" and self.plan.buffers.get(lhs_name) is None:
                # Weights are stored transposed: at each k, consecutive output rows (units)
                # sit at consecutive addresses, so neighbouring units load them together.
                lhs: L.Expr = L.Load(BufferRef(Role.WEIGHT_T, lhs_op.attr("param")),
                             iadd(imul(column, iconst(lhs_op.shape[0])), index.dims[0]))
            else:
                lhs_index = Index((index.dims[0], column), index.low, index.high)
                lhs = self.element(lhs_name, lhs_index, True)
            if len(op.shape) == 1:
                rhs_index = Index((k,), 0, rows)
            else:
                rhs_index = Index((k, index.dims[1]), 0, rows)
            segments.append(L.Segment("k", 0, rows, lhs, self.element(part, rhs_index, True)))
        return L.Dot(tuple(segments))

    def _softmax(self, op: Op, index: Index, inline: bool) -> L.Expr:
        if inline:
            raise InternalError("lower_loops", f"softmax {op.name} inside a dot product")
        arg = op.args[0]
        length = op.shape[0]
        k_index = Index((L.Var("k"),), 0, length)
        key = (op.name, ("max",))
        if key not in self.memo:
            self.memo[key] = self.let(L.Reduce("max", "k", 0, length,
                                               self.element(arg, k_index, True)))
        largest = self.memo[key]
        key_sum = (op.name, ("sum",))
        if key_sum not in self.memo:
            body = L.Call("exp", (L.Binary("-", self.element(arg, k_index, True), largest),))
            self.memo[key_sum] = self.let(L.Reduce("sum", "k", 0, length, body))
        total = self.memo[key_sum]
        value = L.Call("exp", (L.Binary("-", self.element(arg, index), largest),))
        return L.Binary("/", value, total)


def element(operator: Operator, operands: tuple[L.Expr, ...]) -> L.Expr:
    """One element of an elementwise operator, written as the table says (`Element`)."""
    form, symbol = operator.element, operator.infix
    if form is Element.CALL:
        return L.Call(operator.name, operands)
    assert symbol is not None, f"{operator.name} is written infix but has no symbol"
    if form is Element.PREFIX:
        return L.Binary(symbol, L.Const(0.0), operands[0])
    value = L.Binary(symbol, operands[0], operands[1])
    if form is Element.TRUTH:
        return L.Select(value, L.Const(1.0), L.Const(0.0))
    return value

"""Lower the recursive program to the loop IR (stage 2).

Planning. An operator is *addressable* when any element of it can be read at any time: a
source (a parameter, a child's state, the node's token row), an operator stored to memory
(*materialised*), or an elementwise combination of addressable operators (evaluated on the
fly). The operands of a matrix product and of a softmax must be addressable, since every
element of the result reads every element of the operand; an operand that is not gets
materialised (a concatenation materialises its parts instead). Each computed operator gets a
phase: the earliest one in which its operands are ready. With operator fusion off every
operator is materialised in a phase of its own, one kernel per operator, as a framework would
run it.

Evaluation. Each phase stores its outputs element by element: `element(op, index)` builds the
scalar expression of one element, sharing repeated work through `Let`s, reading earlier
phases' results from memory, and splitting a product's dot product at the boundaries of a
concatenated operand so that every segment reads one contiguous row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.recursive import SOURCE_KINDS, Op, RecursiveProgram, RuleProgram

ELEMENTWISE_KINDS = ("binary", "select", "slice", "concat")


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


# ---------------------------------------------------------------------------------------------
# Integer index arithmetic that keeps printed indices tidy


def iconst(value: int) -> L.Expr:
    return L.Const(float(value), integer=True)


def iadd(lhs: L.Expr, rhs: L.Expr) -> L.Expr:
    if isinstance(rhs, L.Const) and rhs.value == 0:
        return lhs
    if isinstance(lhs, L.Const) and lhs.value == 0:
        return rhs
    if isinstance(lhs, L.Const) and isinstance(rhs, L.Const):
        return iconst(int(lhs.value + rhs.value))
    if isinstance(lhs, L.Binary) and lhs.op == "+" and isinstance(lhs.rhs, L.Const) \
            and isinstance(rhs, L.Const):
        return iadd(lhs.lhs, iconst(int(lhs.rhs.value + rhs.value)))
    return L.Binary("+", lhs, rhs)


def imul(lhs: L.Expr, rhs: L.Expr) -> L.Expr:
    if isinstance(rhs, L.Const) and rhs.value == 1:
        return lhs
    if isinstance(lhs, L.Const) and lhs.value == 1:
        return rhs
    if (isinstance(rhs, L.Const) and rhs.value == 0) or \
            (isinstance(lhs, L.Const) and lhs.value == 0):
        return iconst(0)
    if isinstance(lhs, L.Const) and isinstance(rhs, L.Const):
        return iconst(int(lhs.value * rhs.value))
    return L.Binary("*", lhs, rhs)


@dataclass(frozen=True)
class Index:
    """The element being computed: one expression per dimension, and the static range
    [low, high) the row index can take (used to resolve concatenations at compile time)."""

    dims: tuple[L.Expr, ...]
    low: int
    high: int

    def key(self) -> tuple[str, ...]:
        return tuple(L.format_expr(dim) for dim in self.dims)

    def shifted(self, offset: int) -> Index:
        return Index((iadd(self.dims[0], iconst(offset)),) + self.dims[1:], self.low + offset,
                     self.high + offset)

    def flat(self, shape: tuple[int, ...]) -> L.Expr:
        if not shape:
            return iconst(0)
        if len(shape) == 1:
            return self.dims[0]
        return iadd(imul(self.dims[0], iconst(shape[1])), self.dims[1])


SCALAR = Index((), 0, 1)


# ---------------------------------------------------------------------------------------------
# Planning


@dataclass
class RulePlan:
    """Where each operator of a rule lives: its phase, and its buffer if materialised."""

    rule: RuleProgram
    phase: dict[str, int] = field(default_factory=dict)
    buffers: dict[str, str] = field(default_factory=dict)   # op -> buffer holding it
    stores: dict[str, list[str]] = field(default_factory=dict)  # op -> buffers it is stored to

    @property
    def num_phases(self) -> int:
        return 1 + max((self.phase[op] for op in self.stores), default=0)


def plan_rule(rule: RuleProgram, fuse: bool, result_buffer: dict[str, str]) -> RulePlan:
    """Choose materialised operators and phases (see the module docstring)."""
    ops = rule.op_map()
    plan = RulePlan(rule)
    computed = [op for op in rule.ops if op.kind not in SOURCE_KINDS]
    materialised: set[str] = set()

    results = {name for _, name in rule.results}

    def addressable(name: str) -> bool:
        """Readable at any index without recomputing anything costly: a source, a stored
        operator, or additions, products, selections, slices and concatenations of those.
        (A state the rule computes is stored anyway, so it is read back, not recomputed.)"""
        op = ops[name]
        if op.kind in SOURCE_KINDS or name in materialised:
            return True
        if name in results:
            return False
        if op.kind in ELEMENTWISE_KINDS or (op.kind == "unary" and op.attr("op") == "neg"):
            return all(addressable(arg) for arg in op.args)
        return False

    def ensure_addressable(name: str) -> None:
        if addressable(name):
            return
        if ops[name].kind == "concat":
            for part in ops[name].args:
                ensure_addressable(part)
        else:
            materialised.add(name)

    if fuse:
        for op in computed:
            if op.kind == "matmul" or (op.kind == "unary" and op.attr("op") == "softmax"):
                for arg in op.args:
                    ensure_addressable(arg)
    else:
        materialised.update(op.name for op in computed)

    def ready(name: str) -> int:
        """The first phase in which every element of `name` can be read."""
        op = ops[name]
        if op.kind in SOURCE_KINDS:
            return 0
        if name in materialised:
            return plan.phase[name] + 1
        return max((ready(arg) for arg in op.args), default=0)

    for position, op in enumerate(computed):
        if not fuse:
            plan.phase[op.name] = position
            continue
        cross = op.kind == "matmul" or (op.kind == "unary" and op.attr("op") == "softmax")
        phase = 0
        for arg in op.args:
            if ops[arg].kind in SOURCE_KINDS:
                continue
            phase = max(phase, ready(arg) if cross else plan.phase[arg])
        plan.phase[op.name] = phase
    for op in rule.ops:
        if op.kind in SOURCE_KINDS:
            plan.phase[op.name] = 0
    for state, name in rule.results:
        plan.stores.setdefault(name, []).append(result_buffer[state])
        plan.buffers.setdefault(name, result_buffer[state])
    for name in (op.name for op in rule.ops if op.name in materialised):  # source order
        if name not in plan.buffers:
            buffer = f"temp:{rule.kind}_{name}"
            plan.buffers[name] = buffer
            plan.stores[name] = [buffer]
    return plan


# ---------------------------------------------------------------------------------------------
# Evaluation


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
        return self.node_value(f"child{position}", L.Load("children", index))

    def token_row(self, op: Op) -> L.Var:
        input_name = op.attr("input")
        value: L.Expr = L.Call("imax", (L.Load(f"words:{input_name}", L.Var("node")),
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
            return L.Load(buffer, iadd(imul(row, iconst(_size(op.shape))), index.flat(op.shape)))
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
            return L.Load(f"param:{op.attr('param')}", index.flat(op.shape))
        if kind == "uniform":
            return L.Load(f"uniform:{op.attr('name')}", index.flat(op.shape))
        if kind == "lookup":
            row = imul(self.token_row(op), iconst(_size(op.shape)))
            return L.Load(f"param:{op.attr('param')}", iadd(row, index.flat(op.shape)))
        if kind == "table":
            row = imul(self.token_row(op), iconst(_size(op.shape)))
            return L.Load(f"uniform:{op.attr('name')}", iadd(row, index.flat(op.shape)))
        if kind == "input":
            row = imul(L.Var("node"), iconst(_size(op.shape)))
            return L.Load(f"input:{op.attr('input')}", iadd(row, index.flat(op.shape)))
        if kind == "child_state":
            child = self.child_id(op.attr("child"))
            row = imul(child, iconst(_size(op.shape)))
            return L.Load(f"state:{op.attr('state')}", iadd(row, index.flat(op.shape)))
        if kind == "child_exists":
            child = self.child_id(op.attr("child"))
            return L.Select(L.Binary("!=", child, L.Var("zero_row")), L.Const(1.0), L.Const(0.0))
        if kind == "child_is_leaf":
            child = self.child_id(op.attr("child"))
            return L.Select(L.Binary("<", child, L.Var("num_leaves")), L.Const(1.0),
                            L.Const(0.0))
        if kind == "num_children":
            return self.node_value("count", L.Call("float", (L.Load("num_children",
                                                                    L.Var("node")),)), False)
        if kind == "own_state":
            row = imul(L.Var("node"), iconst(_size(op.shape)))
            return L.Load(f"state:{op.attr('state')}", iadd(row, index.flat(op.shape)))
        if kind == "unary":
            if op.attr("op") == "softmax":
                return self._softmax(op, index, inline)
            return _unary(op.attr("op"), self.element(op.args[0], index, inline))
        if kind == "binary":
            lhs = self._operand(op.args[0], index, inline)
            rhs = self._operand(op.args[1], index, inline)
            return _binary(op.attr("op"), lhs, rhs)
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
                lhs: L.Expr = L.Load(f"param_t:{lhs_op.attr('param')}",
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


def _unary(name: str, arg: L.Expr) -> L.Expr:
    if name == "neg":
        return L.Binary("-", L.Const(0.0), arg)
    return L.Call(name, (arg,))


_COMPARISONS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def _binary(name: str, lhs: L.Expr, rhs: L.Expr) -> L.Expr:
    if name in ("add", "sub", "mul", "div"):
        return L.Binary({"add": "+", "sub": "-", "mul": "*", "div": "/"}[name], lhs, rhs)
    if name == "max":
        return L.Call("max", (lhs, rhs))
    return L.Select(L.Binary(_COMPARISONS[name], lhs, rhs), L.Const(1.0), L.Const(0.0))


# ---------------------------------------------------------------------------------------------
# The loop program


def _phase_body(program: RecursiveProgram, plan: RulePlan, phase: int,
                node_lets: dict[str, L.Let], token_input: dict[str, str]) -> tuple[
                    tuple[L.Stmt, ...], tuple[str, ...]]:
    """The statements of one phase: one parallel loop over units per output shape."""
    outputs = [name for name in plan.stores if plan.phase[name] == phase]
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name in outputs:
        by_shape.setdefault(plan.rule.op_map()[name].shape, []).append(name)
    body: list[L.Stmt] = []
    stored: list[str] = []
    for shape, names in sorted(by_shape.items(), key=lambda item: (-_size(item[0]), item[0])):
        evaluator = Evaluator(program, plan, phase, node_lets, token_input)
        unit = L.Var("j")
        if len(shape) == 2:
            index = Index((L.Binary("/", unit, iconst(shape[1])),
                           L.Binary("%", unit, iconst(shape[1]))), 0, shape[0])
        elif len(shape) == 1:
            index = Index((unit,), 0, shape[0])
        else:
            index = SCALAR
        stores: list[L.Stmt] = []
        for name in names:
            value = evaluator.element(name, index)
            span = plan.rule.op_map()[name].span
            note = f"{name}, line {span.line}" if span is not None else name
            for buffer in plan.stores[name]:
                row = imul(L.Var("node"), iconst(_size(shape)))
                stores.append(L.Store(buffer, iadd(row, index.flat(shape)), value, note))
                stored.append(buffer)
        body.append(L.Loop("j", iconst(0), iconst(_size(shape)), "units",
                           tuple(evaluator.lets) + tuple(stores)))
    return tuple(body), tuple(stored)


def _rule_phases(program: RecursiveProgram, plan: RulePlan, label: str,
                 token_input: dict[str, str]) -> tuple[dict[str, L.Let], list[L.Phase]]:
    node_lets: dict[str, L.Let] = {}
    phases: list[L.Phase] = []
    for phase in range(plan.num_phases):
        body, stored = _phase_body(program, plan, phase, node_lets, token_input)
        spans = [plan.rule.op_map()[name].span for name in plan.stores
                 if plan.phase[name] == phase]
        span = next((span for span in spans if span is not None), None)
        if body:
            phases.append(L.Phase(label, phase, body, stored, span))
    return node_lets, phases


def lower_loops(program: RecursiveProgram, fuse_operators: bool = True) -> L.LoopProgram:
    """Stage 2: the loop program of a recursive program."""
    state_buffer = {state.name: f"state:{state.name}" for state in program.states}
    token_input = {item.name: item.name for item in program.inputs if item.kind == "token"}
    batch = L.Var("b")
    node_range = (L.Load("batch_start", batch),
                  L.Binary("+", L.Load("batch_start", batch), L.Load("batch_len", batch)))
    plans = {rule.kind: plan_rule(rule, fuse_operators, state_buffer)
             for rule in (program.leaf, program.internal)}
    body: list[L.Stmt] = []
    shared = not program.specialized and program.leaf.ops == program.internal.ops
    if program.specialized or shared:
        for kind, start, stop in (("leaf", iconst(0), L.Var("num_leaf_batches")),
                                  ("internal", L.Var("num_leaf_batches"), L.Var("num_batches"))):
            if shared and kind == "leaf":
                continue
            lets, phases = _rule_phases(program, plans[kind], kind, token_input)
            if shared:
                start = iconst(0)
            node_loop = L.Loop("node", node_range[0], node_range[1], "nodes",
                               tuple(lets.values()) + tuple(phases))
            body.append(L.Loop("b", start, stop, "batches", (node_loop,)))
    else:
        leaf_lets, leaf_phases = _rule_phases(program, plans["leaf"], "leaf", token_input)
        internal_lets, internal_phases = _rule_phases(program, plans["internal"], "internal",
                                                      token_input)
        is_leaf = L.Binary("<", L.Var("node"), L.Var("num_leaves"))
        merged: list[L.Stmt] = []
        for phase in range(max(len(leaf_phases), len(internal_phases))):
            then = (leaf_phases[phase],) if phase < len(leaf_phases) else ()
            otherwise = (internal_phases[phase],) if phase < len(internal_phases) else ()
            merged.append(L.Phase("node", phase, (L.If(is_leaf, then, otherwise),),
                                  tuple(s for p in then + otherwise for s in p.stores)))
        merged_lets = tuple({**leaf_lets, **internal_lets}.values())
        node_loop = L.Loop("node", node_range[0], node_range[1], "nodes",
                           merged_lets + tuple(merged))
        body.append(L.Loop("b", iconst(0), L.Var("num_batches"), "batches", (node_loop,)))
    if program.heads is not None:
        head_buffer = {name: f"output:{name}" for name, _ in program.heads.results}
        head_plan = plan_rule(program.heads, fuse_operators, head_buffer)
        lets, phases = _rule_phases(program, head_plan, "heads", token_input)
        locate = L.Let("node", L.Load("head_nodes", L.Var("i")), True)
        # Heads store by head position, not by node id.
        phases = [_rows_by_head(phase, head_buffer.values()) for phase in phases]
        body.append(L.Loop("i", iconst(0), L.Var("num_heads"), "nodes",
                           (locate,) + tuple(lets.values()) + tuple(phases)))
        buffers = _rule_buffers(head_plan, "heads")
        head_ops = program.heads.op_map()
        buffers += tuple(L.Buffer(head_buffer[output], "output", "heads",
                                  _size(head_ops[name].shape))
                         for output, name in program.heads.results)
        buffers += (L.Buffer("head_nodes", "index", "heads", 1, integer=True),)
    else:
        buffers = ()
    buffers = _buffers(program, plans, fuse_operators, tuple(body)) + buffers
    return L.LoopProgram(program.name, _dedupe(buffers), tuple(body), 1, program.notes)


def _rows_by_head(phase: L.Phase, output_buffers) -> L.Phase:  # type: ignore[no-untyped-def]
    outputs = set(output_buffers)

    def rewrite(stmt: L.Stmt) -> L.Stmt:
        if isinstance(stmt, L.Store) and stmt.buffer in outputs:
            index = stmt.index
            assert isinstance(index, L.Binary)
            return L.Store(stmt.buffer, _replace_var(index, "node", "i"), stmt.value, stmt.note)
        if isinstance(stmt, L.Loop):
            return L.Loop(stmt.var, stmt.start, stmt.stop, stmt.kind,
                          tuple(rewrite(s) for s in stmt.body))
        return stmt

    return L.Phase(phase.rule, phase.index, tuple(rewrite(s) for s in phase.body), phase.stores)


def _replace_var(expr: L.Expr, old: str, new: str) -> L.Expr:
    if isinstance(expr, L.Var):
        return L.Var(new) if expr.name == old else expr
    if isinstance(expr, L.Binary):
        return L.Binary(expr.op, _replace_var(expr.lhs, old, new),
                        _replace_var(expr.rhs, old, new))
    return expr


def _rule_buffers(plan: RulePlan, kind: str) -> tuple[L.Buffer, ...]:
    ops = plan.rule.op_map()
    return tuple(L.Buffer(buffer, "temp", "nodes", _size(ops[name].shape))
                 for name, buffer in plan.buffers.items() if buffer.startswith("temp:"))


def _loaded(body: tuple[L.Stmt, ...]) -> set[str]:
    """Every buffer the statements load from."""
    names: set[str] = set()
    for stmt in L.walk_stmts(body):
        exprs = [stmt.value] if isinstance(stmt, L.Let) else \
            [stmt.index, stmt.value] if isinstance(stmt, L.Store) else []
        for expr in exprs:
            names.update(sub.buffer for sub in L.walk_exprs(expr) if isinstance(sub, L.Load))
    return names


def _buffers(program: RecursiveProgram, plans: dict[str, RulePlan],
             fuse: bool, body: tuple[L.Stmt, ...]) -> tuple[L.Buffer, ...]:
    buffers: list[L.Buffer] = []
    loaded = _loaded(body)
    for param in program.params:
        buffers.append(L.Buffer(f"param:{param.name}", "param", "param", _size(param.shape)))
        if f"param_t:{param.name}" in loaded:
            buffers.append(L.Buffer(f"param_t:{param.name}", "param_t", "param",
                                    _size(param.shape)))
    for op in program.uniforms:
        buffers.append(L.Buffer(f"uniform:{op.name}", "uniform", "one", _size(op.shape)))
    if program.table_rule is not None:
        for table_state, _ in program.table_rule.results:
            buffers.append(L.Buffer(f"uniform:leaf_{table_state}", "uniform", "vocab",
                                    _size(program.state_shape(table_state))))
    for state in program.states:
        buffers.append(L.Buffer(f"state:{state.name}", "state", "nodes", _size(state.shape)))
    for item in program.inputs:
        if item.kind == "token":
            buffers.append(L.Buffer(f"words:{item.name}", "index", "nodes", 1, integer=True))
        else:
            buffers.append(L.Buffer(f"input:{item.name}", "input", "nodes", _size(item.shape)))
    for name, size in (("children", program.max_children), ("num_children", 1)):
        buffers.append(L.Buffer(name, "index", "nodes", size, integer=True))
    buffers.append(L.Buffer("batch_start", "index", "batches", 1, integer=True))
    buffers.append(L.Buffer("batch_len", "index", "batches", 1, integer=True))
    for kind, plan in plans.items():
        buffers.extend(_rule_buffers(plan, kind))
    return tuple(buffers)


def _dedupe(buffers: tuple[L.Buffer, ...]) -> tuple[L.Buffer, ...]:
    seen: dict[str, L.Buffer] = {}
    for buffer in buffers:
        seen.setdefault(buffer.name, buffer)
    return tuple(seen.values())

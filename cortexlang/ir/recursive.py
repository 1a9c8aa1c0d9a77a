"""Stage 1, the recursive program: each rule as a flat list of node-indexed tensor operators.

Every operator (`Op`) computes one tensor per node from operands named by SSA name. Reading a
child's state (`child_state`) is a recursion edge. Reductions over children are unrolled to
`max_children` masked copies, so the rule is a plain dataflow graph the later stages can
schedule. `specialized` tells whether leaves and internal nodes run separate rules; when it is
False the loop IR keeps a per-node conditional between the two rules.

Operator kinds and their attributes:

    const        value                    every element equal to `value`
    param        param                    a whole parameter (weights)
    uniform      name                     a node-independent value computed once per weights
    lookup       param, input, modulus    the parameter row selected by the node's token
    input        input                    the node's vector input
    child_state  state, child             a child's final state (zeros if the child is missing)
    child_exists child                    1.0 if the node has child number `child`, else 0.0
    child_is_leaf child                   1.0 if child number `child` exists and is a leaf
    table        name, input              the row of a hoisted per-token table (see below)
    own_state    state                    the node's own final state (output heads only)
    num_children                          the node's number of children, as a float
    unary        op                       a unary operator of `ir/operators.py` (tanh, ...)
    binary       op                       a binary one there (add, ..., max, lt, ...: 0/1)
    matmul                                [m,k]@[k] or [m,k]@[k,p] (the table's matmul)
    concat                                along axis 0 (the table's concat)
    slice        start, stop              along axis 0
    select                                (condition scalar, then, otherwise)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cortexlang.errors import InternalError, Span
from cortexlang.ir.checked import InputInfo, OutputInfo, ParamInfo, Shape, StateInfo

SOURCE_KINDS = ("const", "param", "uniform", "lookup", "table", "input", "child_state",
                "child_exists", "child_is_leaf", "num_children", "own_state")
OP_KINDS = SOURCE_KINDS + ("unary", "binary", "matmul", "concat", "slice", "select")
NODE_INDEPENDENT_SOURCES = ("const", "param", "uniform")


@dataclass(frozen=True, slots=True)
class Op:
    """One operator: `name = kind[attrs](args)` producing a tensor of `shape` per node."""

    name: str
    kind: str
    args: tuple[str, ...]
    shape: Shape
    attrs: tuple[tuple[str, Any], ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)

    def attr(self, key: str, default: Any = None) -> Any:
        for name, value in self.attrs:
            if name == key:
                return value
        return default


@dataclass(frozen=True, slots=True)
class RuleProgram:
    """One rule: operators in dependence order, and which operator each state takes."""

    kind: str
    ops: tuple[Op, ...]
    results: tuple[tuple[str, str], ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    def op_map(self) -> dict[str, Op]:
        return {op.name: op for op in self.ops}

    def result(self, state: str) -> str:
        return dict(self.results)[state]


@dataclass(frozen=True, slots=True)
class Unroll:
    """Recursive unrolling (`unroll_recursion`): the schedule computes a node of odd height
    2k-1 whose only parent has height 2k in its parent's step, by the same work-item,
    immediately before the parent; every other node alone, in the step of its height rounded
    up to even. `depth` is the number of heights one step covers (2); `children` the child
    positions whose node may be computed so (every position of the structure)."""

    depth: int
    children: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RecursiveProgram:
    """The whole model as node-indexed operators plus the structure facts.

    uniforms: node-independent operators hoisted out of the rules (computed once per weights).
    table_rule, table_rows: when leaf states depend on nothing but the leaf's token, the
      original leaf rule, evaluated once per weights for each of the `table_rows` tokens into
      one table per state; the leaf rule then reads `table` operators.
    notes: what each pass did, for printers and pictures (pass name, one line).
    unroll: the unrolled schedule (`Unroll`), or None: one step per height.
    """

    name: str
    structure_kind: str
    max_children: int
    params: tuple[ParamInfo, ...]
    inputs: tuple[InputInfo, ...]
    states: tuple[StateInfo, ...]
    leaf: RuleProgram
    internal: RuleProgram
    outputs: tuple[OutputInfo, ...]
    specialized: bool
    leaf_explicit: bool
    heads: RuleProgram | None = None
    uniforms: tuple[Op, ...] = ()
    table_rule: RuleProgram | None = None
    table_rows: int = 0
    notes: tuple[tuple[str, str], ...] = ()
    unroll: Unroll | None = None

    def rules(self) -> tuple[RuleProgram, ...]:
        """The node rules (leaf, internal), then the output heads if any."""
        return (self.leaf, self.internal) + ((self.heads,) if self.heads is not None else ())

    def state_shape(self, name: str) -> Shape:
        return next(state.shape for state in self.states if state.name == name)

    def param_shape(self, name: str) -> Shape:
        return next(param.shape for param in self.params if param.name == name)

    def recursion_edges(self) -> tuple[tuple[str, int], ...]:
        """(state, child position) pairs read by the internal rule, in a stable order."""
        edges = {(op.attr("state"), op.attr("child")) for op in self.internal.ops
                 if op.kind == "child_state"}
        return tuple(sorted(edges))


def _format_attrs(op: Op) -> str:
    if not op.attrs:
        return ""
    parts = []
    for key, value in op.attrs:
        parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return "[" + ", ".join(parts) + "]"


def format_op(op: Op) -> str:
    shape = "x".join(str(d) for d in op.shape) or "scalar"
    args = ", ".join(op.args)
    line = f"  {op.name}: {shape} = {op.kind}{_format_attrs(op)}({args})"
    if op.span is not None:
        line = f"{line:<72} # line {op.span.line}"
    return line


def format_recursive(program: RecursiveProgram) -> str:
    """Deterministic text of the recursive program (the stage's printer)."""
    lines = [f"recursive program {program.name}",
             f"structure {program.structure_kind}, at most {program.max_children} children",
             f"leaves {'specialised' if program.specialized else 'share one conditional rule'}"]
    for param in program.params:
        lines.append(f"param {param.name}: {'x'.join(map(str, param.shape))}")
    for state in program.states:
        lines.append(f"state {state.name}: {'x'.join(map(str, state.shape))}")
    edges = ", ".join(f"{state} <- child {child}" for state, child in program.recursion_edges())
    lines.append(f"recursion edges: {edges or 'none'}")
    if program.uniforms:
        lines.append("uniform (computed once per weights):")
        lines.extend(format_op(op) for op in program.uniforms)
    if program.table_rule is not None:
        lines.append(f"leaf tables (computed once per weights, {program.table_rows} tokens):")
        lines.extend(format_op(op) for op in program.table_rule.ops)
        for state_name, result in program.table_rule.results:
            lines.append(f"  table leaf_{state_name} <- {result}")
    for rule in program.rules():
        lines.append(f"rule {rule.kind}(node):")
        lines.extend(format_op(op) for op in rule.ops)
        for state_name, result in rule.results:
            lines.append(f"  state {state_name} <- {result}")
    for output in program.outputs:
        lines.append(f"output {output.name}[{output.selector}]")
    if program.unroll is not None:
        positions = ", ".join(map(str, program.unroll.children))
        lines.append(f"unroll: {program.unroll.depth} heights per step; a node of odd height "
                     f"whose one parent is one higher, at child positions {positions}, is "
                     "computed in its parent's step, just before it")
    for step, note in program.notes:
        lines.append(f"note {step}: {note}")
    return "\n".join(lines) + "\n"


def verify_recursive(program: RecursiveProgram) -> None:
    """Check the stage's invariants; raise InternalError naming the broken one."""
    states = {state.name: state.shape for state in program.states}
    params = {param.name: param.shape for param in program.params}
    uniform_names = {op.name for op in program.uniforms}
    for rule in program.rules():
        seen: dict[str, Op] = {op.name: op for op in program.uniforms}
        node_rule = rule.kind in ("leaf", "internal")
        for op in rule.ops:
            where = f"rule {rule.kind}, {op.name}"
            if op.kind not in OP_KINDS:
                raise InternalError("verify_recursive", f"{where}: unknown kind {op.kind}")
            if op.name in seen and op.name not in uniform_names:
                raise InternalError("verify_recursive", f"{where}: defined twice")
            for arg in op.args:
                if arg not in seen:
                    raise InternalError("verify_recursive", f"{where}: operand {arg} undefined")
            if op.kind == "child_state":
                if op.attr("state") not in states:
                    raise InternalError("verify_recursive", f"{where}: unknown state")
                if not 0 <= op.attr("child") < program.max_children:
                    raise InternalError("verify_recursive", f"{where}: child outside structure")
                if rule.kind == "leaf" and program.specialized:
                    raise InternalError("verify_recursive", f"{where}: child read in leaf rule")
            if op.kind in ("param", "lookup") and op.attr("param") not in params:
                raise InternalError("verify_recursive", f"{where}: unknown parameter")
            if op.kind == "uniform" and op.attr("name") not in uniform_names:
                raise InternalError("verify_recursive", f"{where}: unknown uniform")
            seen[op.name] = op
        for state, result in rule.results:
            if result not in seen or (node_rule and state not in states):
                raise InternalError("verify_recursive", f"rule {rule.kind}: bad result {state}")
            if node_rule and seen[result].shape != states[state]:
                raise InternalError("verify_recursive",
                                    f"rule {rule.kind}: state {state} has the wrong shape")
        if node_rule and {state for state, _ in rule.results} != set(states):
            raise InternalError("verify_recursive", f"rule {rule.kind}: not every state set")
    _verify_unroll(program)


def _verify_unroll(program: RecursiveProgram) -> None:
    """An unrolled schedule covers two heights per step, at child positions of the
    structure, and never on a DAG (a child of two parents cannot run in both their steps)."""
    unroll = program.unroll
    if unroll is None:
        return
    if unroll.depth != 2:
        raise InternalError("verify_recursive", f"unroll depth {unroll.depth} (only 2 is "
                            "lowered)")
    if not unroll.children or len(set(unroll.children)) != len(unroll.children) or \
            any(not 0 <= child < program.max_children for child in unroll.children):
        raise InternalError("verify_recursive", f"unroll child positions {unroll.children} "
                            f"outside the structure's {program.max_children}")
    if program.structure_kind == "dag":
        raise InternalError("verify_recursive", "unroll on a DAG, whose nodes may have two "
                            "parents")

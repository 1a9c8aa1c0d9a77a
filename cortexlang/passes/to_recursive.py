"""Lower the checked program to the recursive program (stage 1).

Each rule's typed expressions become a flat list of operators in SSA form; identical
operators are shared (hash-consing), so `h[left(n)]` read three times is one recursion edge.
A reduction over children is unrolled into `max_children` copies, each masked by whether the
child exists (the mask is dropped where the body is zero for a missing child anyway).
Output heads become a third rule evaluated on the final states.
"""

from __future__ import annotations

from typing import Any

from cortexlang.errors import InternalError
from cortexlang.ir import checked as ir
from cortexlang.ir.operators import REDUCTIONS, Zero, comparison, operator_named, operator_of
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram


class RuleBuilder:
    """Builds one rule's operator list, sharing identical operators."""

    def __init__(self, kind: str, program: ir.CheckedProgram) -> None:
        self.kind = kind
        self.program = program
        self.ops: list[Op] = []
        self.by_key: dict[tuple[Any, ...], str] = {}
        self.env: dict[str, str] = {}
        self.counter = 0
        # Names the program gives (temporaries, states, outputs, parameters, inputs): a
        # generated operator name (t0, t1, ...) never takes one, whatever order they come in.
        self.reserved = {statement.target for rule in (program.leaf, program.internal)
                         for statement in rule.statements}
        self.reserved |= {item.name for group in (program.states, program.outputs,
                                                  program.params, program.inputs)
                          for item in group}

    def add(self, kind: str, args: tuple[str, ...], shape: ir.Shape,
            attrs: tuple[tuple[str, Any], ...] = (), span: Any = None,
            name: str | None = None) -> str:
        key = (kind, args, shape, attrs)
        if key in self.by_key:
            return self.by_key[key]
        if name is None or any(op.name == name for op in self.ops):
            name = f"t{self.counter}"
            self.counter += 1
            while name in self.reserved or any(op.name == name for op in self.ops):
                name = f"t{self.counter}"
                self.counter += 1
        self.ops.append(Op(name, kind, args, shape, attrs, span))
        self.by_key[key] = name
        return name

    def const(self, value: float, shape: ir.Shape = ()) -> str:
        return self.add("const", (), shape, (("value", float(value)),))

    def shape(self, name: str) -> ir.Shape:
        return next(op.shape for op in self.ops if op.name == name)

    def op(self, name: str) -> Op:
        return next(op for op in self.ops if op.name == name)

    # -- expressions ---------------------------------------------------------------------------
    def lower(self, expr: ir.TypedExpr, child_binding: int | None = None,
              name: str | None = None) -> str:
        span = expr.span
        if isinstance(expr, ir.Const):
            return self.add("const", (), expr.shape, (("value", float(expr.value)),), span, name)
        if isinstance(expr, ir.Param):
            return self.add("param", (), expr.shape, (("param", expr.name),), span, name)
        if isinstance(expr, ir.Lookup):
            input_name, moduli = _token_index(expr.index)
            return self.add("lookup", (), expr.shape, (("param", expr.param),
                            ("input", input_name), ("moduli", moduli)), span, name)
        if isinstance(expr, ir.NodeInput):
            return self.add("input", (), expr.shape, (("input", expr.name),), span, name)
        if isinstance(expr, ir.NumChildren):
            return self.add("num_children", (), (), (), span, name)
        if isinstance(expr, ir.State):
            if expr.child is None:
                if self.kind == "heads":
                    return self.add("own_state", (), expr.shape, (("state", expr.name),), span,
                                    name)
                return self.env[expr.name]
            position = self._position(expr.child, child_binding)
            return self.add("child_state", (), expr.shape,
                            (("state", expr.name), ("child", position)), span, name)
        if isinstance(expr, ir.Local):
            return self.env[expr.name]
        if isinstance(expr, ir.Unary):
            arg = self.lower(expr.arg, child_binding)
            return self.apply(expr.op, (arg,), expr.shape, span, name)
        if isinstance(expr, ir.Binary):
            lhs = self.lower(expr.lhs, child_binding)
            rhs = self.lower(expr.rhs, child_binding)
            return self.apply(expr.op, (lhs, rhs), expr.shape, span, name)
        if isinstance(expr, ir.MatMul):
            lhs = self.lower(expr.lhs, child_binding)
            rhs = self.lower(expr.rhs, child_binding)
            return self.apply("matmul", (lhs, rhs), expr.shape, span, name)
        if isinstance(expr, ir.Concat):
            parts = tuple(self.lower(part, child_binding) for part in expr.parts)
            return self.apply("concat", parts, expr.shape, span, name)
        if isinstance(expr, ir.Slice):
            arg = self.lower(expr.arg, child_binding)
            return self.add("slice", (arg,), expr.shape,
                            (("start", expr.start), ("stop", expr.stop)), span, name)
        if isinstance(expr, ir.Select):
            condition = self.condition(expr.condition, child_binding)
            then = self.lower(expr.then, child_binding)
            otherwise = self.lower(expr.otherwise, child_binding)
            return self.add("select", (condition, then, otherwise), expr.shape, (), span, name)
        if isinstance(expr, ir.ChildReduce):
            return self.reduce(expr, name)
        raise InternalError("to_recursive", f"unhandled expression {type(expr).__name__}")

    def apply(self, operator: str, args: tuple[str, ...], shape: ir.Shape, span: Any = None,
              name: str | None = None) -> str:
        """An application of the table's `operator`: unary and binary operators are the
        `op` attribute of their kind, the others are their own kind."""
        kind = operator_named(operator).kind.ir_kind
        attrs = (("op", operator),) if kind in ("unary", "binary") else ()
        return self.add(kind, args, shape, attrs, span, name)

    def _position(self, child: ir.ChildRef, binding: int | None) -> int:
        if isinstance(child, ir.ChildAt):
            return child.index
        if binding is None:
            raise InternalError("to_recursive", f"child variable {child.var} is unbound")
        return binding

    def condition(self, condition: ir.Condition, binding: int | None) -> str:
        if isinstance(condition, ir.IsLeaf):
            if condition.child is None:
                count = self.add("num_children", (), ())
                return self.apply(comparison("==").name, (count, self.const(0.0)), ())
            position = self._position(condition.child, binding)
            return self.add("child_is_leaf", (), (), (("child", position),))
        count = self.add("num_children", (), ())
        return self.apply(comparison(condition.op).name,
                          (count, self.const(float(condition.value))), ())

    def zero_preserving(self, name: str) -> bool:
        """True if the operator is zero whenever every child state it reads is zero."""
        op = self.op(name)
        if op.kind == "child_state":
            return True
        if op.kind == "const":
            return op.attr("value") == 0.0
        if op.kind == "slice":
            return self.zero_preserving(op.args[0])
        operator = operator_of(op)
        if operator is None or operator.zero is Zero.NEVER:
            return False
        zeros = (self.zero_preserving(arg) for arg in op.args)
        return any(zeros) if operator.zero is Zero.ANY else all(zeros)

    def reduce(self, expr: ir.ChildReduce, name: str | None) -> str:
        existing = {op.name for op in self.ops}
        terms: list[str] = []
        reduction = REDUCTIONS[expr.op]
        # A missing child adds the identity: zero by multiplying with the child's 0/1 mask
        # (not needed where the term is zero anyway), any other identity by selecting it.
        masked_by_product = reduction.identity == 0.0
        for position in range(self.program.structure.max_children):
            body = self.lower(expr.body, position)
            present = self.add("child_exists", (), (), (("child", position),))
            if not masked_by_product:
                identity = self.const(reduction.identity, expr.shape)
                body = self.add("select", (present, body, identity), expr.shape)
            elif not self.zero_preserving(body):
                body = self.apply("mul", (body, present), expr.shape)
            terms.append(body)
        total = terms[0]
        for term in terms[1:]:
            total = self.apply(reduction.combine, (total, term), expr.shape)
        count = self.add("num_children", (), ())
        if reduction.average:
            divisor = self.apply("max", (count, self.const(1.0)), ())
            total = self.apply("div", (total, divisor), expr.shape)
        if not masked_by_product:
            # Over no children every term is the identity: the result is zeros instead.
            has_children = self.apply(comparison(">").name, (count, self.const(0.0)), ())
            total = self.add("select", (has_children, total, self.const(0.0, expr.shape)),
                             expr.shape)
        # Name the reduction after its statement, unless an earlier expression computed the
        # same reduction (it is shared): that operator keeps its name, which others may use.
        if name is not None and total not in existing and \
                not any(op.name == name for op in self.ops):
            renamed = [Op(name, op.kind, op.args, op.shape, op.attrs, op.span)
                       if op.name == total else op for op in self.ops]
            self.ops = renamed
            self.by_key = {key: (name if value == total else value)
                           for key, value in self.by_key.items()}
            return name
        return total

    def finish(self, results: tuple[tuple[str, str], ...], span: Any) -> RuleProgram:
        return RuleProgram(self.kind, tuple(self.ops), results, span)


def _token_index(index: ir.IndexExpr) -> tuple[str, tuple[int, ...]]:
    moduli: list[int] = []
    while isinstance(index, ir.IndexMod):
        moduli.append(index.modulus)
        index = index.index
    return index.input, tuple(reversed(moduli))


def lower_rule(program: ir.CheckedProgram, rule: ir.CheckedRule, kind: str) -> RuleProgram:
    """One checked rule as operators; statement targets name their operators."""
    builder = RuleBuilder(kind, program)
    for statement in rule.statements:
        builder.env[statement.target] = builder.lower(statement.value, None, statement.target)
    results = tuple((state.name, builder.env[state.name]) for state in program.states)
    return builder.finish(results, rule.span)


def lower_heads(program: ir.CheckedProgram) -> RuleProgram | None:
    """Output heads (outputs with an expression) as a rule over final states, or None."""
    heads = [output for output in program.outputs
             if not (isinstance(output.value, ir.State) and output.value.child is None
                     and output.value.name == output.name)]
    if not heads:
        return None
    builder = RuleBuilder("heads", program)
    results = tuple((output.name, builder.lower(output.value, None, output.name))
                    for output in heads)
    return builder.finish(results, None)


def to_recursive(program: ir.CheckedProgram) -> RecursiveProgram:
    """Stage 1: the checked program as a recursive program with unspecialised leaves.

    Leaves run the source's leaf rule if it has one, else the internal rule (whose child reads
    are zeros at a leaf); `specialize_leaves` later splits them into separate code."""
    internal = lower_rule(program, program.internal, "internal")
    leaf = lower_rule(program, program.leaf, "leaf") if program.leaf_explicit else \
        RuleProgram("leaf", internal.ops, internal.results, internal.span)
    return RecursiveProgram(
        name=program.name, structure_kind=program.structure.kind,
        max_children=program.structure.max_children, params=program.params,
        inputs=program.inputs, states=program.states, leaf=leaf, internal=internal,
        outputs=program.outputs, specialized=False, leaf_explicit=program.leaf_explicit,
        heads=lower_heads(program))

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
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram

_CONDITION_OPS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
# Unary functions that map zero to zero: a masked child term built only from these is
# already zero for a missing child, so it needs no mask.
_ZERO_PRESERVING_UNARY = ("neg", "tanh", "relu")


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
            return self.add("unary", (arg,), expr.shape, (("op", expr.op),), span, name)
        if isinstance(expr, ir.Binary):
            lhs = self.lower(expr.lhs, child_binding)
            rhs = self.lower(expr.rhs, child_binding)
            return self.add("binary", (lhs, rhs), expr.shape, (("op", expr.op),), span, name)
        if isinstance(expr, ir.MatMul):
            lhs = self.lower(expr.lhs, child_binding)
            rhs = self.lower(expr.rhs, child_binding)
            return self.add("matmul", (lhs, rhs), expr.shape, (), span, name)
        if isinstance(expr, ir.Concat):
            parts = tuple(self.lower(part, child_binding) for part in expr.parts)
            return self.add("concat", parts, expr.shape, (), span, name)
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
                return self.add("binary", (count, self.const(0.0)), (), (("op", "eq"),))
            position = self._position(condition.child, binding)
            return self.add("child_is_leaf", (), (), (("child", position),))
        count = self.add("num_children", (), ())
        return self.add("binary", (count, self.const(float(condition.value))), (),
                        (("op", _CONDITION_OPS[condition.op]),))

    def zero_preserving(self, name: str) -> bool:
        """True if the operator is zero whenever every child state it reads is zero."""
        op = self.op(name)
        if op.kind == "child_state":
            return True
        if op.kind == "const":
            return op.attr("value") == 0.0
        if op.kind == "unary":
            return op.attr("op") in _ZERO_PRESERVING_UNARY and self.zero_preserving(op.args[0])
        if op.kind == "binary" and op.attr("op") == "mul":
            return any(self.zero_preserving(arg) for arg in op.args)
        if op.kind == "binary" and op.attr("op") in ("add", "sub"):
            return all(self.zero_preserving(arg) for arg in op.args)
        if op.kind == "matmul":
            return self.zero_preserving(op.args[1]) or self.zero_preserving(op.args[0])
        if op.kind in ("slice", "concat"):
            return all(self.zero_preserving(arg) for arg in op.args)
        return False

    def reduce(self, expr: ir.ChildReduce, name: str | None) -> str:
        terms: list[str] = []
        for position in range(self.program.structure.max_children):
            body = self.lower(expr.body, position)
            present = self.add("child_exists", (), (), (("child", position),))
            if expr.op == "max":
                lowest = self.const(float("-inf"), expr.shape)
                body = self.add("select", (present, body, lowest), expr.shape)
            elif not self.zero_preserving(body):
                body = self.add("binary", (body, present), expr.shape, (("op", "mul"),))
            terms.append(body)
        total = terms[0]
        combine = "max" if expr.op == "max" else "add"
        for term in terms[1:]:
            total = self.add("binary", (total, term), expr.shape, (("op", combine),))
        count = self.add("num_children", (), ())
        if expr.op == "mean":
            divisor = self.add("binary", (count, self.const(1.0)), (), (("op", "max"),))
            total = self.add("binary", (total, divisor), expr.shape, (("op", "div"),))
        if expr.op == "max":
            has_children = self.add("binary", (count, self.const(0.0)), (), (("op", "gt"),))
            total = self.add("select", (has_children, total, self.const(0.0, expr.shape)),
                             expr.shape)
        # Name the reduction after its statement, unless it is shared with an earlier
        # statement's (a repeated reduction): that operator keeps the first name.
        if name is not None and total not in self.reserved and \
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

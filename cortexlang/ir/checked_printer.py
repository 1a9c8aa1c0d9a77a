"""Print the checked program: declarations with resolved shapes, rules with typed expressions."""

from __future__ import annotations

from cortexlang.ir import checked as ir
from cortexlang.ir.operators import operator_named


def _shape(shape: ir.Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape else "scalar"


def _child(child: ir.ChildRef) -> str:
    return f"child {child.index}" if isinstance(child, ir.ChildAt) else child.var


def _index(index: ir.IndexExpr) -> str:
    if isinstance(index, ir.IndexMod):
        return f"{_index(index.index)} % {index.modulus}"
    return f"{index.input}(n)"


def _condition(condition: ir.Condition) -> str:
    if isinstance(condition, ir.IsLeaf):
        return "isleaf(n)" if condition.child is None else f"isleaf({_child(condition.child)})"
    return f"num_children(n) {condition.op} {condition.value}"


def format_typed(expr: ir.TypedExpr) -> str:
    """Compact text of a typed expression (shapes are shown at statement level)."""
    if isinstance(expr, ir.Const):
        if not expr.shape:
            return f"{expr.value:g}"
        return f"fill({expr.value:g}, {_shape(expr.shape)})"
    if isinstance(expr, (ir.Param, ir.Local)):
        return expr.name
    if isinstance(expr, ir.Lookup):
        return f"{expr.param}[{_index(expr.index)}]"
    if isinstance(expr, ir.NodeInput):
        return f"{expr.name}(n)"
    if isinstance(expr, ir.NumChildren):
        return "num_children(n)"
    if isinstance(expr, ir.State):
        return expr.name if expr.child is None else f"{expr.name}[{_child(expr.child)}]"
    if isinstance(expr, ir.Unary):
        return f"{expr.op}({format_typed(expr.arg)})"
    if isinstance(expr, ir.Binary):
        symbol = operator_named(expr.op).infix
        return f"({format_typed(expr.lhs)} {symbol} {format_typed(expr.rhs)})"
    if isinstance(expr, ir.MatMul):
        symbol = operator_named("matmul").infix
        return f"({format_typed(expr.lhs)} {symbol} {format_typed(expr.rhs)})"
    if isinstance(expr, ir.Concat):
        return "concat(" + ", ".join(format_typed(part) for part in expr.parts) + ")"
    if isinstance(expr, ir.Slice):
        return f"{format_typed(expr.arg)}[{expr.start}:{expr.stop}]"
    if isinstance(expr, ir.ChildReduce):
        return f"{expr.op}({format_typed(expr.body)} for {expr.var} in children(n))"
    if isinstance(expr, ir.Select):
        return (f"({format_typed(expr.then)} if {_condition(expr.condition)} else "
                f"{format_typed(expr.otherwise)})")
    raise AssertionError(f"unhandled typed expression {expr!r}")


def format_checked(program: ir.CheckedProgram) -> str:
    """Deterministic text of a checked program."""
    lines = [f"model {program.name}",
             "sizes " + ", ".join(f"{name} = {value}" for name, value in program.sizes),
             f"structure {program.structure.kind}, at most {program.structure.max_children} "
             "children"]
    for param in program.params:
        kind, args = param.init
        lines.append(f"param {param.name}: {_shape(param.shape)} ~ {kind}"
                     f"({', '.join(f'{a:g}' for a in args)})")
    for item in program.inputs:
        lines.append(f"input {item.name}: {item.kind} {_shape(item.shape)}")
    for state in program.states:
        lines.append(f"state {state.name}: {_shape(state.shape)}")
    rules = (program.leaf, program.internal) if program.leaf_explicit else (program.internal,)
    for rule in rules:
        label = rule.kind if program.leaf_explicit else "internal (also run by leaves)"
        lines.append(f"{label} {rule.node}:")
        for statement in rule.statements:
            lines.append(f"    {statement.target}: {_shape(statement.value.shape)} = "
                         f"{format_typed(statement.value)}")
    for output in program.outputs:
        lines.append(f"output {output.name}[{output.selector}]: {_shape(output.shape)} = "
                     f"{format_typed(output.value)}")
    return "\n".join(lines) + "\n"

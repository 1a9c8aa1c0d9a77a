"""Print a syntax tree back as canonical .cx source (parse(format(p)) == p)."""

from __future__ import annotations

import re

from cortexlang.frontend import ast
from cortexlang.ir.operators import infix_operator, precedences

# `3e5` lexes as one number, so a scaled size whose name looks like an exponent keeps a space.
_EXPONENT_LIKE = re.compile(r"[eE][0-9]")

# Binding strength of each operator; a child binding less tightly than its parent is
# parenthesised. The tensor operators' come from the operator table (`@` binds tighter than
# `*`, as in the grammar); `%` only ever picks a token row, binding as `*` does.
_PRECEDENCE = {"if": 0, **precedences(), "%": 2,
               "neg": infix_operator("-", 1).precedence or 0, "atom": 5}


def _precedence(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Ternary):
        return _PRECEDENCE["if"]
    if isinstance(expr, ast.Compare):
        return _PRECEDENCE["if"]
    if isinstance(expr, ast.BinOp):
        return _PRECEDENCE[expr.op]
    if isinstance(expr, ast.Neg):
        return _PRECEDENCE["neg"]
    return _PRECEDENCE["atom"]


def _wrap(expr: ast.Expr, minimum: int) -> str:
    text = format_expression(expr)
    return f"({text})" if _precedence(expr) < minimum else text


def _number(value: float, is_integer: bool) -> str:
    if is_integer:
        return str(int(value))
    text = repr(float(value))
    return text if ("." in text or "e" in text or "inf" in text or "nan" in text) else text + ".0"


def _condition(expr: ast.Expr) -> str:
    """A ternary's condition: a sum, or a comparison of two sums."""
    if isinstance(expr, ast.Compare):
        return format_expression(expr)
    return _wrap(expr, _PRECEDENCE["+"])


def format_expression(expr: ast.Expr | ast.SliceIndex) -> str:
    """The canonical text of one expression."""
    if isinstance(expr, ast.Number):
        return _number(expr.value, expr.is_integer)
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.Scaled):
        space = " " if _EXPONENT_LIKE.match(expr.name) else ""
        return f"{expr.factor}{space}{expr.name}"
    if isinstance(expr, ast.Call):
        return f"{expr.function}({', '.join(format_expression(a) for a in expr.args)})"
    if isinstance(expr, ast.Reduce):
        return (f"{expr.op}({format_expression(expr.body)} for {expr.var} in "
                f"{expr.iterator}({expr.node}))")
    if isinstance(expr, ast.SliceIndex):
        start = "" if expr.start is None else format_expression(expr.start)
        stop = "" if expr.stop is None else format_expression(expr.stop)
        return f"{start}:{stop}"
    if isinstance(expr, ast.Subscript):
        return f"{_wrap(expr.base, _PRECEDENCE['atom'])}[{format_expression(expr.index)}]"
    if isinstance(expr, ast.BinOp):
        level = _PRECEDENCE[expr.op]
        # Left-associative: the right operand needs parentheses at equal precedence.
        return f"{_wrap(expr.lhs, level)} {expr.op} {_wrap(expr.rhs, level + 1)}"
    if isinstance(expr, ast.Neg):
        return f"-{_wrap(expr.arg, _PRECEDENCE['neg'])}"
    if isinstance(expr, ast.Compare):
        return f"{_wrap(expr.lhs, 1)} {expr.op} {_wrap(expr.rhs, 1)}"
    if isinstance(expr, ast.Ternary):
        return (f"{_wrap(expr.then, 1)} if {_condition(expr.condition)} else "
                f"{format_expression(expr.otherwise)}")
    raise AssertionError(f"unhandled expression {expr!r}")


def _shape(dims: tuple[ast.Expr, ...]) -> str:
    return "[" + ", ".join(format_expression(d) for d in dims) + "]"


def format_program(program: ast.Program) -> str:
    """The canonical source text of a whole program."""
    lines = [f"model {program.name}"] if program.name else []
    if program.sizes:
        lines.append("sizes " + ", ".join(f"{s.name} = {format_expression(s.value)}"
                                          for s in program.sizes))
    for structure in program.structures:
        args = ", ".join(f"{name}={format_expression(value)}" for name, value in structure.args)
        lines.append(f"structure {structure.kind}" + (f"({args})" if args else ""))
    for param in program.params:
        init = f" ~ {format_expression(param.init)}" if param.init is not None else ""
        lines.append(f"param {param.name}{_shape(param.shape)}{init}")
    for item in program.inputs:
        if item.kind == "vector":
            lines.append(f"input {item.name}{_shape(item.shape)}")
        else:
            lines.append(f"input {item.name}: {item.kind}")
    for state in program.states:
        lines.append(f"state {state.name}{_shape(state.shape)}")
    for rule in program.rules:
        lines.append(f"{rule.kind} {rule.node}:")
        for statement in rule.statements:
            lines.append(f"    {', '.join(statement.targets)} = "
                         f"{format_expression(statement.value)}")
    for output in program.outputs:
        head = f" = {format_expression(output.value)}" if output.value is not None else ""
        lines.append(f"output {output.name}[{output.selector}]{head}")
    return "\n".join(lines) + "\n"

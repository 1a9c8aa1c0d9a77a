"""Size expressions: whole numbers over the declared sizes, for shapes, slice bounds, split
counts, moduli and child counts (`SizeEvaluator.size_value`)."""

from __future__ import annotations

from cortexlang.errors import Span
from cortexlang.frontend import ast
from cortexlang.frontend.scope import MAX_SIZE, TyperBase, span_of


class SizeEvaluator(TyperBase):
    """Evaluates size expressions against the sizes declared so far."""

    def size_value(self, expr: ast.Expr, what: str) -> int | None:
        """Evaluate an integer expression over sizes (shapes, slice bounds, split counts)."""
        value = self._size_value(expr, what)
        if value is not None and abs(value) > MAX_SIZE:
            self.error("E0302", f"{what} is too large", span_of(expr), f"{value}",
                       f"sizes and counts must stay below {MAX_SIZE + 1}")
            return None
        return value

    def _size_value(self, expr: ast.Expr, what: str) -> int | None:
        if isinstance(expr, ast.Number):
            if not expr.is_integer:
                self.error("E0302", f"{what} must be a whole number", expr.span,
                           "not an integer", "write a whole number or a size such as 2H")
                return None
            return int(expr.value)
        if isinstance(expr, ast.Scaled):
            if expr.name not in self.sizes:
                self._not_a_size(expr.name, expr.span, what)
                return None
            return expr.factor * self.sizes[expr.name]
        if isinstance(expr, ast.Name):
            if expr.name not in self.sizes:
                self._not_a_size(expr.name, expr.span, what)
                return None
            return self.sizes[expr.name]
        if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "/", "%"):
            lhs = self._size_value(expr.lhs, what)
            rhs = self._size_value(expr.rhs, what)
            if lhs is None or rhs is None:
                return None
            if expr.op in ("/", "%") and rhs == 0:
                self.error("E0302", f"{what} divides by zero", expr.span, "zero divisor")
                return None
            if expr.op == "/" and lhs % rhs:
                self.error("E0302", f"{what} is not a whole number", expr.span,
                           f"{lhs} / {rhs} leaves a remainder")
                return None
            if expr.op == "+":
                return lhs + rhs
            if expr.op == "-":
                return lhs - rhs
            if expr.op == "*":
                return lhs * rhs
            return lhs // rhs if expr.op == "/" else lhs % rhs
        if isinstance(expr, ast.Neg):
            inner = self._size_value(expr.arg, what)
            return None if inner is None else -inner
        self.error("E0302", f"{what} must be a constant size expression", span_of(expr),
                   "not a size", "use whole numbers, sizes, + - * /")
        return None

    def _not_a_size(self, name: str, span: Span | None, what: str) -> None:
        if name in self.broken:
            return
        if name in self.later_sizes:
            where = self.later_sizes[name]
            elsewhere = where is not None and span is not None and where.line != span.line
            self.error("E0201", f"size `{name}` is used before it is defined", span,
                       "defined later", "sizes are evaluated in order; define it first"
                       + (f" (it is at line {where.line})" if elsewhere and where else ""))
            return
        if name in self.params or name in self.states or name in self.inputs:
            self.error("E0302", f"{what} must be a size, not a tensor", span,
                       f"`{name}` is a tensor", "use a name declared with sizes")
        else:
            self.unknown_name(name, span, None)

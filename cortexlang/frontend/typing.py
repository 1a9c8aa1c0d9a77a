"""Expression typing: resolve names, compute shapes, and enforce the legality properties.

`ExpressionTyper.expression` turns one AST expression into a typed expression of
`cortexlang.ir.checked`, or returns None after recording diagnostics. It never stops at the
first problem: the checker reports every error it can find. It builds on `frontend.nodes`
(node selectors and conditions, where the properties below are enforced), `frontend.sizes`
and `frontend.scope`.

Legality, as the Cortex paper states it (and why each rule exists):

- P1: control flow may depend only on the structure. A conditional on a computed value (or an
  embedding row picked by a computed value) would make the node batches unknown before the
  model runs, so the linearizer could not plan them. Rejected with E0403.
- P2: all recursive calls come before any tensor work, i.e. data flows from children to
  parents. Reading `parent(n)` would need the parent's result first. Rejected with E0404.
- P3: the computations on a node's children are independent. Reading `sibling(n)` would chain
  siblings, so they could not run in one batch. Rejected with E0405.
- Child accesses must stay inside the declared structure: only `n`'s own children, only in the
  internal rule, and never past `max_children` (E0401, E0402, E0406).
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.errors import Span
from cortexlang.frontend import ast
from cortexlang.frontend.nodes import NodeResolver, leaf_branches
from cortexlang.frontend.printer import format_expression
from cortexlang.frontend.scope import (
    BUILTIN_FUNCTIONS,
    MAX_SIZE,
    NODE_FUNCTIONS,
    LaterAssignments,
    Scope,
    did_you_mean,
    format_shape,
    span_of,
    starts_after,
)
from cortexlang.ir import checked as ir
from cortexlang.ir.operators import REDUCTIONS, Kind, function_operator, infix_operator

# Re-exported for the checker, which declares names against the same tables.
__all__ = ["BUILTIN_FUNCTIONS", "MAX_SIZE", "ExpressionTyper", "LaterAssignments", "Scope",
           "did_you_mean", "format_shape"]

class ExpressionTyper(NodeResolver):
    """Types expressions against the declarations of one program."""

    def expression(self, expr: ast.Expr, scope: Scope) -> ir.TypedExpr | None:
        span = span_of(expr)
        if isinstance(expr, ast.Number):
            return ir.Const(expr.value, (), span)
        if isinstance(expr, ast.Scaled):
            value = self.size_value(expr, "a size")
            return None if value is None else ir.Const(float(value), (), span)
        if isinstance(expr, ast.Name):
            return self._name(expr, scope)
        if isinstance(expr, ast.Neg):
            arg = self.expression(expr.arg, scope)
            negation = infix_operator("-", 1)
            return None if arg is None else ir.Unary(negation.name, arg, arg.shape, span)
        if isinstance(expr, ast.BinOp):
            return self._binary(expr, scope)
        if isinstance(expr, ast.Call):
            return self._call(expr, scope)
        if isinstance(expr, ast.Reduce):
            return self._reduce(expr, scope)
        if isinstance(expr, ast.Subscript):
            return self._subscript(expr, scope)
        if isinstance(expr, ast.Ternary):
            condition = self.condition(expr.condition, scope)
            then_at_leaf, otherwise_at_leaf = leaf_branches(condition)
            then = self.expression(expr.then, replace(scope, at_leaf=then_at_leaf
                                                      or scope.at_leaf))
            otherwise = self.expression(expr.otherwise, replace(scope, at_leaf=otherwise_at_leaf
                                                                or scope.at_leaf))
            if condition is None or then is None or otherwise is None:
                return None
            shape = self._broadcast(then, otherwise, span, "the two branches", expr.then,
                                    expr.otherwise)
            return None if shape is None else ir.Select(condition, then, otherwise, shape, span)
        if isinstance(expr, ast.Compare):
            self.error("E0307", "a comparison is not a tensor", span, "used as a value",
                       "comparisons appear only in `a if num_children(n) == 2 else b`")
            return None
        raise AssertionError(f"unhandled expression {expr!r}")

    def _name(self, expr: ast.Name, scope: Scope) -> ir.TypedExpr | None:
        name, span = expr.name, expr.span
        if name in scope.poisoned:
            return None
        if name in scope.locals:
            return ir.Local(name, scope.locals[name], span)
        if name in self.states:
            if scope.rule == "output" or name in scope.assigned_states:
                return ir.State(name, None, self.states[name].shape, span)
            hint = (f"to read a child's state write {name}[left({scope.node})], or "
                    f"{name}[k] in sum(... for k in children({scope.node}))")
            where = scope.later.get(name)
            if where is not None and starts_after(where, span):
                hint = (f"`{name}` is assigned at line {where.line}: move that statement up; "
                        + hint)
            self.error("E0204", f"state `{name}` is read before this rule assigns it", span,
                       "not assigned yet", hint)
            return None
        if name in self.broken:
            return None
        if name in self.params:
            return ir.Param(name, self.params[name].shape, span)
        if name in self.sizes:
            return ir.Const(float(self.sizes[name]), (), span)
        if name in self.inputs:
            self.error("E0304", f"input `{name}` is read per node", span, "missing (n)",
                       f"write {name}({scope.node})")
            return None
        if name == scope.node or name == scope.child_var:
            self.error("E0307", f"`{name}` is a node, not a tensor", span, "a node",
                       f"read a state of it, e.g. h[{name}]")
            return None
        self.unknown_name(name, span, scope)
        return None

    def _broadcast(self, lhs: ir.TypedExpr, rhs: ir.TypedExpr, span: Span | None, what: str,
                   lhs_expr: ast.Expr, rhs_expr: ast.Expr) -> ir.Shape | None:
        if lhs.shape == rhs.shape or not rhs.shape:
            return lhs.shape
        if not lhs.shape:
            return rhs.shape
        self.error("E0301", f"shape mismatch between {what}", span,
                   f"{_describe(lhs_expr, lhs.shape)} but {_describe(rhs_expr, rhs.shape)}",
                   "elementwise operations need equal shapes (or a scalar)")
        return None

    def _binary(self, expr: ast.BinOp, scope: Scope) -> ir.TypedExpr | None:
        span = expr.span
        if expr.op == "%":
            self.error("E0304", "% is only for token indices", span, "not an index",
                       "write Emb[word(n) % 32] to pick one of 32 rows")
            return None
        lhs = self.expression(expr.lhs, scope)
        rhs = self.expression(expr.rhs, scope)
        if lhs is None or rhs is None:
            return None
        operator = infix_operator(expr.op)
        if operator.kind is Kind.PRODUCT:
            return self._matmul(lhs, rhs, expr)
        shape = self._broadcast(lhs, rhs, span, "the operands", expr.lhs, expr.rhs)
        if shape is None:
            return None
        if (isinstance(lhs, ir.Const) and isinstance(rhs, ir.Const)
                and not lhs.shape and not rhs.shape and operator.fold is not None):
            value = operator.fold((lhs.value, rhs.value), ())
            if value is not None:
                return ir.Const(value, (), span)
        return ir.Binary(operator.name, lhs, rhs, shape, span)

    def _matmul(self, lhs: ir.TypedExpr, rhs: ir.TypedExpr,
                expr: ast.BinOp) -> ir.TypedExpr | None:
        lhs_text = _describe(expr.lhs, lhs.shape)
        rhs_text = _describe(expr.rhs, rhs.shape)
        if len(lhs.shape) != 2 or len(rhs.shape) not in (1, 2):
            self.error("E0307", "@ needs a matrix on the left and a vector or matrix on the "
                       "right", expr.span, f"{lhs_text}, {rhs_text}",
                       "write W @ x with W of shape [rows, columns]")
            return None
        if lhs.shape[1] != rhs.shape[0]:
            self.error("E0301", "shape mismatch in matrix product", expr.span,
                       f"{lhs_text} but {rhs_text}",
                       f"the columns of the left side ({lhs.shape[1]}) must equal the rows of "
                       f"the right side ({rhs.shape[0]})")
            return None
        return ir.MatMul(lhs, rhs, (lhs.shape[0],) + rhs.shape[1:], expr.span)

    def _call(self, expr: ast.Call, scope: Scope) -> ir.TypedExpr | None:
        function, span = expr.function, expr.span
        if function in self.broken:
            return None
        if function in self.inputs:
            info = self.inputs[function]
            if info.kind == "token":
                self.error("E0304", f"`{function}(n)` is a token id, not a tensor", span,
                           "an index", f"look it up in an embedding: Emb[{function}(n)]")
                return None
            if not self.check_input_call(expr, scope):
                return None
            return ir.NodeInput(function, info.shape, span)
        operator = function_operator(function)
        if operator is not None and operator.kind is Kind.CONCAT:
            return self._concat(expr, scope)
        if operator is not None:
            if len(expr.args) != 1:
                self.error("E0302", f"{function} takes one argument", span,
                           f"{len(expr.args)} given", f"write {function}(x)")
                return None
            arg = self.expression(expr.args[0], scope)
            if arg is None:
                return None
            if operator.kind is Kind.VECTOR and len(arg.shape) != 1:
                self.error("E0307", f"{function} needs a vector", span, format_shape(arg.shape),
                           f"apply it to a vector, e.g. {function}(W @ h + b)")
                return None
            return ir.Unary(operator.name, arg, arg.shape, span)
        if function in ("zeros", "ones"):
            if not expr.args:
                self.error("E0302", f"{function} needs a shape", span, "no sizes",
                           f"write {function}(H) or {function}(H, H)")
                return None
            dims = [self.size_value(arg, f"a dimension of {function}") for arg in expr.args]
            for dim, dim_expr in zip(dims, expr.args, strict=True):
                if dim is not None and dim <= 0:
                    self.error("E0212", f"{function} has an empty dimension", span_of(dim_expr),
                               f"{dim}", "dimensions must be positive")
            if any(d is None or d <= 0 for d in dims):
                return None
            return ir.Const(0.0 if function == "zeros" else 1.0,
                            tuple(int(d) for d in dims if d is not None), span)
        if function == "num_children":
            if not self.num_children_call(expr, scope):
                return None
            return ir.NumChildren((), span)
        if function == "split":
            self.error("E0306", "split must be the whole right side of a statement", span,
                       "split inside an expression",
                       "write `a, b = split(x, 2)` and use a and b")
            return None
        if function == "isleaf":
            self.error("E0307", "isleaf(...) is a condition, not a tensor", span, "a condition",
                       f"use it to choose: `a if isleaf({scope.node}) else b`")
            return None
        if function in NODE_FUNCTIONS:
            before = len(self.diagnostics)
            self.child_ref(expr, scope)  # a P2/P3/structure problem is the one to report
            if len(self.diagnostics) == before:
                state = next(iter(self.states), "h")
                self.error("E0307", f"{function}(...) is a node, not a tensor", span, "a node",
                           f"read a state of it: {state}[{format_expression(expr)}]")
            return None
        if function in REDUCTIONS:
            self.error("E0406", f"{function} reduces over children", span,
                       "not a reduction",
                       f"write {function}(h[k] for k in children({scope.node}))")
            return None
        self.unknown_function(function, span, ())
        return None

    def _concat(self, expr: ast.Call, scope: Scope) -> ir.TypedExpr | None:
        parts = [self.expression(arg, scope) for arg in expr.args]
        if any(part is None for part in parts):
            return None
        typed = [part for part in parts if part is not None]
        if len(typed) < 2:
            self.error("E0302", "concat needs two or more tensors", expr.span,
                       f"{len(typed)} given", "write concat(a, b)")
            return None
        ranks = {len(part.shape) for part in typed}
        tails = {part.shape[1:] for part in typed}
        if 0 in ranks or len(ranks) != 1 or len(tails) != 1:
            shapes = ", ".join(format_shape(part.shape) for part in typed)
            self.error("E0301", "concat parts do not fit together", expr.span, shapes,
                       "concat joins vectors, or matrices with equal column counts")
            return None
        rows = sum(part.shape[0] for part in typed)
        return ir.Concat(tuple(typed), (rows,) + typed[0].shape[1:], expr.span)

    def _reduce(self, expr: ast.Reduce, scope: Scope) -> ir.TypedExpr | None:
        if expr.op not in REDUCTIONS:
            self.error("E0203", f"`{expr.op}` cannot reduce over children", expr.span,
                       "not a reduction", "use sum, mean or max")
            return None
        if expr.iterator != "children" or expr.node != scope.node:
            self.error("E0406", "a reduction runs over children(n) of the rule's node",
                       expr.span, "not the node's children",
                       f"write {expr.op}(... for k in children({scope.node}))")
            return None
        if scope.rule != "internal":
            code = "E0401" if scope.rule == "leaf" else "E0408"
            self.error(code, "a reduction over children needs the internal rule", expr.span,
                       "no children here", "move it to the internal rule" if code == "E0401"
                       else "compute it in the internal rule as a state")
            return None
        if scope.child_var is not None:
            self.error("E0406", "reductions over children cannot be nested", expr.span,
                       "nested reduction", "compute the inner sum as a temporary first")
            return None
        if expr.var == scope.node or self.is_known(expr.var, scope):
            self.error("E0202", f"the child variable `{expr.var}` hides another name",
                       expr.span, "name clash",
                       f"call it k: {expr.op}(... for k in children({scope.node}))")
            return None
        inner = replace(scope, child_var=expr.var)
        body = self.expression(expr.body, inner)
        if body is None:
            return None
        return ir.ChildReduce(expr.op, expr.var, body, body.shape, expr.span)

    def _subscript(self, expr: ast.Subscript, scope: Scope) -> ir.TypedExpr | None:
        base, index, span = expr.base, expr.index, expr.span
        if isinstance(index, ast.SliceIndex):
            arg = self.expression(base, scope)
            if arg is None:
                return None
            return self._slice(arg, index, span)
        if isinstance(base, ast.Name) and base.name in self.states:
            child = self.child_ref(index, scope)
            if child is None:
                return None
            shape = self.states[base.name].shape
            if child == "self":
                return self._name(ast.Name(base.name, base.span), scope)
            assert not isinstance(child, str)
            return ir.State(base.name, child, shape, span)
        if isinstance(base, ast.Name) and base.name in self.params:
            param = self.params[base.name]
            token = self.token_index(index, scope, base.name)
            if token is None:
                return None
            if len(param.shape) < 2:
                self.error("E0307", f"`{base.name}` is a vector; it has no rows to look up",
                           span, format_shape(param.shape), "declare it as a table [V, H]")
                return None
            return ir.Lookup(base.name, token, param.shape[1:], span)
        if isinstance(base, ast.Name) and base.name not in scope.locals:
            if base.name in self.inputs or base.name in self.sizes:
                self.error("E0304", f"`{base.name}` cannot be indexed", span)
            else:
                self.unknown_name(base.name, base.span, scope)
            return None
        self.error("E0304", "only states, parameters and slices can be indexed", span,
                   "not indexable", "slice a vector with x[0:H]")
        return None

    def _slice(self, arg: ir.TypedExpr, index: ast.SliceIndex,
               span: Span | None) -> ir.TypedExpr | None:
        if not arg.shape:
            self.error("E0307", "a scalar cannot be sliced", span)
            return None
        length = arg.shape[0]
        start = 0 if index.start is None else self.size_value(index.start, "a slice bound")
        stop = length if index.stop is None else self.size_value(index.stop, "a slice bound")
        if start is None or stop is None:
            return None
        if not 0 <= start < stop <= length:
            self.error("E0305", "slice out of range", span,
                       f"[{start}:{stop}] of a tensor with {length} rows",
                       f"bounds must satisfy 0 <= start < stop <= {length}")
            return None
        return ir.Slice(arg, start, stop, (stop - start,) + arg.shape[1:], span)


def _describe(expr: ast.Expr, shape: ir.Shape) -> str:
    if isinstance(expr, ast.Name):
        return f"{expr.name} is {format_shape(shape)}"
    return f"`{_short(expr)}` is {format_shape(shape)}"


def _short(expr: ast.Expr) -> str:
    """A compact rendering of an operand for messages."""
    text = format_expression(expr)
    return text if len(text) <= 32 else text[:29] + "..."


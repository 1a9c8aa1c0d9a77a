"""Expression typing: resolve names, compute shapes, and enforce the legality properties.

`ExpressionTyper.expression` turns one AST expression into a typed expression of
`cortexlang.ir.checked`, or returns None after recording diagnostics. It never stops at the
first problem: the checker reports every error it can find.

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

import difflib
from dataclasses import dataclass, field, replace

from cortexlang.errors import Diagnostic, Span
from cortexlang.frontend import ast
from cortexlang.frontend.printer import format_expression
from cortexlang.ir import checked as ir

ELEMENTWISE_FUNCTIONS = ("sigmoid", "tanh", "relu", "exp", "log", "softmax")
# Largest value of a size expression: far beyond any real model, small enough to stay exact
# as a float and as an OpenCL int index.
MAX_SIZE = 2**31 - 1
NODE_FUNCTIONS = ("left", "right", "child", "children", "parent", "sibling", "prev")
BUILTIN_FUNCTIONS = (ELEMENTWISE_FUNCTIONS + NODE_FUNCTIONS
                     + ("concat", "split", "zeros", "ones", "num_children", "isleaf"))
_BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div"}

P1_NOTE = ("cortexlang plans the order of all node computations from the input's shape before "
           "any tensor work (property P1: control flow depends only on the structure)")
P2_NOTE = ("property P2: every recursive call is made before any tensor work, so a node's value "
           "may depend only on its descendants")
P3_NOTE = ("property P3: the computations on a node's children are independent, which is what "
           "lets all nodes of one height run as one batch")


def format_shape(shape: ir.Shape) -> str:
    return "scalar" if not shape else "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass
class Scope:
    """What names mean inside one rule (or one output head)."""

    rule: str                      # "leaf", "internal" or "output"
    node: str                      # the rule's node variable, e.g. "n"
    locals: dict[str, ir.Shape] = field(default_factory=dict)
    assigned_states: set[str] = field(default_factory=set)
    child_var: str | None = None   # bound inside `sum(... for k in children(n))`
    at_leaf: bool = False          # inside the `then` of `... if isleaf(n) else ...`
    poisoned: set[str] = field(default_factory=set)  # names whose definition had errors
    # Names the rule assigns in the current statement or later ones, with where (for E0204).
    later: dict[str, Span | None] = field(default_factory=dict)
    # Temporaries of the other rule, by name, with that rule's kind (for hints).
    elsewhere: dict[str, str] = field(default_factory=dict)
    # Every name the rule assigns: hidden temporaries must not collide with them.
    reserved: set[str] = field(default_factory=set)


class ExpressionTyper:
    """Types expressions against the declarations of one program."""

    def __init__(self, path: str, sizes: dict[str, int], structure: ir.StructureInfo,
                 params: dict[str, ir.ParamInfo], inputs: dict[str, ir.InputInfo],
                 states: dict[str, ir.StateInfo], diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.sizes = sizes
        self.structure = structure
        self.params = params
        self.inputs = inputs
        self.states = states
        self.diagnostics = diagnostics
        # Declared names whose declaration had errors (reported once): uses stay silent.
        self.broken: set[str] = set()
        self.has_leaf_rule = True
        self.later_sizes: dict[str, Span | None] = {}  # sizes not evaluated yet

    # -- reporting -----------------------------------------------------------------------------
    def error(self, code: str, message: str, span: Span | None, label: str = "", hint: str = "",
              notes: tuple[str, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label, hint, notes))

    def _unknown_name(self, name: str, span: Span | None, scope: Scope | None) -> None:
        if name in self.broken or (scope is not None and name in scope.poisoned):
            return
        if scope is not None and name in scope.later:
            where = scope.later[name]
            self.error("E0204", f"`{name}` is read before it is assigned", span,
                       "not assigned yet",
                       f"`{name}` is assigned at line {where.line}; move that statement up"
                       if _after(where, span) and where is not None else
                       f"this statement computes `{name}`; a temporary cannot read its own "
                       "value: give the new value another name")
            return
        hint = ""
        if scope is not None and scope.elsewhere.get(name) == "output":
            hint = (f"`{name}` is another output; outputs cannot read each other: make it a "
                    "state, or repeat its expression")
        elif scope is not None and name in scope.elsewhere:
            hint = (f"`{name}` is a temporary of the {scope.elsewhere[name]} rule; each rule "
                    "computes its own temporaries")
        elif name in BUILTIN_FUNCTIONS:
            hint = f"`{name}` is a function: call it, e.g. {name}(x)"
        elif name in ("root", "all"):
            hint = f"`{name}` selects nodes only in an output: output h[{name}]"
        elif scope is not None and scope.rule == "output":
            hint = "an output reads states; temporaries of the rules are not visible here"
        else:
            known = list(self.sizes) + list(self.params) + list(self.states) + list(self.inputs)
            known += list(self.broken)
            if scope is not None:
                known += list(scope.locals) + [scope.node]
            hint = did_you_mean(name, known) or "declare it with param, state or sizes"
        self.error("E0201", f"unknown name `{name}`", span, "not declared", hint)

    # -- sizes ---------------------------------------------------------------------------------
    def size_value(self, expr: ast.Expr, what: str) -> int | None:
        """Evaluate an integer expression over sizes (shapes, slice bounds, split counts)."""
        value = self._size_value(expr, what)
        if value is not None and abs(value) > MAX_SIZE:
            self.error("E0302", f"{what} is too large", _span_of(expr), f"{value}",
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
        self.error("E0302", f"{what} must be a constant size expression", _span_of(expr),
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
            self._unknown_name(name, span, None)

    # -- node selectors ------------------------------------------------------------------------
    def child_ref(self, expr: ast.Expr, scope: Scope) -> ir.ChildRef | None | str:
        """Resolve the index of `h[...]`: a child selector, "self" for `h[n]`, or None."""
        if isinstance(expr, ast.Name):
            if expr.name == scope.node:
                return "self"
            if scope.child_var is not None and expr.name == scope.child_var:
                return ir.ChildVar(expr.name)
            if expr.name == "root":
                self.error("E0404", "a rule cannot read the root's state", expr.span,
                           "data would flow from the root down",
                           "rules compute a node from its children only; read the root in an "
                           "output: output h[root]", (P2_NOTE,))
                return None
            self.error("E0406", f"`{expr.name}` is not a node of this rule", expr.span,
                       "not a node", f"index states with {scope.node}'s children, e.g. "
                       f"left({scope.node})")
            return None
        if (isinstance(expr, ast.Call) and expr.function not in BUILTIN_FUNCTIONS
                and expr.function not in self.inputs):
            self._unknown_function(expr.function, expr.span, ("left", "right", "child", "prev"))
            return None
        if not isinstance(expr, ast.Call) or expr.function not in NODE_FUNCTIONS:
            self.error("E0304", "a state can only be indexed by a node", _span_of(expr),
                       "not a node",
                       f"write h[left({scope.node})], h[child({scope.node}, 1)] or h[k] inside "
                       f"sum(... for k in children({scope.node}))")
            return None
        function = expr.function
        if function == "parent":
            self.error("E0404", "a rule cannot read its parent's state", expr.span,
                       "data would flow from the root down",
                       "rules compute a node from its children only", (P2_NOTE,))
            return None
        if function == "sibling":
            self.error("E0405", "a rule cannot read its sibling's state", expr.span,
                       "siblings would depend on each other",
                       "combine siblings in the parent's rule instead", (P3_NOTE,))
            return None
        if function == "children":
            self.error("E0304", "children(n) is a set of nodes", expr.span, "not one node",
                       f"use sum(h[k] for k in children({scope.node}))")
            return None
        usage = f"child({scope.node}, 0)" if function == "child" else f"{function}({scope.node})"
        if len(expr.args) != (2 if function == "child" else 1):
            self.error("E0302", f"wrong number of arguments to {function}", expr.span,
                       f"{len(expr.args)} given", f"write {usage}")
            return None
        if not expr.args or not (isinstance(expr.args[0], ast.Name)
                                 and expr.args[0].name == scope.node):
            self.error("E0406", f"{function}() must be applied to the rule's node "
                       f"`{scope.node}`", expr.span, "only direct children can be read",
                       f"write {function}({scope.node}); reach deeper nodes through the "
                       "children's own state")
            return None
        if scope.rule == "leaf":
            self.error("E0401", "a leaf has no children", expr.span, "child access in a leaf rule",
                       "move this to the internal rule, or leave out the leaf rule to run the "
                       "internal rule on leaves with zero child states")
            return None
        if scope.rule == "output":
            self.error("E0408", "an output sees one node, not its children", expr.span,
                       "child access in an output", "compute it in the internal rule as a state")
            return None
        kind = self.structure.kind
        if function == "prev":
            if kind != "sequence":
                self.error("E0402", "prev(n) exists only in a sequence", expr.span,
                           f"this model's structure is {kind}", "use left(n) or child(n, i)")
                return None
            index = 0
        elif function in ("left", "right"):
            if kind == "sequence":
                self.error("E0402", f"{function}(n) does not exist in a sequence", expr.span,
                           "a sequence element has one predecessor", "use prev(n)")
                return None
            index = 0 if function == "left" else 1
        else:  # child(n, i)
            position = expr.args[1]
            if not (isinstance(position, ast.Number) and position.is_integer):
                self.error("E0402", "a child position must be a whole-number literal",
                           _span_of(position), "not a literal",
                           f"to visit every child use sum(... for k in children({scope.node}))")
                return None
            index = int(position.value)
        if index >= self.structure.max_children:
            self.error("E0402", f"child {index} is outside the structure", expr.span,
                       f"a {kind} node has at most {self.structure.max_children} children",
                       "raise max_children in the structure declaration, or read an existing "
                       "child")
            return None
        return ir.ChildAt(index)

    def token_index(self, expr: ast.Expr, scope: Scope, table: str) -> ir.IndexExpr | None:
        """`word(n)` or `word(n) % 32`, the row index of a lookup in `table`; else None, after
        reporting why."""
        if isinstance(expr, ast.BinOp) and expr.op == "%":
            inner = self.token_index(expr.lhs, scope, table)
            modulus = self.size_value(expr.rhs, "a modulus")
            if inner is None or modulus is None:
                return None
            if modulus <= 0:
                self.error("E0302", "a modulus must be positive", _span_of(expr.rhs),
                           f"{modulus}", f"write {table}[word(n) % M] with M > 0")
                return None
            return ir.IndexMod(inner, modulus)
        if isinstance(expr, ast.Call) and expr.function in self.inputs:
            if self.inputs[expr.function].kind != "token":
                self.error("E0304", f"`{expr.function}(n)` is a vector, not a token id",
                           expr.span, "not a token index",
                           f"only token inputs pick rows: {table}[word(n)]")
                return None
            if self._check_input_call(expr, scope):
                return ir.TokenIndex(expr.function)
            return None
        if isinstance(expr, ast.Call) and expr.function in self.broken:
            return None
        if isinstance(expr, ast.Call) and expr.function not in BUILTIN_FUNCTIONS:
            self._unknown_function(expr.function, expr.span, tuple(self.inputs))
            return None
        if isinstance(expr, ast.Name) and (expr.name in self.broken
                                           or expr.name in scope.poisoned):
            return None
        if isinstance(expr, ast.Name) and not self._is_known(expr.name, scope):
            self._unknown_name(expr.name, expr.span, scope)
            return None
        self.error("E0304", f"parameter `{table}` is indexed by a token id", _span_of(expr),
                   "not a token index",
                   f"write {table}[word(n)] or {table}[word(n) % 32]; rows chosen by "
                   "computed values are not supported", (P1_NOTE,))
        return None

    def _is_known(self, name: str, scope: Scope) -> bool:
        return (name in self.sizes or name in self.params or name in self.states
                or name in self.inputs or name in scope.locals or name == scope.node
                or name == scope.child_var)

    def _unknown_function(self, name: str, span: Span | None,
                          candidates: tuple[str, ...]) -> None:
        if name in self.params or name in self.states or name in self.sizes:
            what = ("parameter" if name in self.params else
                    "state" if name in self.states else "size")
            self.error("E0203", f"`{name}` is a {what}, not a function", span, "not callable",
                       f"index it, e.g. {name}[left(n)], or multiply: {name} @ x"
                       if what != "size" else "use it as a number")
            return
        known = candidates + BUILTIN_FUNCTIONS + tuple(self.inputs) + ir.REDUCE_OPS
        listed = candidates or ELEMENTWISE_FUNCTIONS + ("concat", "split")
        self.error("E0203", f"unknown function `{name}`", span, "not a built-in",
                   did_you_mean(name, known) or "built-ins here: " + ", ".join(listed))

    def _check_input_call(self, expr: ast.Call, scope: Scope) -> bool:
        if len(expr.args) != 1 or not (isinstance(expr.args[0], ast.Name)
                                       and expr.args[0].name == scope.node):
            self.error("E0302", f"{expr.function}() takes the rule's node", expr.span,
                       "wrong argument", f"write {expr.function}({scope.node})")
            return False
        if (scope.rule in ("internal", "output") and self.structure.words_only_at_leaves
                and not scope.at_leaf):
            where = "in an output" if scope.rule == "output" else "at internal nodes"
            self.error("E0407", f"`{expr.function}` is given only at leaves of a "
                       f"{self.structure.kind}", expr.span, f"no input {where}",
                       (f"read `{expr.function}` in the leaf rule" if self.has_leaf_rule else
                        f"guard it: `... if isleaf({scope.node}) else ...`")
                       + "; internal nodes read their children's states")
            return False
        return True

    # -- conditions ----------------------------------------------------------------------------
    def condition(self, expr: ast.Expr, scope: Scope) -> ir.Condition | None:
        """A structural condition: isleaf(...) or num_children(n) compared with a size."""
        if isinstance(expr, ast.Call) and expr.function == "isleaf":
            if len(expr.args) != 1:
                self.error("E0302", "isleaf takes one node", expr.span,
                           f"{len(expr.args)} arguments", f"write isleaf({scope.node})")
                return None
            arg = expr.args[0]
            if isinstance(arg, ast.Name) and arg.name == scope.node:
                return ir.IsLeaf(None)
            child = self.child_ref(arg, scope)
            return ir.IsLeaf(child) if isinstance(child, (ir.ChildAt, ir.ChildVar)) else None
        if isinstance(expr, ast.Compare):
            lhs, op, rhs = expr.lhs, expr.op, expr.rhs
            if _is_num_children(rhs) and not _is_num_children(lhs):
                lhs, op, rhs = rhs, _SWAPPED[op], lhs
            if _is_num_children(lhs):
                assert isinstance(lhs, ast.Call)
                if not self._num_children_call(lhs, scope):
                    return None
                value = self.size_value(rhs, "a child count")
                return None if value is None else ir.NumChildrenCompare(op, value)
        self.error("E0403", "a condition may only test the structure", _span_of(expr),
                   "depends on data, not on the structure",
                   "branch on isleaf(...) or num_children(n); for values use elementwise "
                   "functions such as relu or sigmoid gates", (P1_NOTE,))
        return None

    def _num_children_call(self, expr: ast.Call, scope: Scope) -> bool:
        if scope.rule == "output":
            self.error("E0408", "an output sees one node, not its children", expr.span,
                       "child count in an output", "compute it in the rules as a state")
            return False
        if len(expr.args) != 1 or not (isinstance(expr.args[0], ast.Name)
                                       and expr.args[0].name == scope.node):
            self.error("E0406", f"num_children() must be applied to the rule's node "
                       f"`{scope.node}`", expr.span, "only the node's own children count",
                       f"write num_children({scope.node})")
            return False
        return True

    # -- expressions ---------------------------------------------------------------------------
    def expression(self, expr: ast.Expr, scope: Scope) -> ir.TypedExpr | None:
        span = _span_of(expr)
        if isinstance(expr, ast.Number):
            return ir.Const(expr.value, (), span)
        if isinstance(expr, ast.Scaled):
            value = self.size_value(expr, "a size")
            return None if value is None else ir.Const(float(value), (), span)
        if isinstance(expr, ast.Name):
            return self._name(expr, scope)
        if isinstance(expr, ast.Neg):
            arg = self.expression(expr.arg, scope)
            return None if arg is None else ir.Unary("neg", arg, arg.shape, span)
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
            then_at_leaf, otherwise_at_leaf = _leaf_branches(condition)
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
            if where is not None and _after(where, span):
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
        self._unknown_name(name, span, scope)
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
        if expr.op == "@":
            return self._matmul(lhs, rhs, expr)
        shape = self._broadcast(lhs, rhs, span, "the operands", expr.lhs, expr.rhs)
        if shape is None:
            return None
        if (isinstance(lhs, ir.Const) and isinstance(rhs, ir.Const)
                and not lhs.shape and not rhs.shape):
            value = _fold(_BINARY[expr.op], lhs.value, rhs.value)
            if value is not None:
                return ir.Const(value, (), span)
        return ir.Binary(_BINARY[expr.op], lhs, rhs, shape, span)

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
            if not self._check_input_call(expr, scope):
                return None
            return ir.NodeInput(function, info.shape, span)
        if function in ELEMENTWISE_FUNCTIONS:
            if len(expr.args) != 1:
                self.error("E0302", f"{function} takes one argument", span,
                           f"{len(expr.args)} given", f"write {function}(x)")
                return None
            arg = self.expression(expr.args[0], scope)
            if arg is None:
                return None
            if function == "softmax" and len(arg.shape) != 1:
                self.error("E0307", "softmax needs a vector", span, format_shape(arg.shape),
                           "apply it to a vector, e.g. softmax(W @ h + b)")
                return None
            return ir.Unary(function, arg, arg.shape, span)
        if function == "concat":
            return self._concat(expr, scope)
        if function in ("zeros", "ones"):
            if not expr.args:
                self.error("E0302", f"{function} needs a shape", span, "no sizes",
                           f"write {function}(H) or {function}(H, H)")
                return None
            dims = [self.size_value(arg, f"a dimension of {function}") for arg in expr.args]
            for dim, dim_expr in zip(dims, expr.args, strict=True):
                if dim is not None and dim <= 0:
                    self.error("E0212", f"{function} has an empty dimension", _span_of(dim_expr),
                               f"{dim}", "dimensions must be positive")
            if any(d is None or d <= 0 for d in dims):
                return None
            return ir.Const(0.0 if function == "zeros" else 1.0,
                            tuple(int(d) for d in dims if d is not None), span)
        if function == "num_children":
            if not self._num_children_call(expr, scope):
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
        if function in ir.REDUCE_OPS:
            self.error("E0406", f"{function} reduces over children", span,
                       "not a reduction",
                       f"write {function}(h[k] for k in children({scope.node}))")
            return None
        self._unknown_function(function, span, ())
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
        if expr.op not in ir.REDUCE_OPS:
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
        if expr.var == scope.node or self._is_known(expr.var, scope):
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
                self._unknown_name(base.name, base.span, scope)
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


def _fold(op: str, lhs: float, rhs: float) -> float | None:
    if op == "div":
        return None if rhs == 0 else lhs / rhs
    return {"add": lhs + rhs, "sub": lhs - rhs, "mul": lhs * rhs}[op]


def _describe(expr: ast.Expr, shape: ir.Shape) -> str:
    if isinstance(expr, ast.Name):
        return f"{expr.name} is {format_shape(shape)}"
    return f"`{_short(expr)}` is {format_shape(shape)}"


def _short(expr: ast.Expr) -> str:
    """A compact rendering of an operand for messages."""
    text = format_expression(expr)
    return text if len(text) <= 32 else text[:29] + "..."


def _span_of(expr: ast.Expr | ast.SliceIndex) -> Span | None:
    return getattr(expr, "span", None)


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """`did you mean `x`?` for the closest known name (ignoring case), or ""."""
    by_lower = {candidate.lower(): candidate for candidate in known}
    if name.lower() in by_lower and by_lower[name.lower()] != name:
        return f"did you mean `{by_lower[name.lower()]}`?"
    close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=1)
    return f"did you mean `{close[0]}`?" if close else ""


def _after(later: Span | None, span: Span | None) -> bool:
    """Whether `later` starts after `span` (both known)."""
    return (later is not None and span is not None
            and (later.line, later.column) > (span.line, span.column))


def _is_num_children(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Call) and expr.function == "num_children"


# `a < b` is `b > a`: flips a comparison written as `2 == num_children(n)`.
_SWAPPED = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _leaf_branches(condition: ir.Condition | None) -> tuple[bool, bool]:
    """Whether the `then` and the `otherwise` branch of a select run only at leaves of the
    rule's node: `isleaf(n)`, `num_children(n) == 0` and their negations."""
    if condition == ir.IsLeaf(None):
        return True, False
    if isinstance(condition, ir.NumChildrenCompare):
        op, value = condition.op, condition.value
        if (op, value) in (("==", 0), ("<", 1), ("<=", 0)):
            return True, False
        if (op, value) in (("!=", 0), (">", 0), (">=", 1)):
            return False, True
    return False, False

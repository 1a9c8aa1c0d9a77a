"""Node selectors, token indices and structural conditions: where the legality properties of
the Cortex paper are enforced (see `frontend.typing` for P1-P3)."""

from __future__ import annotations

from cortexlang.frontend import ast
from cortexlang.frontend.scope import (
    BUILTIN_FUNCTIONS,
    NODE_FUNCTIONS,
    P1_NOTE,
    P2_NOTE,
    P3_NOTE,
    Scope,
    span_of,
)
from cortexlang.frontend.sizes import SizeEvaluator
from cortexlang.ir import checked as ir


class NodeResolver(SizeEvaluator):
    """Resolves `h[left(n)]`-style selectors, `Emb[word(n)]` indices and `isleaf(n)` tests."""

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
            self.unknown_function(expr.function, expr.span, ("left", "right", "child", "prev"))
            return None
        if not isinstance(expr, ast.Call) or expr.function not in NODE_FUNCTIONS:
            self.error("E0304", "a state can only be indexed by a node", span_of(expr),
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
                           span_of(position), "not a literal",
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
                self.error("E0302", "a modulus must be positive", span_of(expr.rhs),
                           f"{modulus}", f"write {table}[word(n) % M] with M > 0")
                return None
            return ir.IndexMod(inner, modulus)
        if isinstance(expr, ast.Call) and expr.function in self.inputs:
            if self.inputs[expr.function].kind != "token":
                self.error("E0304", f"`{expr.function}(n)` is a vector, not a token id",
                           expr.span, "not a token index",
                           f"only token inputs pick rows: {table}[word(n)]")
                return None
            if self.check_input_call(expr, scope):
                return ir.TokenIndex(expr.function)
            return None
        if isinstance(expr, ast.Call) and expr.function in self.broken:
            return None
        if isinstance(expr, ast.Call) and expr.function not in BUILTIN_FUNCTIONS:
            self.unknown_function(expr.function, expr.span, tuple(self.inputs))
            return None
        if isinstance(expr, ast.Name) and (expr.name in self.broken
                                           or expr.name in scope.poisoned):
            return None
        if isinstance(expr, ast.Name) and not self.is_known(expr.name, scope):
            self.unknown_name(expr.name, expr.span, scope)
            return None
        self.error("E0304", f"parameter `{table}` is indexed by a token id", span_of(expr),
                   "not a token index",
                   f"write {table}[word(n)] or {table}[word(n) % 32]; rows chosen by "
                   "computed values are not supported", (P1_NOTE,))
        return None

    def check_input_call(self, expr: ast.Call, scope: Scope) -> bool:
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
            if is_num_children(rhs) and not is_num_children(lhs):
                lhs, op, rhs = rhs, _SWAPPED[op], lhs
            if is_num_children(lhs):
                assert isinstance(lhs, ast.Call)
                if not self.num_children_call(lhs, scope):
                    return None
                value = self.size_value(rhs, "a child count")
                return None if value is None else ir.NumChildrenCompare(op, value)
        self.error("E0403", "a condition may only test the structure", span_of(expr),
                   "depends on data, not on the structure",
                   "branch on isleaf(...) or num_children(n); for values use elementwise "
                   "functions such as relu or sigmoid gates", (P1_NOTE,))
        return None

    def num_children_call(self, expr: ast.Call, scope: Scope) -> bool:
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


def is_num_children(expr: ast.Expr) -> bool:
    """Whether `expr` is a call of num_children."""
    return isinstance(expr, ast.Call) and expr.function == "num_children"


# `a < b` is `b > a`: flips a comparison written as `2 == num_children(n)`.
_SWAPPED = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def leaf_branches(condition: ir.Condition | None) -> tuple[bool, bool]:
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

"""Evaluate typed expressions at one node: the semantics of `cortexlang.ir.checked`, in numpy.

`NodeEvaluator` holds what one structure offers (its children, token ids, feature vectors)
and the state arrays of the whole batch. `run_rule(rule, node)` runs a rule's statements in
order at one node; `evaluate_output(output, node)` evaluates an output head there. The
evaluator recurses over the *expression* tree only, which is a few levels deep; nodes of the
structure are visited by the caller, in a loop.

Every value is a numpy array of the interpreter's dtype (a 0-d array for a scalar), so all
arithmetic happens in that dtype.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cortexlang.errors import InputError
from cortexlang.inputs import checks
from cortexlang.ir import checked as ir
from cortexlang.ir.operators import REDUCTIONS, comparison, operator_named


def missing_token_error(program: ir.CheckedProgram, lookup: ir.Lookup, input_name: str,
                        structure: int, node: int) -> InputError:
    """E0554: `lookup` reads the token of a node that has none (the compiled runtime raises
    the same error, see `cortexlang.inputs.checks`)."""
    return checks.missing_token_error(lookup.param, lookup.span, input_name, structure, node,
                                      program.source)


def token_outside_error(program: ir.CheckedProgram, lookup: ir.Lookup, row: int, rows: int,
                        structure: int, node: int) -> InputError:
    """E0555: the token of a node selects row `row` of a table of `rows` rows."""
    return checks.token_outside_error(lookup.param, lookup.span, row, rows, structure, node,
                                      program.source)


class NodeEvaluator:
    """Evaluates rules and outputs at the nodes of one structure.

    program:    the checked program (its source renders input errors with a caret).
    parameters: every parameter, already in `dtype`.
    states:     name -> [total_nodes, *shape] arrays of the whole batch, written by `run_rule`.
    children:   the structure's child rows (-1 for a missing child), as Python lists.
    tokens:     token input name -> int array [N] of ids (-1 where a node has none).
    vectors:    vector input name -> [N, width] array in `dtype`.
    offset:     the row of this structure's node 0 in `states`.
    index:      the structure's position in the batch, for messages.
    """

    def __init__(self, program: ir.CheckedProgram, parameters: Mapping[str, np.ndarray],
                 states: Mapping[str, np.ndarray], children: list[list[int]],
                 tokens: Mapping[str, np.ndarray], vectors: Mapping[str, np.ndarray],
                 offset: int, index: int, dtype: np.dtype) -> None:
        self.program = program
        self.parameters = parameters
        self.states = states
        self.children = children
        self.tokens = tokens
        self.vectors = vectors
        self.offset = offset
        self.index = index
        self.dtype = dtype
        # Per node: the node id, the values assigned so far (states and temporaries), and
        # the child bound by the reduction being evaluated.
        self.node = 0
        self.values: dict[str, np.ndarray] = {}
        self.bound: dict[str, int] = {}

    # -- entry points --------------------------------------------------------------------------
    def run_rule(self, rule: ir.CheckedRule, node: int) -> None:
        """Run `rule`'s statements at `node` and store its new states in `states`."""
        self.node = node
        self.values = {}
        for statement in rule.statements:
            self.values[statement.target] = self.evaluate(statement.value)
        row = self.offset + node
        for state in self.program.states:
            self.states[state.name][row] = self.values[state.name]

    def evaluate_output(self, output: ir.OutputInfo, node: int) -> np.ndarray:
        """The value of an output head at `node`, whose states are all final."""
        self.node = node
        row = self.offset + node
        # In an output, a bare state name is the node's final state.
        self.values = {state.name: self.states[state.name][row] for state in self.program.states}
        return self.evaluate(output.value)

    # -- structure -----------------------------------------------------------------------------
    def child_of(self, reference: ir.ChildRef) -> int:
        """The id of the referenced child of the current node, or -1 when it is missing."""
        if isinstance(reference, ir.ChildVar):
            return self.bound[reference.var]
        row = self.children[self.node]
        return row[reference.index] if reference.index < len(row) else -1

    def present_children(self) -> list[int]:
        """The current node's existing children, in the order of its children row."""
        return [child for child in self.children[self.node] if child >= 0]

    def holds(self, condition: ir.Condition) -> bool:
        """Whether a structural condition is true at the current node."""
        if isinstance(condition, ir.IsLeaf):
            if condition.child is None:
                return not self.present_children()
            child = self.child_of(condition.child)
            # A leaf is a node: a missing child is not one (the compiler's reading too).
            return child >= 0 and all(grandchild < 0 for grandchild in self.children[child])
        count = float(len(self.present_children()))
        return bool(comparison(condition.op).numpy(count, float(condition.value)))

    def token(self, index: ir.IndexExpr, lookup: ir.Lookup) -> int:
        """The table row an index expression selects at the current node."""
        if isinstance(index, ir.IndexMod):
            return self.token(index.index, lookup) % index.modulus
        word = int(self.tokens[index.input][self.node])
        if word < 0:
            raise missing_token_error(self.program, lookup, index.input, self.index, self.node)
        return word

    # -- expressions ---------------------------------------------------------------------------
    def evaluate(self, expression: ir.TypedExpr) -> np.ndarray:
        """The value of `expression` at the current node, as an array of `dtype`."""
        match expression:
            case ir.Const(value=value, shape=shape):
                return np.full(shape, value, dtype=self.dtype)
            case ir.Param(name=name):
                return self.parameters[name]
            case ir.Lookup():
                return self.lookup(expression)
            case ir.NodeInput(name=name):
                return self.vectors[name][self.node]
            case ir.NumChildren():
                return np.asarray(len(self.present_children()), dtype=self.dtype)
            case ir.State(name=name, child=None):
                return self.values[name]
            case ir.State(name=name, child=ir.ChildAt() | ir.ChildVar() as reference,
                          shape=shape):
                child = self.child_of(reference)
                if child < 0:
                    return np.zeros(shape, dtype=self.dtype)
                return self.states[name][self.offset + child]
            case ir.Local(name=name):
                return self.values[name]
            case ir.Unary(op=op, arg=arg):
                return operator_named(op).numpy(self.evaluate(arg))
            case ir.Binary(op=op, lhs=lhs, rhs=rhs):
                return operator_named(op).numpy(self.evaluate(lhs), self.evaluate(rhs))
            case ir.MatMul(lhs=lhs, rhs=rhs):
                return operator_named("matmul").numpy(self.evaluate(lhs), self.evaluate(rhs))
            case ir.Concat(parts=parts):
                return operator_named("concat").numpy(*(self.evaluate(part) for part in parts))
            case ir.Slice(arg=arg, start=start, stop=stop):
                return self.evaluate(arg)[start:stop]
            case ir.ChildReduce():
                return self.reduce(expression)
            case ir.Select(condition=condition, then=then, otherwise=otherwise, shape=shape):
                # Only the chosen branch runs: `Emb[word(n)] if isleaf(n) else ...` must not
                # look up a word at an internal node, which has none.
                chosen = self.evaluate(then if self.holds(condition) else otherwise)
                return chosen if chosen.shape == shape else np.broadcast_to(chosen, shape)
        raise TypeError(f"the interpreter does not know {type(expression).__name__}")

    def lookup(self, expression: ir.Lookup) -> np.ndarray:
        """The table row a token selects; E0554/E0555 when there is no such row."""
        table = self.parameters[expression.param]
        row = self.token(expression.index, expression)
        if row >= table.shape[0]:
            raise token_outside_error(self.program, expression, row, table.shape[0],
                                      self.index, self.node)
        return table[row]

    def reduce(self, expression: ir.ChildReduce) -> np.ndarray:
        """sum, mean or elementwise max of the body over the existing children; zeros if none."""
        children = self.present_children()
        if not children:
            return np.zeros(expression.shape, dtype=self.dtype)
        outer = self.bound.get(expression.var)
        results = []
        for child in children:
            self.bound[expression.var] = child
            results.append(self.evaluate(expression.body))
        if outer is None:
            del self.bound[expression.var]
        else:
            self.bound[expression.var] = outer
        reduction = REDUCTIONS[expression.op]
        combine = operator_named(reduction.combine).numpy
        total = results[0]
        for result in results[1:]:
            total = combine(total, result)
        if reduction.average:
            total = total / np.asarray(len(children), dtype=self.dtype)
        return total

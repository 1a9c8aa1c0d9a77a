"""Where a model reads a node's token: the host-side token checks an executable carries.

The compiled model must reject what the interpreter rejects, with the same error code, before
anything reaches the device. The kernels read a node's token as `imax(word, 0)` (see
passes/lower_loops.py), so a node without a token would silently read row 0, and a token past
its table would read outside it. This step writes down, once per program, where the
interpreter evaluates each lookup (a `Mask` over the linearized nodes) and which tables the
kernels read at a node's token; `runtime/tokens.py` evaluates those masks per run.

Where a lookup reads a token, as the interpreter evaluates it: at the nodes its rule runs on
(the leaf rule where a node has no children, the internal rule elsewhere; an output at each
structure's root or at every node), only on the side of `... if CONDITION else ...` that the
node takes, and inside a reduction over children only at nodes that have a child.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from cortexlang.ir import checked as ir
from cortexlang.ir import executable as X
from cortexlang.ir.recursive import RecursiveProgram


def token_checks(program: ir.CheckedProgram, recursive: RecursiveProgram) -> X.TokenChecks:
    """The token checks of a compiled program (see the module docstring)."""
    kernel_reads = _kernel_token_reads(recursive)
    return X.TokenChecks(reads=token_reads(program, recursive.max_children),
                         kernel_reads=kernel_reads,
                         leaf_rows=_fast_leaf_rows(program, recursive, dict(kernel_reads)))


def token_reads(program: ir.CheckedProgram, max_children: int) -> tuple[X.TokenRead, ...]:
    """Every lookup of the program with the nodes where it reads a token, in the order the
    interpreter meets them at one node (leaf or internal rule, then outputs)."""
    walker = _Walker(program, max_children)
    for rule, nodes in ((program.leaf, X.NodeSet.LEAVES), (program.internal,
                                                           X.NodeSet.INTERNAL)):
        for statement in rule.statements:
            walker.walk(statement.value, X.Nodes(nodes), {})
    for output in program.outputs:
        which = X.NodeSet.ROOTS if output.selector == "root" else X.NodeSet.EVERY
        walker.walk(output.value, X.Nodes(which), {})
    return tuple(walker.reads)


def _and(mask: X.Mask, other: X.Mask) -> X.Mask:
    left = mask.masks if isinstance(mask, X.All) else (mask,)
    return X.All(left + (other,))


class _Walker:
    """Walks expressions with the mask of nodes at which each one is evaluated."""

    def __init__(self, program: ir.CheckedProgram, max_children: int) -> None:
        self.program = program
        self.max_children = max_children
        self.reads: list[X.TokenRead] = []

    def walk(self, expression: ir.TypedExpr, nodes: X.Mask, bound: dict[str, int]) -> None:
        if isinstance(expression, ir.Lookup):
            self.reads.append(self.read(expression, nodes))
        elif isinstance(expression, ir.Select):
            holds = self.holds(expression.condition, bound)
            self.walk(expression.then, _and(nodes, holds), bound)
            self.walk(expression.otherwise, _and(nodes, X.Not(holds)), bound)
        elif isinstance(expression, ir.ChildReduce):
            # The body runs once per existing child, with the reduction's variable bound to it.
            for column in range(self.max_children):
                self.walk(expression.body, _and(nodes, X.HasChild(column)),
                          {**bound, expression.var: column})
        else:
            for part in _parts(expression):
                self.walk(part, nodes, bound)

    def read(self, lookup: ir.Lookup, nodes: X.Mask) -> X.TokenRead:
        moduli: list[int] = []
        index = lookup.index
        while isinstance(index, ir.IndexMod):
            moduli.append(index.modulus)
            index = index.index
        return X.TokenRead(param=lookup.param, input=index.input, moduli=tuple(reversed(moduli)),
                           rows=self.program.param(lookup.param).shape[0], where=nodes,
                           span=lookup.span)

    def holds(self, condition: ir.Condition, bound: dict[str, int]) -> X.Mask:
        """The nodes where a structural condition is true (see `NodeEvaluator.holds`)."""
        if isinstance(condition, ir.NumChildrenCompare):
            return X.NumChildrenIs(condition.op, condition.value)
        if condition.child is None:
            return X.Nodes(X.NodeSet.LEAVES)
        if isinstance(condition.child, ir.ChildVar):
            column = bound[condition.child.var]
        else:
            column = condition.child.index
        if column >= self.max_children:
            return X.Nodes(X.NodeSet.NONE)
        # A leaf is a node: a missing child is not one.
        return X.ChildIsLeaf(column)


def _parts(expression: ir.TypedExpr) -> Iterator[ir.TypedExpr]:
    """The expressions directly inside `expression`."""
    for field in fields(expression):
        value = getattr(expression, field.name)
        if isinstance(value, tuple):
            yield from (part for part in value if isinstance(part, ir.TypedExpr))
        elif isinstance(value, ir.TypedExpr):
            yield value


def leaf_token_rows(program: ir.CheckedProgram) -> int | None:
    """When the program reads tokens only in its leaf rule, at every leaf (no lookup under a
    condition, a reduction over children, in the internal rule or in an output): the fewest
    rows of the tables those lookups read (a large number when every lookup is modular, or
    there is none). Then a batch whose leaves all carry a token below that count passes
    the checks without evaluating their masks. None otherwise."""
    def lookups(expression: ir.TypedExpr, plain: bool) -> Iterator[tuple[ir.Lookup, bool]]:
        if isinstance(expression, ir.Lookup):
            yield expression, plain
        inner = plain and not isinstance(expression, ir.Select | ir.ChildReduce)
        for part in _parts(expression):
            yield from lookups(part, inner)

    elsewhere = [statement.value for statement in program.internal.statements] + \
        [output.value for output in program.outputs]
    if any(True for value in elsewhere for _ in lookups(value, True)):
        return None
    rows = 1 << 62
    for statement in program.leaf.statements:
        for lookup, plain in lookups(statement.value, True):
            if not plain:
                return None
            if isinstance(lookup.index, ir.TokenIndex):
                rows = min(rows, program.param(lookup.param).shape[0])
    return rows


_RULE_NODES = {"leaf": X.NodeSet.LEAVES, "internal": X.NodeSet.INTERNAL,
               "heads": X.NodeSet.EVERY}


def _kernel_token_reads(program: RecursiveProgram) -> tuple[tuple[X.NodeSet, int], ...]:
    """Per rule of the compiled program, the fewest rows of the tables its kernels read at a
    node's token (rules that read none are absent)."""
    tables: list[tuple[X.NodeSet, int]] = []
    for kind, rule in (("leaf", program.leaf), ("internal", program.internal),
                       ("heads", program.heads)):
        rows = [program.param_shape(op.attr("param"))[0] for op in
                (rule.ops if rule is not None else ()) if op.kind == "lookup"
                and not op.attr("moduli")]
        rows += [program.table_rows] if rule is not None and any(
            op.kind == "table" for op in rule.ops) else []
        if rows:
            tables.append((_RULE_NODES[kind], min(rows)))
    return tuple(tables)


def _fast_leaf_rows(program: ir.CheckedProgram, recursive: RecursiveProgram,
                    kernel_reads: dict[X.NodeSet, int]) -> int | None:
    """`leaf_token_rows` of the source program, when the kernels too read tokens at leaves
    only (then bounded by the tables they read); None: every run evaluates the masks."""
    rows = leaf_token_rows(program)
    if rows is None or recursive.leaf is None:
        return None
    for rule in (recursive.internal, recursive.heads):
        if rule is not None and any(op.kind in ("lookup", "table") for op in rule.ops):
            return None
    return min(rows, kernel_reads.get(X.NodeSet.LEAVES, rows))

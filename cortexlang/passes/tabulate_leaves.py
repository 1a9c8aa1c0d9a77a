"""Leaf tabulation: a leaf whose state depends only on its token is looked up, not computed.

Legal when the (specialised) leaf rule reads nothing node-dependent but embedding rows of one
token input (no vector input, no modulus), and the tables fit the memory budget. Then every
leaf's state is a function of its token alone, so it is hoisted out of the run entirely: once
per weights, the leaf rule is evaluated for every token of the vocabulary (one batched matrix
product instead of one per leaf), and at run time a leaf copies its row. On the Stanford
Sentiment Treebank half of all nodes are leaves, so this removes about a fifth of a TreeLSTM's
arithmetic. The cost is memory: tokens x state floats per state.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir.recursive import SOURCE_KINDS, Op, RecursiveProgram, RuleProgram
from cortexlang.passes.result import PassResult, unchanged

TABLE_BUDGET_BYTES = 256 * 1024 * 1024


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def tabulate_leaves(program: RecursiveProgram) -> RecursiveProgram:
    """Replace the leaf rule by per-token tables where that is legal (see module docstring);
    the same object where it is not."""
    return tabulate_leaves_result(program).ir


def tabulate_leaves_result(program: RecursiveProgram) -> PassResult[RecursiveProgram]:
    """Tabulate the leaves where that is legal; say how big the tables are, or why not."""
    leaf = program.leaf

    def skip(reason: str) -> PassResult[RecursiveProgram]:
        return unchanged(program, reason)

    if not program.specialized:
        return skip("leaves are not specialised")
    if program.table_rule is not None:
        return skip("the leaves read tables already")
    dependent = [op for op in leaf.ops if op.kind in SOURCE_KINDS
                 and op.kind not in ("const", "param", "uniform")]
    if not dependent:
        return skip("the leaf state does not depend on the leaf")
    if any(op.kind != "lookup" or op.attr("moduli") for op in dependent):
        return skip("the leaf reads more than its token's embedding rows")
    inputs = {op.attr("input") for op in dependent}
    if len(inputs) != 1:
        return skip("the leaf reads several token inputs")
    if all(op.kind in SOURCE_KINDS for op in leaf.ops):
        return skip("the leaf only copies embedding rows; there is nothing to compute")
    if any(len(op.shape) > 1 for op in leaf.ops if op.kind not in ("param", "lookup")):
        return skip("the leaf computes matrices")
    rows = min(program.param_shape(op.attr("param"))[0] for op in dependent)
    table_bytes = rows * sum(_size(program.state_shape(state)) for state, _ in leaf.results) * 4
    if table_bytes > TABLE_BUDGET_BYTES:
        return skip(f"the tables would take {table_bytes >> 20} MiB")
    (token,) = inputs
    ops = tuple(Op(f"table_{state}", "table", (), program.state_shape(state),
                   (("name", f"leaf_{state}"), ("input", token)), leaf.span)
                for state, _ in leaf.results)
    results = tuple((state, f"table_{state}") for state, _ in leaf.results)
    table_leaf = RuleProgram("leaf", ops, results, leaf.span)
    note = (f"leaf states precomputed for {rows} tokens ({table_bytes >> 20} MiB); a leaf "
            "reads its rows")
    return PassResult(replace(program, leaf=table_leaf, table_rule=leaf, table_rows=rows,
                              notes=program.notes + (("tabulate_leaves", note),)), note)

"""Solutions to lesson 4: specialisation, hoisting, refactoring and unrolling."""

from __future__ import annotations

from cortexlang.ir.recursive import NODE_INDEPENDENT_SOURCES, SOURCE_KINDS


def node_independent_ops(rule):
    """Computed operators whose operands are all node-independent: constants, parameters,
    uniforms, or computed operators that are themselves node-independent. One pass in
    dependence order suffices, since operands come before their users."""
    independent: set[str] = set()
    kinds = {op.name: op.kind for op in rule.ops}
    for op in rule.ops:
        if op.kind in SOURCE_KINDS:
            continue
        if all(kinds[arg] in NODE_INDEPENDENT_SOURCES or arg in independent
               for arg in op.args):
            independent.add(op.name)
    return independent


def predict_refactoring():
    """Refactoring needs `W @ (sum of child states)` with W a parameter. A concatenation of
    the children (`U @ concat(h_l, h_r)`) multiplies each child by a different half of U, so
    a child would have to know whether it is a left or a right child: not refactorable."""
    return {
        "treefc": True,              # W @ (h[left] + h[right])
        "treelstm": False,           # U @ concat(h[left], h[right])
        "treegru": False,            # U_g @ concat(...) and U_h @ concat(...)
        "childsum_treelstm": True,   # U_iou @ sum(h[k]) and U_f @ h[k] per child
        "mvrnn": False,              # W @ concat(...), W_M @ concat(...)
        "dagrnn": True,              # W @ sum(h[k] for k in children(n))
        "lstm_sequence": True,       # U @ h[prev(n)]: a single child
    }


def operators_removed(records):
    """Computed operators before minus after, for each pass between two recursive programs."""
    def count(program):
        return sum(op.kind not in SOURCE_KINDS for rule in (program.leaf, program.internal)
                   for op in rule.ops)

    removed = {}
    for previous, record in zip(records, records[1:], strict=False):
        if previous.stage == "recursive" and record.stage == "recursive":
            removed[record.step] = count(previous.ir) - count(record.ir)
    return removed

"""The device-free check of a run's tokens: the interpreter's E0554 and E0555, before launch.

An executable carries where the interpreter reads each token (`TokenRead`, a `Mask` over the
nodes; see passes/token_reads.py) and where the kernels read one (`kernel_reads`). Here those
masks are evaluated on a linearized batch. The kernels clamp a missing token to row 0 but do
not bound a token above, so one past a table that a kernel reads is refused wherever it is
read, even on a branch the interpreter would not take.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np

from cortexlang.errors import InputError, user_error
from cortexlang.inputs.checks import missing_token_error, token_outside_error
from cortexlang.ir.executable import (
    ChildIsLeaf,
    Executable,
    HasChild,
    Mask,
    Nodes,
    NodeSet,
    Not,
    NumChildrenIs,
)
from cortexlang.runtime.linearize import Linearized

_COMPARE: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


def node_mask(mask: Mask, linearized: Linearized) -> np.ndarray:
    """Per linearized node, whether it is in `mask` (bool [num_nodes])."""
    count, children = linearized.num_children, linearized.children
    if isinstance(mask, Nodes):
        if mask.which is NodeSet.LEAVES:
            return np.asarray(count == 0)
        if mask.which is NodeSet.INTERNAL:
            return np.asarray(count != 0)
        if mask.which is NodeSet.ROOTS:
            roots = np.zeros(linearized.num_nodes, dtype=bool)
            roots[linearized.roots] = True
            return roots
        return np.full(linearized.num_nodes, mask.which is NodeSet.EVERY)
    if isinstance(mask, NumChildrenIs):
        return np.asarray(_COMPARE[mask.op](count, mask.value))
    if isinstance(mask, HasChild | ChildIsLeaf):
        if mask.column >= children.shape[1]:
            return np.zeros(linearized.num_nodes, dtype=bool)
        child = children[:, mask.column]
        present = child >= 0
        if isinstance(mask, HasChild):
            return present
        # A leaf is a node: a missing child is not one.
        return present & (count[np.where(present, child, 0)] == 0)
    if isinstance(mask, Not):
        return ~node_mask(mask.mask, linearized)
    result = np.ones(linearized.num_nodes, dtype=bool)
    for part in mask.masks:
        result &= node_mask(part, linearized)
    return result


def check_tokens(executable: Executable, linearized: Linearized) -> None:
    """Raise the interpreter's `InputError` where a lookup reads a token a node does not have
    (E0554) or one outside its table (E0555), at the first such node (by structure, then
    children before parents); then E0555 for a token past a table a kernel reads."""
    words = linearized.words
    if not words.size:
        return
    checks = executable.tokens
    if checks.leaf_rows is not None:
        # The common case, decided once per model: only leaves read tokens, and the kernels
        # read them at leaves only; a batch whose leaves all have a token inside every table
        # needs no masks (a bad one is checked in full to name the first bad node).
        leaf_words = words[linearized.num_children == 0]
        if not leaf_words.size or (int(leaf_words.min()) >= 0 and
                                   int(leaf_words.max()) < checks.leaf_rows):
            return
    present = words >= 0
    found: list[tuple[int, int, int, InputError]] = []
    for order, read in enumerate(checks.reads):
        selected = np.where(present, words, 0)
        for modulus in read.moduli:
            selected = selected % modulus
        nodes = node_mask(read.where, linearized)
        bad = np.flatnonzero(nodes & (~present | (selected >= read.rows)))
        if not bad.size:
            continue
        node = _first(bad, linearized)
        tree, old = int(linearized.tree_of[node]), int(linearized.old_id[node])
        if words[node] < 0:
            error = missing_token_error(read.param, read.span, read.input, tree, old,
                                        executable.cx_source)
        else:
            error = token_outside_error(read.param, read.span, int(selected[node]), read.rows,
                                        tree, old, executable.cx_source)
        found.append((tree, node, order, error))
    if found:
        raise min(found, key=lambda item: item[:3])[3]
    for which, rows in checks.kernel_reads:
        bad = np.flatnonzero(node_mask(Nodes(which), linearized) & (words >= rows))
        if not bad.size:
            continue
        node = _first(bad, linearized)
        tree, old = int(linearized.tree_of[node]), int(linearized.old_id[node])
        raise user_error("E0555", f"structure {tree}, node {old}: token id {int(words[node])} "
                         f"is outside the embedding table of {rows} rows (the compiled model "
                         "reads the token of this node, though its result is not used)",
                         hint="build the vocabulary to fit the model's size, or raise the "
                              "size with -D", source=executable.cx_source,
                         error_class=InputError)


def _first(bad: np.ndarray, linearized: Linearized) -> int:
    """The first of the nodes `bad`: by structure, then children before parents."""
    return int(bad[np.lexsort((bad, linearized.tree_of[bad]))[0]])

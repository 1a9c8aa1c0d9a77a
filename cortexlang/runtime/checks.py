"""Host-side checks of a compiled run: the interpreter's errors for the same mistakes.

The compiled model must reject what the interpreter rejects, with the same error code, before
anything reaches the device:

- weights: `checked_weights` is the interpreter's own check (E0530 a missing parameter, E0535
  one that is not floating point, E0532 one of the wrong shape);
- tokens: the kernels read a node's token as `imax(word, 0)` (see passes/lower_loops.py), so a
  node without a token would silently read row 0, and a token past its table would read
  outside it. `check_tokens` finds, with the interpreter's semantics, every node where a
  lookup reads a token, and raises the interpreter's E0554 (no token there) or E0555 (a token
  outside the table) naming the structure and the node;
- device limits: `check_allocations` raises `EnvironmentProblem` E0604 for a weight buffer
  (a parameter, a hoisted uniform, a leaf table) larger than the device allows in one
  allocation, naming it, its bytes and the limit, instead of a failure inside pyopencl.

Where a lookup reads a token, as the interpreter evaluates it: at the nodes its rule runs on
(the leaf rule where a node has no children, the internal rule elsewhere; an output at each
structure's root or at every node), only on the side of `... if CONDITION else ...` that the
node takes, and inside a reduction over children only at nodes that have a child.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from cortexlang.errors import Diagnostic, EnvironmentProblem, InputError, user_error
from cortexlang.interp.evaluate import missing_token_error, token_outside_error
from cortexlang.interp.interpreter import checked_parameters
from cortexlang.ir import checked as ir
from cortexlang.ir.recursive import RecursiveProgram
from cortexlang.runtime.devices import DeviceInfo
from cortexlang.runtime.linearize import Linearized

_COMPARE: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


def checked_weights(program: ir.CheckedProgram,
                    weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every parameter as float32, checked as the interpreter checks it (E0530, E0535,
    E0532)."""
    return checked_parameters(program, weights, np.dtype(np.float32))


# -- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TokenRead:
    """A lookup and the (linearized) nodes at which the interpreter evaluates it."""

    lookup: ir.Lookup
    nodes: np.ndarray   # bool [num_nodes]


def token_reads(program: ir.CheckedProgram, linearized: Linearized) -> list[TokenRead]:
    """Every lookup of the program with the nodes where it reads a token, in the order the
    interpreter meets them at one node (leaf or internal rule, then outputs)."""
    walker = _Walker(linearized)
    leaf = linearized.num_children == 0
    for rule, nodes in ((program.leaf, leaf), (program.internal, ~leaf)):
        for statement in rule.statements:
            walker.walk(statement.value, nodes, {})
    roots = np.zeros(linearized.num_nodes, dtype=bool)
    roots[linearized.roots] = True
    everywhere = np.ones(linearized.num_nodes, dtype=bool)
    for output in program.outputs:
        walker.walk(output.value, roots if output.selector == "root" else everywhere, {})
    return walker.reads


class _Walker:
    """Walks expressions with the mask of nodes at which each one is evaluated."""

    def __init__(self, linearized: Linearized) -> None:
        self.children = linearized.children
        self.num_children = linearized.num_children
        self.reads: list[TokenRead] = []

    def walk(self, expression: ir.TypedExpr, nodes: np.ndarray, bound: dict[str, int]) -> None:
        if not nodes.any():
            return
        if isinstance(expression, ir.Lookup):
            self.reads.append(TokenRead(expression, nodes))
        elif isinstance(expression, ir.Select):
            holds = self.holds(expression.condition, bound)
            self.walk(expression.then, nodes & holds, bound)
            self.walk(expression.otherwise, nodes & ~holds, bound)
        elif isinstance(expression, ir.ChildReduce):
            # The body runs once per existing child, with the reduction's variable bound to it.
            for column in range(self.children.shape[1]):
                self.walk(expression.body, nodes & (self.children[:, column] >= 0),
                          {**bound, expression.var: column})
        else:
            for part in _parts(expression):
                self.walk(part, nodes, bound)

    def holds(self, condition: ir.Condition, bound: dict[str, int]) -> np.ndarray:
        """Per node, whether a structural condition is true (see `NodeEvaluator.holds`)."""
        if isinstance(condition, ir.NumChildrenCompare):
            return np.asarray(_COMPARE[condition.op](self.num_children, condition.value))
        if condition.child is None:
            return np.asarray(self.num_children == 0)
        if isinstance(condition.child, ir.ChildVar):
            column = bound[condition.child.var]
        else:
            column = condition.child.index
        if column >= self.children.shape[1]:
            return np.zeros(self.children.shape[0], dtype=bool)
        child = self.children[:, column]
        present = child >= 0
        # A leaf is a node: a missing child is not one.
        return present & (self.num_children[np.where(present, child, 0)] == 0)


def _parts(expression: ir.TypedExpr) -> Iterator[ir.TypedExpr]:
    """The expressions directly inside `expression`."""
    for field in fields(expression):
        value = getattr(expression, field.name)
        if isinstance(value, tuple):
            yield from (part for part in value if isinstance(part, ir.TypedExpr))
        elif isinstance(value, ir.TypedExpr):
            yield value


def _token_input(index: ir.IndexExpr) -> str:
    return index.input if isinstance(index, ir.TokenIndex) else _token_input(index.index)


def _table_rows(index: ir.IndexExpr, words: np.ndarray) -> np.ndarray:
    """The row a token index selects, for tokens >= 0."""
    if isinstance(index, ir.TokenIndex):
        return words
    return _table_rows(index.index, words) % index.modulus


def leaf_token_rows(program: ir.CheckedProgram) -> int | None:
    """When the program reads tokens only in its leaf rule, at every leaf (no lookup under a
    condition, a reduction over children, in the internal rule or in an output): the fewest
    rows of the tables those lookups read (a large number when every lookup is modular, or
    there is none). Then a batch whose leaves all carry a token below that count passes
    `check_tokens` without the walk. None otherwise."""
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


def check_tokens(program: ir.CheckedProgram, linearized: Linearized,
                 kernel_reads: Sequence[tuple[np.ndarray, int]] = ()) -> None:
    """Raise the interpreter's `InputError` where a lookup reads a token a node does not have
    (E0554) or one outside its table (E0555), at the first such node (by structure, then
    children before parents).

    kernel_reads: (nodes, rows) pairs, where the kernels read a table of `rows` rows at the
    token of `nodes`, whether or not the interpreter would (both branches of a select run
    in a kernel). A token there past the table is refused too (E0555): the kernels do not
    bound it, and would read outside the table."""
    words = linearized.words
    if not words.size:
        return
    found: list[tuple[int, int, int, InputError]] = []
    for order, read in enumerate(token_reads(program, linearized)):
        rows = program.param(read.lookup.param).shape[0]
        present = words >= 0
        selected = _table_rows(read.lookup.index, np.where(present, words, 0))
        bad = np.flatnonzero(read.nodes & (~present | (selected >= rows)))
        if not bad.size:
            continue
        node = int(bad[np.lexsort((bad, linearized.tree_of[bad]))[0]])
        tree, old = int(linearized.tree_of[node]), int(linearized.old_id[node])
        if words[node] < 0:
            error = missing_token_error(program, read.lookup, _token_input(read.lookup.index),
                                        tree, old)
        else:
            error = token_outside_error(program, read.lookup, int(selected[node]), rows,
                                        tree, old)
        found.append((tree, node, order, error))
    if found:
        raise min(found, key=lambda item: item[:3])[3]
    for nodes, rows in kernel_reads:
        bad = np.flatnonzero(nodes & (words >= rows))
        if not bad.size:
            continue
        node = int(bad[np.lexsort((bad, linearized.tree_of[bad]))[0]])
        tree, old = int(linearized.tree_of[node]), int(linearized.old_id[node])
        raise user_error("E0555", f"structure {tree}, node {old}: token id {int(words[node])} "
                         f"is outside the embedding table of {rows} rows (the compiled model "
                         "reads the token of this node, though its result is not used)",
                         hint="build the vocabulary to fit the model's size, or raise the "
                              "size with -D", source=program.source, error_class=InputError)


# -- device limits -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightBuffer:
    """A device buffer that `bind_weights` fills: its name, what it holds (for messages),
    its size, and how to make it smaller."""

    name: str
    what: str
    nbytes: int
    fix: str


def weight_buffers(program: RecursiveProgram,
                   kernel_buffers: Sequence[str] | set[str]) -> list[WeightBuffer]:
    """Every buffer the weights fill, at its exact size (float32)."""
    sizes = "make the model smaller with -D"
    buffers: list[WeightBuffer] = []
    for param in program.params:
        nbytes = 4 * int(np.prod(param.shape, dtype=np.int64))
        what = f"parameter `{param.name}` {list(param.shape)}"
        buffers.append(WeightBuffer(f"param:{param.name}", what, nbytes, sizes))
        if f"param_t:{param.name}" in kernel_buffers:
            # Its transposed copy (see passes/lower_loops.py): as large, reported once.
            buffers.append(WeightBuffer(f"param_t:{param.name}", what, nbytes, sizes))
    for op in program.uniforms:
        buffers.append(WeightBuffer(
            f"uniform:{op.name}", f"the hoisted value `{op.name}` {list(op.shape)}",
            4 * int(np.prod(op.shape, dtype=np.int64)),
            f"{sizes}, or compile with --disable hoist_invariants"))
    if program.table_rule is not None:
        for state, _ in program.table_rule.results:
            shape = (program.table_rows, *program.state_shape(state))
            buffers.append(WeightBuffer(
                f"uniform:leaf_{state}", f"the leaf table of `{state}` {list(shape)}",
                4 * int(np.prod(shape, dtype=np.int64)),
                f"{sizes}, or compile with --disable tabulate_leaves"))
    return buffers


def check_allocations(buffers: Sequence[WeightBuffer], info: DeviceInfo) -> None:
    """`EnvironmentProblem` E0604, one diagnostic per buffer larger than the device's
    largest allocation (`max_mem_alloc_size`; not checked when the device does not say)."""
    limit = int(info.max_mem_alloc_size or 0)
    if not limit:
        return
    diagnostics = list(dict.fromkeys(Diagnostic(
        "E0604", f"{buffer.what} takes {buffer.nbytes} bytes ({_gib(buffer.nbytes)}), more "
                 f"than the {limit} bytes ({_gib(limit)}) that the device "
                 f"{info.device_name} allows in one allocation", None, "",
        f"{buffer.fix}, or use a device that allows larger allocations (see `cortexlang "
        "devices`)") for buffer in buffers if buffer.nbytes > limit))
    if diagnostics:
        raise EnvironmentProblem(diagnostics)


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB"

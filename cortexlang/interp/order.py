"""Which order the interpreter visits nodes in, and whether a structure is fit to run.

A node can be computed once all its children are. Any order with children before parents
gives the same values (P3: siblings are independent), so the interpreter uses the cheapest
valid one: the ids themselves when every child id is below its parent's (the PTB reader's
post-order numbering, the generators' grids and sequences), else an iterative depth-first
post-order. Never Python recursion per node: a chain of 100,000 nodes must not overflow the
stack. In a DAG a node shared by two parents is visited once.
"""

from __future__ import annotations

import numpy as np

from cortexlang.errors import Diagnostic, InputError
from cortexlang.inputs.structure import Structure
from cortexlang.ir import checked as ir

_NEW, _OPEN, _DONE = 0, 1, 2


def structure_error(code: str, message: str, hint: str = "") -> InputError:
    """An `InputError` about an input structure (no source location: inputs are arrays)."""
    return InputError(Diagnostic(code, message, None, "", hint))


def validate_structure(structure: Structure, info: ir.StructureInfo, index: int) -> None:
    """Reject a structure the model cannot run on: bad arrays, child ids outside the
    structure (E0551), or a present child beyond the model's `max_children` (E0550).

    `index` is the structure's position in the batch, for the message. Cycles are found by
    `evaluation_order` (E0552).
    """
    children = structure.children
    where = f"structure {index}"
    if children.ndim != 2 or children.shape[1] < 1:
        raise structure_error("E0551", f"{where}: children must be an [N, K] array with K >= 1, "
                              f"not of shape {list(children.shape)}")
    count = children.shape[0]
    if count == 0:
        raise structure_error("E0551", f"{where} has no nodes")
    if not np.issubdtype(children.dtype, np.integer):
        raise structure_error("E0551", f"{where}: child ids must be integers, "
                              f"not {children.dtype}")
    outside = (children < -1) | (children >= count)
    if outside.any():
        node, column = (int(v) for v in np.argwhere(outside)[0])
        raise structure_error(
            "E0551", f"{where}, node {node}: child {column} is {int(children[node, column])}, "
                     f"outside the structure's {count} nodes",
            "child ids run from 0 to N-1; -1 marks a missing child")
    if children.shape[1] > info.max_children:
        beyond = (children[:, info.max_children:] >= 0).any(axis=1)
        if beyond.any():
            node = int(np.flatnonzero(beyond)[0])
            arity = int((children[node] >= 0).sum())
            raise structure_error(
                "E0550", f"{where}, node {node} has {arity} children in "
                         f"{children.shape[1]} slots, but the model's {info.kind} allows at "
                         f"most {info.max_children}",
                "raise max_children in the model's structure declaration, or split the node")
    if not 0 <= structure.root < count:
        raise structure_error("E0551", f"{where}: root {structure.root} is outside its "
                              f"{count} nodes")
    if structure.words.shape != (count,):
        raise structure_error("E0551", f"{where}: words must hold one id per node ({count}), "
                              f"not shape {list(structure.words.shape)}")


def evaluation_order(structure: Structure, index: int) -> list[int]:
    """Every node id once, children before parents. Raises E0552 on a cycle.

    Expects a structure that passed `validate_structure`.
    """
    children = structure.children
    count = children.shape[0]
    ids = np.arange(count)[:, None]
    if bool((children < ids).all()):
        # Ids already run children first (missing children, -1, are below every id).
        return list(range(count))
    rows = children.tolist()
    status = bytearray(count)
    order: list[int] = []
    for start in range(count):
        if status[start] != _NEW:
            continue
        status[start] = _OPEN
        stack = [(start, 0)]
        while stack:
            node, position = stack[-1]
            row = rows[node]
            if position == len(row):
                stack.pop()
                status[node] = _DONE
                order.append(node)
                continue
            stack[-1] = (node, position + 1)
            child = row[position]
            if child < 0 or status[child] == _DONE:
                continue
            if status[child] == _OPEN:
                raise structure_error(
                    "E0552", f"structure {index} has a cycle through node {child}",
                    "a node may only depend on its children; trees and DAGs have no cycles")
            status[child] = _OPEN
            stack.append((child, 0))
    return order

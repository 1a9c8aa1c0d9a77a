"""The unrolled order of a run (recursive unrolling, `passes/unroll_recursion.py`).

From the linearizer's height order, regroup the nodes so that one step covers two heights:

- a node of odd height 2k-1 whose one parent has height 2k is *inlined*: it belongs to its
  parent's group, before it (inlined children in child-position order);
- every other node heads a group of its own, in step ceil(height / 2): the leaves are step
  0, heights 1 and 2 step 1, heights 3 and 4 step 2, ...

Each step is a contiguous id range (a batch) and each group a contiguous id range inside it,
so every child id is still below its parent's, the leaves are still ids [0, num_leaves), and
within a step the groups keep the order (structure, original id) of their heads. A node with
two parents (a DAG input) is never inlined. Without dynamic batching each group is a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Grouped:
    """order: original global ids in the new order. height: each position's height.
    batch_len: nodes per batch (step). group_start: int32 [num_groups + 1], the first id of
    each group, then the number of nodes. batch_groups: int32 [num_batches + 1], the first
    group of each batch, then the number of groups."""

    order: np.ndarray
    height: np.ndarray
    batch_len: np.ndarray
    group_start: np.ndarray
    batch_groups: np.ndarray


def unrolled_order(children: np.ndarray, order: np.ndarray, level_sizes: np.ndarray,
                   dynamic_batching: bool) -> Grouped:
    """Regroup the height `order` (original global ids; `children` int64 [total, width] with
    `total` for an empty position) into unrolled steps (module docstring)."""
    total = int(order.shape[0])
    height = np.empty(total, dtype=np.int64)
    height[order] = np.repeat(np.arange(level_sizes.shape[0], dtype=np.int64), level_sizes)
    rows, columns = np.nonzero(children < total)
    child_ids = children[rows, columns]
    in_degree = np.bincount(child_ids, minlength=total)
    parent = np.full(total, -1, dtype=np.int64)
    parent[child_ids] = rows
    position = np.full(total, children.shape[1], dtype=np.int64)
    position[child_ids] = columns
    has_parent = parent >= 0
    parent_height = np.where(has_parent, height[np.maximum(parent, 0)], -1)
    inlined = (height % 2 == 1) & (in_degree == 1) & (parent_height == height + 1)
    head = np.where(inlined, parent, np.arange(total, dtype=np.int64))
    step = (height[head] + 1) // 2
    position = np.where(inlined, position, children.shape[1])
    new_order = np.lexsort((position, head, step)) if total else np.zeros(0, dtype=np.int64)
    heads = head[new_order]
    first = np.flatnonzero(np.concatenate([[True], heads[1:] != heads[:-1]])) if total else \
        np.zeros(0, dtype=np.int64)
    group_start = np.append(first, total).astype(np.int32)
    if dynamic_batching:
        steps = step[new_order]
        batch_len = np.bincount(steps, minlength=1).astype(np.int32) if total else \
            np.zeros(0, dtype=np.int32)
        groups_per_batch = np.bincount(steps[first], minlength=batch_len.shape[0])
    else:
        batch_len = np.diff(group_start).astype(np.int32)
        groups_per_batch = np.ones(first.shape[0], dtype=np.int64)
    batch_groups = np.zeros(batch_len.shape[0] + 1, dtype=np.int32)
    np.cumsum(groups_per_batch, out=batch_groups[1:])
    return Grouped(new_order, height[new_order].astype(np.int32), batch_len, group_start,
                   batch_groups)

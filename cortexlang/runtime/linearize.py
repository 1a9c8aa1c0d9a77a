"""The linearizer: a batch of input structures to flat, height-ordered index arrays.

Run on the host before any tensor work. It merges the structures of a batch, computes every
node's height (leaves 0; an internal node 1 + the largest height of its children; for a DAG
the longest path from a source), and renumbers the nodes so that

- all nodes of one height, across all structures, form one batch: a contiguous id range;
- batches come in increasing height, so every child id is smaller than its parent's id;
- the leaves (height 0) are ids [0, num_leaves), so `isleaf(n)` is `n < num_leaves`;
- inside a batch, nodes keep the order (structure, original id).

With `dynamic_batching=False` the order is the same but every node is a batch of its own.
Per-node inputs (words, labels, features) are permuted into the new order.

With `unroll_depth=2` (recursive unrolling) a batch is a *step* of two heights, made of groups:
a node of odd height whose one parent is one higher comes just before that parent, in its
group; see `runtime/groups.py`. Every invariant above holds but one: heights inside a batch
are no longer sorted.

Heights are computed by a frontier sweep over all structures at once: each numpy step
finishes one height for the whole batch, so the work is vectorised over nodes and the number
of Python steps is the height of the highest structure plus one.

Small batches (at most `SMALL_INPUT_NODES` nodes: a latency run's one or ten sentences) take
a fast path instead: the same sweep over plain Python lists, then a handful of numpy calls to
build the arrays. Each numpy call costs about a microsecond whatever its size, and the sweep
makes dozens per height, so for a few dozen nodes the lists win by several times
(`python -m benchmarks.linearize_micro` measures both). The result is the same, array for
array; an input the fast path finds malformed goes to the general path, which raises the
located error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cortexlang.inputs import input_error
from cortexlang.inputs.structure import NO_LABEL, Structure
from cortexlang.runtime.groups import unrolled_order

SMALL_INPUT_NODES = 160
"""Batches of at most this many nodes take the small-input fast path (0: never)."""


@dataclass(frozen=True, eq=False)
class Linearized:
    """The linearized batch. Node ids are the new ids unless a field says otherwise.

    children:     int32 [num_nodes, max_children] new child ids, -1 where a position is empty
                  (positions are kept: a grid cell's `[left, up]` may be `[-1, up]`).
    num_children: int32 [num_nodes] present children per node.
    height:       int32 [num_nodes], non-decreasing (unrolled: non-decreasing per batch of
                  two heights).
    batch_start, batch_len: int32 [num_batches]: batch b is ids
                  batch_start[b] .. batch_start[b] + batch_len[b] - 1.
    words:        int32 [num_nodes] (-1: none). labels: int32 [num_nodes] (-1: none).
    features:     float32 [num_nodes, F], or None when the structures have none.
    roots:        int32 [num_trees] the new id of each structure's root.
    tree_of, old_id: int32 [num_nodes] the structure and original id of each new node.
    new_id:       int32 [total] the new id of original node `node_offset[t] + old id`.
    node_offset:  int32 [num_trees + 1] where each structure starts in `new_id`.
    seconds:      wall time of `linearize` itself.
    unroll_depth: heights per batch: 1, or 2 when the recursion is unrolled; then
    group_start:  int32 [num_groups + 1] the first id of each group (the nodes one work-item
                  computes in order: inlined children, then their parent), then num_nodes;
    batch_groups: int32 [num_batches + 1] the first group of each batch, then num_groups.
                  Both are None when unroll_depth is 1.
    """

    num_nodes: int
    num_leaves: int
    max_children: int
    children: np.ndarray
    num_children: np.ndarray
    height: np.ndarray
    batch_start: np.ndarray
    batch_len: np.ndarray
    words: np.ndarray
    features: np.ndarray | None
    labels: np.ndarray
    roots: np.ndarray
    tree_of: np.ndarray
    old_id: np.ndarray
    new_id: np.ndarray
    node_offset: np.ndarray
    seconds: float
    max_batch_len: int
    dynamic_batching: bool = True
    unroll_depth: int = 1
    group_start: np.ndarray | None = None
    batch_groups: np.ndarray | None = None

    @property
    def num_groups(self) -> int:
        return int(self.group_start.shape[0]) - 1 if self.group_start is not None else \
            self.num_nodes

    @property
    def num_batches(self) -> int:
        return int(self.batch_start.shape[0])

    @property
    def num_trees(self) -> int:
        return int(self.roots.shape[0])

    def describe(self, *, max_batches: int = 12) -> str:
        """A short text summary: sizes, timing, then one line per batch (the first few)."""
        lines = [
            f"{self.num_trees} structures, {self.num_nodes} nodes ({self.num_leaves} leaves), "
            f"max_children {self.max_children}",
            f"{self.num_batches} batches ({'dynamic' if self.dynamic_batching else 'one node'}"
            f" batching{', unrolled by 2' if self.unroll_depth == 2 else ''}), largest "
            f"{self.max_batch_len} nodes, "
            f"highest {int(self.height.max(initial=0))}",
            f"linearized in {self.seconds * 1e3:.3f} ms",
        ]
        shown = min(self.num_batches, max_batches)
        for batch in range(shown):
            start = int(self.batch_start[batch])
            length = int(self.batch_len[batch])
            kind = "leaves" if start < self.num_leaves else "internal"
            heights = self.height[start:start + length]
            height = f"height {int(heights.min())}" if heights.min() == heights.max() else \
                f"heights {int(heights.min())}-{int(heights.max())}"
            groups = "" if self.batch_groups is None else \
                f", {int(self.batch_groups[batch + 1] - self.batch_groups[batch])} groups"
            lines.append(f"  batch {batch:>4}: ids {start}..{start + length - 1} "
                         f"({length} nodes{groups}, {height}, {kind})")
        if shown < self.num_batches:
            lines.append(f"  ... {self.num_batches - shown} more batches")
        return "\n".join(lines)


def linearize(structures: Sequence[Structure], *, max_children: int,
              dynamic_batching: bool = True, unroll_depth: int = 1) -> Linearized:
    """Linearize a batch of structures (see the module docstring for the order), one height
    per batch, or with `unroll_depth` 2 two (recursive unrolling).

    Raises `InputError` E0550 when a node uses a child position >= `max_children`, E0551 for
    a child id or root outside its structure, E0552 for a cycle, and E0553 when features are
    given for some structures only, or with different widths.
    """
    started = time.perf_counter()
    if max_children < 1:
        raise ValueError("max_children must be at least 1")
    if unroll_depth not in (1, 2):
        raise ValueError("unroll_depth must be 1 or 2")
    if sum(structure.children.shape[0] for structure in structures) <= SMALL_INPUT_NODES:
        fast = _linearize_small(structures, max_children, dynamic_batching, started,
                                unroll_depth)
        if fast is not None:
            return fast
    count = len(structures)
    sizes = np.fromiter((structure.children.shape[0] for structure in structures),
                        dtype=np.int64, count=count)
    node_offset = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes, out=node_offset[1:])
    total = int(node_offset[-1])
    roots = np.fromiter((structure.root for structure in structures), dtype=np.int64,
                        count=count)
    bad_root = np.flatnonzero((roots < 0) | (roots >= sizes))
    if bad_root.size:
        tree = int(bad_root[0])
        raise input_error("E0551", f"the root {int(roots[tree])} of {_name(structures, tree)} "
                          f"is not one of its {int(sizes[tree])} nodes")
    features = _merged_features(structures)
    # Row `total` is a sentinel standing for "no child": empty positions point at it.
    children = _merged_children(structures, sizes, node_offset, max_children)
    present = children < total
    num_children = present.sum(axis=1, dtype=np.int32)
    levels = _levels(children, present, num_children, total, structures, node_offset)
    order = np.concatenate(levels) if levels else np.zeros(0, dtype=np.int64)
    level_sizes = np.fromiter((level.shape[0] for level in levels), dtype=np.int32,
                              count=len(levels))
    return _assemble(structures, sizes, node_offset, roots, features, children, num_children,
                     order, level_sizes, max_children, dynamic_batching, started, unroll_depth)


def _assemble(structures: Sequence[Structure], sizes: np.ndarray, node_offset: np.ndarray,
              roots: np.ndarray, features: np.ndarray | None, children: np.ndarray,
              num_children: np.ndarray, order: np.ndarray, level_sizes: np.ndarray,
              max_children: int, dynamic_batching: bool, started: float,
              unroll_depth: int = 1) -> Linearized:
    """The Linearized batch from the merged inputs (original global ids; `children` int64
    with `total` for an empty position), the height order and the nodes per height."""
    count = len(structures)
    total = int(node_offset[-1])
    height = np.repeat(np.arange(level_sizes.shape[0], dtype=np.int32), level_sizes)
    batch_len = level_sizes if dynamic_batching else np.ones(total, dtype=np.int32)
    grouped = None
    if unroll_depth == 2:
        grouped = unrolled_order(children, order, level_sizes, dynamic_batching)
        order, height, batch_len = grouped.order, grouped.height, grouped.batch_len
    new_id = np.empty(total + 1, dtype=np.int32)
    new_id[order] = np.arange(total, dtype=np.int32)
    new_id[total] = -1
    batch_start = np.zeros(batch_len.shape[0], dtype=np.int32)
    np.cumsum(batch_len[:-1], out=batch_start[1:])
    tree_of = np.repeat(np.arange(count, dtype=np.int32), sizes)[order]
    return Linearized(
        num_nodes=total,
        num_leaves=int(level_sizes[0]) if level_sizes.shape[0] else 0,
        max_children=max_children,
        children=new_id[children[order]],
        num_children=num_children[order],
        height=height,
        batch_start=batch_start,
        batch_len=batch_len,
        words=_concatenate_words(structures)[order],
        features=None if features is None else features[order],
        labels=_concatenate_labels(structures, sizes)[order],
        roots=new_id[node_offset[:-1] + roots],
        tree_of=tree_of,
        old_id=(order - node_offset[:-1][tree_of]).astype(np.int32),
        new_id=new_id[:total],
        node_offset=node_offset.astype(np.int32),
        seconds=time.perf_counter() - started,
        max_batch_len=int(batch_len.max(initial=0)),
        dynamic_batching=dynamic_batching,
        unroll_depth=unroll_depth,
        group_start=None if grouped is None else grouped.group_start,
        batch_groups=None if grouped is None else grouped.batch_groups,
    )


def _linearize_small(structures: Sequence[Structure], max_children: int,
                     dynamic_batching: bool, started: float,
                     unroll_depth: int = 1) -> Linearized | None:
    """`linearize` for a small batch over Python lists (module docstring), or None when the
    input is malformed in any way the general path reports (a root or child out of range, a
    child beyond `max_children`, a cycle, features on some structures only)."""
    widths = {structure.children.shape[1] for structure in structures
              if structure.children.ndim == 2}
    if len(widths) != 1 or any(structure.children.ndim != 2 for structure in structures):
        return None                  # no structure, or mixed widths: the general path
    sizes = np.array([structure.children.shape[0] for structure in structures],
                     dtype=np.int64)
    offsets = np.zeros(len(structures) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    total = int(offsets[-1])
    roots = np.array([structure.root for structure in structures], dtype=np.int64)
    local = np.concatenate([structure.children for structure in structures]).astype(np.int64)
    if local.shape[1] > max_children:
        if total and local[:, max_children:].max() >= 0:
            return None
        local = local[:, :max_children]
    row_size = np.repeat(sizes, sizes)[:, None]
    if (roots < 0).any() or (roots >= sizes).any() or (local < -1).any() or \
            (local >= row_size).any():
        return None
    children = np.full((total, max_children), total, dtype=np.int64)
    children[:, :local.shape[1]] = np.where(local >= 0,
                                            local + np.repeat(offsets[:-1], sizes)[:, None],
                                            total)
    with_features = [s.features for s in structures if s.features is not None]
    if with_features and (len(with_features) < len(structures)
                          or len({array.shape[1] for array in with_features}) > 1):
        return None
    kids = children.tolist()
    # Kahn's sweep: a node is ready when its last child is done; its height is one more
    # than its highest child's.
    parents: list[list[int]] = [[] for _ in range(total)]
    waiting = [0] * total
    for node, row in enumerate(kids):
        for child in row:
            if child != total:
                parents[child].append(node)
                waiting[node] += 1
    num_children = np.array(waiting, dtype=np.int32)
    height = [0] * total
    ready = [node for node in range(total) if waiting[node] == 0]
    for node in ready:               # grows while it is walked
        above = height[node] + 1
        for parent in parents[node]:
            if height[parent] < above:
                height[parent] = above
            waiting[parent] -= 1
            if waiting[parent] == 0:
                ready.append(parent)
    if len(ready) < total:
        return None                  # a cycle
    order = np.array(sorted(range(total), key=height.__getitem__), dtype=np.int64)
    level_sizes = np.bincount(np.array(height, dtype=np.int64), minlength=1).astype(
        np.int32) if total else np.zeros(0, dtype=np.int32)
    features = (np.concatenate(with_features).astype(np.float32, copy=False)
                if with_features else None)
    return _assemble(structures, sizes, offsets, roots, features, children, num_children,
                     order, level_sizes, max_children, dynamic_batching, started, unroll_depth)


def _name(structures: Sequence[Structure], tree: int) -> str:
    meta = structures[tree].meta
    if "path" in meta and "line" in meta:
        return f"structure {tree} ({meta['path']}:{meta['line']})"
    return f"structure {tree}"


def _merged_children(structures: Sequence[Structure], sizes: np.ndarray,
                     node_offset: np.ndarray, max_children: int) -> np.ndarray:
    """int64 [total, max_children] global child ids, `total` where a position is empty."""
    total = int(node_offset[-1])
    widths = {structure.children.shape[1] for structure in structures}
    width = max(widths, default=max_children)
    if len(widths) <= 1:
        local = (np.concatenate([structure.children for structure in structures])
                 if structures else np.zeros((0, width), dtype=np.int32))
    else:
        local = np.full((total, width), -1, dtype=np.int32)
        for tree, structure in enumerate(structures):
            start = int(node_offset[tree])
            local[start:start + structure.children.shape[0], :structure.children.shape[1]] = (
                structure.children)
    row_size = np.repeat(sizes, sizes)
    bad = (local < -1) | (local >= row_size[:, None])
    if bad.any():
        row, position = (int(value) for value in np.argwhere(bad)[0])
        tree = int(np.searchsorted(node_offset, row, side="right")) - 1
        raise input_error(
            "E0551", f"node {row - int(node_offset[tree])} of {_name(structures, tree)} has "
            f"child {int(local[row, position])}, outside its {int(sizes[tree])} nodes",
            hint="child ids are 0..N-1 of the same structure, or -1 for none")
    if width > max_children:
        extra = np.argwhere(local[:, max_children:] >= 0)
        if extra.size:
            row, position = int(extra[0][0]), int(extra[0][1]) + max_children
            tree = int(np.searchsorted(node_offset, row, side="right")) - 1
            raise input_error(
                "E0550", f"node {row - int(node_offset[tree])} of {_name(structures, tree)} "
                f"has a child at position {position}, but the model takes at most "
                f"{max_children} children",
                hint=f"declare max_children >= {position + 1} in the model, or binarize the "
                     "input trees")
        local = local[:, :max_children]
    merged = np.full((total, max_children), total, dtype=np.int64)
    offset_of_row = node_offset[:-1].repeat(sizes)
    np.add(local, offset_of_row[:, None], out=merged[:, :local.shape[1]],
           where=local >= 0)
    return merged


def _levels(children: np.ndarray, present: np.ndarray, num_children: np.ndarray, total: int,
            structures: Sequence[Structure], node_offset: np.ndarray) -> list[np.ndarray]:
    """The node ids of each height, each sorted, by a frontier sweep (module docstring)."""
    rows, _ = np.nonzero(present)
    child_ids = children[present]
    in_degree = np.bincount(child_ids, minlength=total)
    single_parent = total == 0 or int(in_degree.max(initial=0)) <= 1
    if single_parent:
        parent = np.full(total, -1, dtype=np.int64)
        parent[child_ids] = rows
    else:
        by_child = np.argsort(child_ids, kind="stable")
        parents_by_child = rows[by_child]
        first_parent = np.zeros(total + 1, dtype=np.int64)
        np.cumsum(in_degree, out=first_parent[1:])
    done = np.zeros(total + 1, dtype=bool)
    done[total] = True
    owner = np.empty(total, dtype=np.int64)
    frontier = np.flatnonzero(num_children == 0)
    levels: list[np.ndarray] = []
    finished = 0
    while frontier.size:
        done[frontier] = True
        levels.append(frontier)
        finished += frontier.size
        if single_parent:
            candidates = parent[frontier]
            candidates = candidates[candidates >= 0]
        else:
            counts = in_degree[frontier]
            starts = np.repeat(first_parent[frontier] - np.cumsum(counts) + counts, counts)
            candidates = parents_by_child[starts + np.arange(starts.shape[0])]
        if not candidates.size:
            break
        positions = np.arange(candidates.shape[0])
        owner[candidates] = positions
        candidates = candidates[owner[candidates] == positions]
        frontier = candidates[done[children[candidates]].all(axis=1)]
        frontier.sort()
    if finished < total:
        node = int(np.flatnonzero(~done[:total])[0])
        tree = int(np.searchsorted(node_offset, node, side="right")) - 1
        raise input_error(
            "E0552", f"{_name(structures, tree)} has a cycle: node "
            f"{node - int(node_offset[tree])} depends on itself through its children",
            hint="trees and DAGs must be acyclic; check the child ids")
    return levels


def _concatenate_words(structures: Sequence[Structure]) -> np.ndarray:
    if not structures:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate([structure.words for structure in structures]).astype(
        np.int32, copy=False)


def _concatenate_labels(structures: Sequence[Structure], sizes: np.ndarray) -> np.ndarray:
    parts = [structure.labels if structure.labels is not None
             else np.full(int(size), NO_LABEL, dtype=np.int32)
             for structure, size in zip(structures, sizes, strict=True)]
    if not parts:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate(parts).astype(np.int32, copy=False)


def _merged_features(structures: Sequence[Structure]) -> np.ndarray | None:
    """float32 [total, F] features in the original order, or None when no structure has any."""
    arrays = [structure.features for structure in structures if structure.features is not None]
    if not arrays:
        return None
    if len(arrays) < len(structures):
        tree = next(tree for tree, structure in enumerate(structures)
                    if structure.features is None)
        raise input_error("E0553", f"{_name(structures, tree)} has no features, but others "
                          "in the batch do", hint="give every structure of a batch features")
    widths = {array.shape[1] for array in arrays}
    if len(widths) > 1:
        raise input_error("E0553", f"the structures of the batch have features of different "
                          f"widths {sorted(widths)}", hint="use one feature width per batch")
    return np.concatenate(arrays).astype(np.float32, copy=False)

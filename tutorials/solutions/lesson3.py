"""Solutions to lesson 3: linearization and dynamic batching."""

from __future__ import annotations

import numpy as np


def heights(structure):
    """Leaves 0; any other node 1 + the largest height of its children (for a DAG: the
    longest path from a source). Memoised, so a DAG's shared nodes are computed once."""
    children = structure.children.tolist()
    memo: dict[int, int] = {}

    def height(node: int) -> int:
        if node not in memo:
            present = [child for child in children[node] if child >= 0]
            memo[node] = 1 + max(height(child) for child in present) if present else 0
        return memo[node]

    return np.array([height(node) for node in range(structure.num_nodes)], dtype=np.int32)


def new_ids(structures):
    """Merge the structures (structure 0's nodes first), then sort by (height, merged id):
    a stable sort by height keeps the (structure, original id) order inside each height."""
    merged_heights = np.concatenate([heights(structure) for structure in structures])
    order = np.argsort(merged_heights, kind="stable")      # order[new] = merged old id
    new = np.empty_like(order)
    new[order] = np.arange(order.shape[0])
    return new.astype(np.int32)


def my_linearize(structures, max_children):
    """The linearizer's arrays, from heights and new ids."""
    sizes = [structure.num_nodes for structure in structures]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    new = new_ids(structures)
    order = np.argsort(new)                                  # order[new id] = merged old id
    merged_heights = np.concatenate([heights(structure) for structure in structures])
    children = np.full((offsets[-1], max_children), -1, dtype=np.int32)
    for tree, structure in enumerate(structures):
        local = structure.children[:, :max_children]
        rows = new[offsets[tree]:offsets[tree + 1]]
        children[rows, :local.shape[1]] = np.where(local >= 0, new[local + offsets[tree]], -1)
    height = merged_heights[order].astype(np.int32)
    batch_len = np.bincount(height).astype(np.int32)
    batch_start = np.concatenate([[0], np.cumsum(batch_len)[:-1]]).astype(np.int32)
    words = np.concatenate([structure.words for structure in structures])[order]
    roots = np.array([new[offsets[tree] + structure.root]
                      for tree, structure in enumerate(structures)], dtype=np.int32)
    return {"new_id": new, "height": height, "batch_start": batch_start,
            "batch_len": batch_len, "children": children, "words": words.astype(np.int32),
            "roots": roots, "num_leaves": int(batch_len[0]) if len(batch_len) else 0}


def treefc_batched(linearized, weights):
    """Leaves copy their embeddings; then each internal batch, in increasing height, reads
    its children's rows (computed in earlier batches) and computes all its rows at once."""
    emb, w, b = (np.asarray(weights[name], dtype=np.float64) for name in ("Emb", "W", "b"))
    h = np.zeros((linearized.num_nodes, w.shape[0]))
    leaves = slice(0, linearized.num_leaves)
    h[leaves] = emb[linearized.words[leaves]]
    for start, count in zip(linearized.batch_start, linearized.batch_len, strict=True):
        if start < linearized.num_leaves:
            continue
        rows = slice(int(start), int(start + count))
        left, right = linearized.children[rows, 0], linearized.children[rows, 1]
        h[rows] = np.tanh((h[left] + h[right]) @ w.T + b)
    return h

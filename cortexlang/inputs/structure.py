"""The input structures a model runs on: trees, DAGs (grids) and sequences, as flat arrays.

A `Structure` is one input: its nodes are numbered 0..N-1 in any order, and each row of
`children` lists a node's children (for a DAG, its predecessors), padded with -1. A missing
child reads as a zero state in every backend, which is how a DAG-RNN border cell sees its
absent neighbour and how `child(n, i)` past a node's arity behaves.

Conventions by structure kind:

- binary tree: internal nodes have exactly two children, `children[n] = [left, right]`.
- n-ary tree: up to `max_children` children, in order, padding at the end.
- sequence: element t has the single child t-1; element 0 is the leaf; the root is the last.
- DAG grid of R x C: cell (i, j) has id i*C + j, children `[left (i, j-1), up (i-1, j)]`,
  -1 on the border; cell (0, 0) is the only leaf; the root (output) is the last cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NO_CHILD = -1
NO_WORD = -1
NO_LABEL = -1


@dataclass(frozen=True, eq=False)
class Structure:
    """One input tree, DAG or sequence (see the module docstring for the conventions).

    children: int32 [N, K], child ids, -1 padding (K >= 1; all -1 for a leaf).
    words:    int32 [N] token ids into the model's vocabulary, -1 where a node has none.
    tokens:   the token text per node (None where none), for display; may be empty.
    labels:   int32 [N] class labels (SST sentiment 0..4), -1 where none.
    features: float [N, F] per-node input vectors (grid cells), or None; float64 as read or
              generated, converted by each backend to the dtype it computes in.
    root:     the id of the output node.
    """

    children: np.ndarray
    words: np.ndarray
    root: int
    tokens: tuple[str | None, ...] = ()
    labels: np.ndarray | None = None
    features: np.ndarray | None = None
    kind: str = "tree"
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.children.shape[0])

    @property
    def max_arity(self) -> int:
        return int((self.children >= 0).sum(axis=1).max(initial=0))

    def num_children(self) -> np.ndarray:
        """int32 [N]: the number of present children of each node."""
        return (self.children >= 0).sum(axis=1).astype(np.int32)

    def is_leaf(self) -> np.ndarray:
        return self.num_children() == 0

"""What every baseline shares: model names and parameter shapes, random weights, and the
host-side preparation of a batch of structures (merging, post-order, levels).

Preparation runs outside the timed call: the node-by-node baselines need a post-order per
structure, the level-batched ones need the nodes renumbered so that every level is one
contiguous range of rows. Both are computed here, once per batch, with plain Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cortexlang.inputs.structure import Structure

MODELS = ("treefc", "treegru", "treelstm", "mvrnn", "dagrnn")
NUM_WORD_MATRICES = 32
"""MV-RNN keeps a small table of word matrices: word w uses EmbM[w % 32]."""

OUTPUT_NAMES = {
    "treefc": ("h",),
    "treegru": ("h",),
    "treelstm": ("h", "c"),
    "mvrnn": ("p", "P"),
    "dagrnn": ("h",),
}
"""The root outputs each baseline returns, each an array [num_structures, H] ([.., H, H] for P)."""


def canonical_model(model: str) -> str:
    """Map 'TreeLSTM', 'tree_lstm', 'MV-RNN', ... to the canonical names in `MODELS`."""
    name = model.lower().replace("-", "").replace("_", "")
    if name not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return name


def parameter_shapes(model: str, hidden: int, vocabulary: int) -> dict[str, tuple[int, ...]]:
    """The project-wide parameter names and shapes of a model (embedding size = H = X)."""
    h = hidden
    model = canonical_model(model)
    if model == "treefc":
        return {"Emb": (vocabulary, h), "W": (h, h), "b": (h,)}
    if model == "treegru":
        return {"Emb": (vocabulary, h), "W_leaf": (2 * h, h), "b_leaf": (2 * h,),
                "U_g": (3 * h, 2 * h), "b_g": (3 * h,), "U_h": (h, 2 * h), "b_h": (h,)}
    if model == "treelstm":
        return {"Emb": (vocabulary, h), "W_leaf": (3 * h, h), "b_leaf": (3 * h,),
                "U": (5 * h, 2 * h), "b": (5 * h,)}
    if model == "mvrnn":
        return {"Emb": (vocabulary, h), "EmbM": (NUM_WORD_MATRICES, h, h), "W": (h, 2 * h),
                "b_W": (h,), "W_M": (h, 2 * h)}
    return {"U": (h, h), "W": (h, h), "b": (h,)}


def random_weights(model: str, hidden: int, vocabulary: int = 1000, seed: int = 0,
                   scale: float = 0.1) -> dict[str, np.ndarray]:
    """Weights uniform in [-scale, scale] (the evaluation protocol uses about 0.1), float32."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-scale, scale, size=shape).astype(np.float32)
            for name, shape in parameter_shapes(model, hidden, vocabulary).items()}


def post_order(children: list[list[int]], root: int) -> list[int]:
    """The nodes reachable from `root`, children before parents, each once (DAG-safe).

    This is the order in which a recursive implementation finishes its calls.
    """
    order: list[int] = []
    visited = {root}
    stack = [(root, 0)]
    while stack:
        node, next_slot = stack[-1]
        kids = children[node]
        while next_slot < len(kids) and (kids[next_slot] < 0 or kids[next_slot] in visited):
            next_slot += 1
        if next_slot < len(kids):
            child = kids[next_slot]
            stack[-1] = (node, next_slot + 1)
            visited.add(child)
            stack.append((child, 0))
        else:
            stack.pop()
            order.append(node)
    return order


@dataclass(frozen=True)
class NodePlan:
    """A batch in post-order, for the node-by-node baselines.

    The nodes of all structures share one id space (structure s's node n is n + offset[s]).
    `steps` lists (node, (left, right), word, is_leaf) in an order where children come before
    parents; -1 marks a missing child (for a grid cell, the pair is (left, up)); `roots`
    are the merged ids of the structures' roots.
    """

    num_nodes: int
    steps: tuple[tuple[int, tuple[int, int], int, bool], ...]
    roots: tuple[int, ...]
    features: np.ndarray | None


def plan_nodes(structures: Sequence[Structure]) -> NodePlan:
    """Merge `structures` into one id space and list the nodes in post-order per structure.

    Every model here has at most two children per node (binary trees, grids); a structure
    with fewer columns (a sequence) is padded with missing children, more raise ValueError.
    """
    steps: list[tuple[int, tuple[int, int], int, bool]] = []
    roots: list[int] = []
    features: list[np.ndarray] = []
    offset = 0
    for structure in structures:
        if structure.max_arity > 2:
            raise ValueError("the baselines handle at most 2 children per node")
        children = [(row + [-1, -1])[:2] for row in structure.children.tolist()]
        words = structure.words.tolist()
        for node in post_order(children, structure.root):
            left, right = (c + offset if c >= 0 else -1 for c in children[node])
            kids = (left, right)
            is_leaf = left < 0 and right < 0
            steps.append((node + offset, kids, words[node], is_leaf))
        roots.append(structure.root + offset)
        if structure.features is not None:
            features.append(np.asarray(structure.features, dtype=np.float32))
        offset += structure.num_nodes
    merged = np.concatenate(features) if len(features) == len(structures) and features else None
    return NodePlan(offset, tuple(steps), tuple(roots), merged)


@dataclass(frozen=True)
class LevelPlan:
    """A batch renumbered by height, for the level-batched baselines.

    Row 0 of every state is the zero state that a missing child reads. The real nodes follow
    in level order: level l holds rows [bounds[l], bounds[l + 1]), level 0 holds the nodes
    without children (leaves; for a grid, the corner cell). `children[r]` are the rows of
    row r's children (0 for a missing child); row 0's entry is unused.

    num_rows:  1 + number of nodes.
    bounds:    level boundaries, length num_levels + 1, bounds[0] = 1.
    children:  int64 [num_rows, 2].
    words:     int64 [num_rows] (0 where a node has no word, and for row 0).
    features:  float32 [num_rows, F] or None (row 0 is zero).
    roots:     int64 [num_structures], the rows of the structures' roots.
    """

    num_rows: int
    bounds: tuple[int, ...]
    children: np.ndarray
    words: np.ndarray
    features: np.ndarray | None
    roots: np.ndarray

    @property
    def num_levels(self) -> int:
        return len(self.bounds) - 1

    def level_sizes(self) -> list[int]:
        return [self.bounds[i + 1] - self.bounds[i] for i in range(self.num_levels)]


def plan_levels(structures: Sequence[Structure]) -> LevelPlan:
    """Merge `structures`, compute each node's height (longest path from a node without
    children) and renumber the nodes so that each height is one contiguous range of rows."""
    node_plan = plan_nodes(structures)
    height: dict[int, int] = {}
    for node, kids, _word, _is_leaf in node_plan.steps:
        height[node] = 1 + max((height[c] for c in kids if c >= 0), default=-1)
    ordered = sorted(height, key=lambda node: (height[node], node))
    row_of = {node: row + 1 for row, node in enumerate(ordered)}
    num_rows = len(ordered) + 1
    children = np.zeros((num_rows, 2), dtype=np.int64)
    words = np.zeros(num_rows, dtype=np.int64)
    for node, kids, word, _is_leaf in node_plan.steps:
        row = row_of[node]
        children[row] = [row_of[c] if c >= 0 else 0 for c in kids]
        words[row] = max(word, 0)
    features = None
    if node_plan.features is not None:
        features = np.zeros((num_rows, node_plan.features.shape[1]), dtype=np.float32)
        features[[row_of[n] for n in ordered]] = node_plan.features[ordered]
    num_levels = 1 + max(height.values(), default=-1)
    counts = np.bincount(np.fromiter(height.values(), dtype=np.int64), minlength=num_levels)
    bounds = tuple(int(b) for b in 1 + np.concatenate([[0], np.cumsum(counts)]))
    roots = np.array([row_of[r] for r in node_plan.roots], dtype=np.int64)
    return LevelPlan(num_rows, bounds, children, words, features, roots)


def require_features(model: str, plan: LevelPlan | NodePlan) -> None:
    """The DAG-RNN reads an input vector per cell from `Structure.features`."""
    if model == "dagrnn":
        cell_inputs(plan)


def cell_inputs(plan: LevelPlan | NodePlan) -> np.ndarray:
    """The per-cell input vectors of a DAG-RNN batch; ValueError when the inputs have none."""
    if plan.features is None:
        raise ValueError("dagrnn needs per-cell input vectors (Structure.features)")
    return plan.features


@dataclass
class Baseline:
    """A baseline for one model and one set of weights.

    `prepare(structures)` does the per-batch host work (orders, index arrays, conversion to
    the framework's tensors); `run(prepared)` is the timed inference step and returns the
    root outputs as numpy arrays; calling the baseline does both.
    """

    name: str
    model: str
    prepare: Callable[[Sequence[Structure]], Any]
    run: Callable[[Any], dict[str, np.ndarray]]
    notes: str = ""

    def __call__(self, structures: Sequence[Structure]) -> dict[str, np.ndarray]:
        return self.run(self.prepare(structures))

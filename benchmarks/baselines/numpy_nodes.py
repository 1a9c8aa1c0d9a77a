"""The numpy node-by-node baseline, which is also the tests' reference for every other one.

Each node is computed on its own, children before parents, written line for line from the
model equations (see shared CORTEX.md). A missing child reads as the zero state. numpy calls
OpenBLAS for every matrix-vector product, with its default thread count.

The per-node Python work is kept small so that the baseline is not weaker than it must be:
the post-order, child ids and words are Python tuples made by `prepare`, states live in a
Python list, each gate block goes through one vectorised call, and the sigmoid is written
0.5 * tanh(x / 2) + 0.5, which is exact and never overflows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.baselines.common import (NUM_WORD_MATRICES, Baseline, NodePlan,
                                         canonical_model, plan_nodes,
                                         require_features)
from cortexlang.inputs.structure import Structure


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _treefc(weights: dict[str, np.ndarray], hidden: int
            ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    emb, w, b = weights["Emb"], weights["W"], weights["b"]
    zero = np.zeros(hidden, np.float32)

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        h: list[np.ndarray] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                h[node] = emb[word]
            else:
                h_l = h[left] if left >= 0 else zero
                h_r = h[right] if right >= 0 else zero
                h[node] = np.tanh(w @ (h_l + h_r) + b)
        return {"h": np.stack([h[r] for r in plan.roots])}
    return run


def _treegru(weights: dict[str, np.ndarray], hidden: int
             ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    emb, w_leaf, b_leaf = weights["Emb"], weights["W_leaf"], weights["b_leaf"]
    u_g, b_g, u_h, b_h = weights["U_g"], weights["b_g"], weights["U_h"], weights["b_h"]
    hid = hidden
    zero = np.zeros(hid, np.float32)

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        h: list[np.ndarray] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                zu = w_leaf @ emb[word] + b_leaf
                h[node] = (1.0 - sigmoid(zu[:hid])) * np.tanh(zu[hid:])
            else:
                h_l = h[left] if left >= 0 else zero
                h_r = h[right] if right >= 0 else zero
                h_lr = np.concatenate((h_l, h_r))
                gates = sigmoid(u_g @ h_lr + b_g)
                z, r_lr = gates[:hid], gates[hid:]
                u = np.tanh(u_h @ (r_lr * h_lr) + b_h)
                h[node] = z * (h_l + h_r) * 0.5 + (1.0 - z) * u
        return {"h": np.stack([h[r] for r in plan.roots])}
    return run


def _treelstm(weights: dict[str, np.ndarray], hidden: int
              ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    emb, w_leaf, b_leaf = weights["Emb"], weights["W_leaf"], weights["b_leaf"]
    u_all, b_all = weights["U"], weights["b"]
    hid = hidden
    zero = np.zeros(hid, np.float32)

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        h: list[np.ndarray] = [zero] * plan.num_nodes
        c: list[np.ndarray] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                iou = w_leaf @ emb[word] + b_leaf
                io = sigmoid(iou[:2 * hid])
                cell = io[:hid] * np.tanh(iou[2 * hid:])
                h[node] = io[hid:] * np.tanh(cell)
            else:
                h_l, c_l = (h[left], c[left]) if left >= 0 else (zero, zero)
                h_r, c_r = (h[right], c[right]) if right >= 0 else (zero, zero)
                gates = u_all @ np.concatenate((h_l, h_r)) + b_all
                ifo = sigmoid(gates[:4 * hid])
                cell = (ifo[:hid] * np.tanh(gates[4 * hid:]) + ifo[hid:2 * hid] * c_l
                        + ifo[2 * hid:3 * hid] * c_r)
                h[node] = ifo[3 * hid:] * np.tanh(cell)
            c[node] = cell
        return {"h": np.stack([h[r] for r in plan.roots]),
                "c": np.stack([c[r] for r in plan.roots])}
    return run


def _mvrnn(weights: dict[str, np.ndarray], hidden: int
           ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    emb, emb_m = weights["Emb"], weights["EmbM"]
    w, b_w, w_m = weights["W"], weights["b_W"], weights["W_M"]
    zero = np.zeros(hidden, np.float32)
    zero_matrix = np.zeros((hidden, hidden), np.float32)

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        p: list[np.ndarray] = [zero] * plan.num_nodes
        m: list[np.ndarray] = [zero_matrix] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                p[node], m[node] = emb[word], emb_m[word % NUM_WORD_MATRICES]
            else:
                a, a_mat = (p[left], m[left]) if left >= 0 else (zero, zero_matrix)
                b, b_mat = (p[right], m[right]) if right >= 0 else (zero, zero_matrix)
                p[node] = np.tanh(w @ np.concatenate((b_mat @ a, a_mat @ b)) + b_w)
                m[node] = w_m @ np.concatenate((a_mat, b_mat))
        return {"p": np.stack([p[r] for r in plan.roots]),
                "P": np.stack([m[r] for r in plan.roots])}
    return run


def _dagrnn(weights: dict[str, np.ndarray], hidden: int
            ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    u, w, b = weights["U"], weights["W"], weights["b"]
    zero = np.zeros(hidden, np.float32)

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        require_features("dagrnn", plan)
        x = plan.features
        h: list[np.ndarray] = [zero] * plan.num_nodes
        for node, (left, up), _word, _is_leaf in plan.steps:
            h_left = h[left] if left >= 0 else zero
            h_up = h[up] if up >= 0 else zero
            h[node] = np.tanh(u @ x[node] + w @ (h_left + h_up) + b)
        return {"h": np.stack([h[r] for r in plan.roots])}
    return run


_BUILDERS = {"treefc": _treefc, "treegru": _treegru, "treelstm": _treelstm,
             "mvrnn": _mvrnn, "dagrnn": _dagrnn}


def prepare(structures: Sequence[Structure]) -> NodePlan:
    """Per-batch host work: merge the structures and list their nodes in post-order."""
    return plan_nodes(structures)


def make_numpy_nodes(model: str, weights: dict[str, np.ndarray], H: int) -> Baseline:
    """numpy, one node at a time in post-order; returns the root outputs [num_structures, H]."""
    model = canonical_model(model)
    weights = {name: np.ascontiguousarray(value, dtype=np.float32)
               for name, value in weights.items()}
    run = _BUILDERS[model](weights, H)
    return Baseline("numpy node by node", model, prepare, run,
                    notes="numpy + OpenBLAS (default threads), per-node matvecs in post-order")

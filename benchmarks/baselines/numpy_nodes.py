"""The numpy node-by-node baseline, which is also the tests' reference for every other one.

Each node is computed on its own, children before parents, from the model equations (see
shared CORTEX.md); the tests check it against a recursive evaluation written straight from
them. A missing child reads as the zero state. numpy calls OpenBLAS for every
matrix-vector product, with its default thread count (2 here).

The per-node Python work is kept small so that the baseline is not weaker than it must be:
the post-order, child ids and words are Python tuples made by `prepare`, states live in a
Python list, and element-wise work is done in place. Sigmoids use the exact identity
sigmoid(x) = (1 + tanh(x / 2)) / 2 with the 1/2 folded into the gate rows of the weights
and biases once, so one `tanh` call over a node's whole gate vector yields its tanh gates
and, after two in-place operations, its sigmoid gates. That takes about 14% off the
TreeLSTM at H = 256 (per node, the matrix-vector products cost about 18 us, the element-
wise work and Python about 10 us); the products do the same FLOPs as the equations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.baselines.common import (
    NUM_WORD_MATRICES,
    Baseline,
    NodePlan,
    canonical_model,
    cell_inputs,
    plan_nodes,
)
from cortexlang.inputs.structure import Structure


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


def _halve_rows(matrix: np.ndarray, bias: np.ndarray, rows: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The matrix and bias with their first `rows` rows halved (see the module docstring)."""
    scale = np.ones(matrix.shape[0], np.float32)
    scale[:rows] = 0.5
    return matrix * scale[:, None], bias * scale


def _treegru(weights: dict[str, np.ndarray], hidden: int
             ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    hid = hidden
    emb = weights["Emb"]
    w_leaf, b_leaf = _halve_rows(weights["W_leaf"], weights["b_leaf"], hid)
    u_g, b_g = _halve_rows(weights["U_g"], weights["b_g"], 3 * hid)
    u_h, b_h = weights["U_h"], weights["b_h"]
    zero = np.zeros(hid, np.float32)
    tanh = np.tanh

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        h: list[np.ndarray] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                t = w_leaf @ emb[word]
                t += b_leaf
                tanh(t, out=t)                      # [tanh(z / 2); tanh(u)]
                keep = t[:hid]                      # 1 - sigmoid(z) = (1 - tanh(z / 2)) / 2
                keep -= 1.0
                keep *= -0.5
                keep *= t[hid:]
                h[node] = keep
            else:
                h_l = h[left] if left >= 0 else zero
                h_r = h[right] if right >= 0 else zero
                h_lr = np.concatenate((h_l, h_r))
                gates = u_g @ h_lr
                gates += b_g
                tanh(gates, out=gates)
                gates += 1.0
                gates *= 0.5                        # [z; r_l; r_r]
                z = gates[:hid]
                u = u_h @ (gates[hid:] * h_lr)
                u += b_h
                tanh(u, out=u)
                # z * (h_l + h_r) / 2 + (1 - z) * u  ==  u + z * ((h_l + h_r) / 2 - u)
                mean = h_l + h_r
                mean *= 0.5
                mean -= u
                mean *= z
                mean += u
                h[node] = mean
        return {"h": np.stack([h[r] for r in plan.roots])}
    return run


def _treelstm(weights: dict[str, np.ndarray], hidden: int
              ) -> Callable[[NodePlan], dict[str, np.ndarray]]:
    hid = hidden
    emb = weights["Emb"]
    w_leaf, b_leaf = _halve_rows(weights["W_leaf"], weights["b_leaf"], 2 * hid)
    u_all, b_all = _halve_rows(weights["U"], weights["b"], 4 * hid)
    zero = np.zeros(hid, np.float32)
    tanh = np.tanh

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        h: list[np.ndarray] = [zero] * plan.num_nodes
        c: list[np.ndarray] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                t = w_leaf @ emb[word]
                t += b_leaf
                tanh(t, out=t)                      # [tanh(i / 2); tanh(o / 2); tanh(u)]
                io = t[:2 * hid]
                io += 1.0
                io *= 0.5                           # [sigmoid(i); sigmoid(o)]
                cell = io[:hid] * t[2 * hid:]
            else:
                h_l, c_l = (h[left], c[left]) if left >= 0 else (zero, zero)
                h_r, c_r = (h[right], c[right]) if right >= 0 else (zero, zero)
                t = u_all @ np.concatenate((h_l, h_r))
                t += b_all
                tanh(t, out=t)                      # [tanh(i/2); ..; tanh(o/2); tanh(u)]
                io = t[:4 * hid]
                io += 1.0
                io *= 0.5                           # [sigmoid(i); sigmoid(f_l); .. (o)]
                cell = io[:hid] * t[4 * hid:]
                cell += io[hid:2 * hid] * c_l
                cell += io[2 * hid:3 * hid] * c_r
                io = io[2 * hid:]                   # so that io[hid:] is sigmoid(o)
            h_new = tanh(cell)
            h_new *= io[hid:]
            h[node] = h_new
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
        x = cell_inputs(plan)
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

"""Solutions to lesson 1: recursive models and the language."""

from __future__ import annotations

import numpy as np


def treefc_by_hand(structure, weights):
    """The root state h of TreeFC: recursion from the root, children first."""
    emb, w, b = weights["Emb"], weights["W"], weights["b"]

    def h(node: int) -> np.ndarray:
        left, right = (int(child) for child in structure.children[node][:2])
        if left < 0 and right < 0:
            return emb[structure.words[node]]
        total = sum(h(child) for child in (left, right) if child >= 0)
        return np.tanh(w @ total + b)

    return h(structure.root)


def treelstm_source():
    """The binary TreeLSTM, as in examples/treelstm.cx."""
    return """\
model TreeLSTM
sizes H = 8, V = 1000
structure binary_tree

param Emb[V, H]
param W_leaf[3H, H], b_leaf[3H]
param U[5H, 2H], b[5H]

input word: token
state h[H], c[H]

leaf n:
    i, o, u = split(W_leaf @ Emb[word(n)] + b_leaf, 3)
    c = sigmoid(i) * tanh(u)
    h = sigmoid(o) * tanh(c)

internal n:
    i, f_l, f_r, o, u = split(U @ concat(h[left(n)], h[right(n)]) + b, 5)
    c = sigmoid(i) * tanh(u) + sigmoid(f_l) * c[left(n)] + sigmoid(f_r) * c[right(n)]
    h = sigmoid(o) * tanh(c)

output h[root]
"""


def node_predictions(outputs, tree):
    """Rows node_offset[tree] .. node_offset[tree + 1] of the [all] output, argmax per row."""
    start, stop = int(outputs.node_offset[tree]), int(outputs.node_offset[tree + 1])
    return outputs.outputs["sentiment"][start:stop].argmax(axis=1)

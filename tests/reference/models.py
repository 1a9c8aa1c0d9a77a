"""The eight example models, each written directly from its equations in numpy.

Every model function takes one `Structure`, a dict of weights and a dtype, and returns a
`Result`: every node's states and the model's outputs (root outputs as the root's value,
per-node outputs as one row per node). Conventions shared with the language, restated here
on purpose rather than imported:

- a node is computed after its children (Kahn's algorithm on pending-children counts, which
  is a different walk from the interpreter's);
- a missing child (-1, a grid border, a chain's absent right child) has zero states;
- a node is a leaf when it has no present children.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cortexlang.inputs.structure import Structure

Weights = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Result:
    """states: name -> [N, *shape]; outputs: name -> root value or [N, *shape]."""

    states: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


def sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function through tanh, which cannot overflow: (1 + tanh(x / 2)) / 2."""
    return (1 + np.tanh(values / 2)) / 2


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - np.max(values))
    return shifted / np.sum(shifted)


def children_first(children: np.ndarray) -> list[int]:
    """Node ids with every node after all of its children (Kahn's algorithm)."""
    count = children.shape[0]
    pending = (children >= 0).sum(axis=1).tolist()
    parents: list[list[int]] = [[] for _ in range(count)]
    for node in range(count):
        for child in children[node]:
            if child >= 0:
                parents[int(child)].append(node)
    ready = deque(node for node in range(count) if pending[node] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for parent in parents[node]:
            pending[parent] -= 1
            if pending[parent] == 0:
                ready.append(parent)
    assert len(order) == count, "the structure has a cycle"
    return order


# One node's step: (node, its child ids with -1 for missing, the states so far) -> new states.
Step = Callable[[int, list[int], dict[str, np.ndarray]], dict[str, np.ndarray]]


def _run(structure: Structure, shapes: dict[str, tuple[int, ...]], dtype: type,
         step: Step) -> dict[str, np.ndarray]:
    count = structure.num_nodes
    states = {name: np.zeros((count, *shape), dtype=dtype) for name, shape in shapes.items()}
    for node in children_first(structure.children):
        new = step(node, [int(child) for child in structure.children[node]], states)
        for name, value in new.items():
            states[name][node] = value
    return states


def _cast(weights: Weights, dtype: type) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=dtype) for name, value in weights.items()}


def _child_state(states: dict[str, np.ndarray], name: str, child: int) -> np.ndarray:
    """A child's state, or zeros when the child is missing."""
    if child < 0:
        return np.zeros(states[name].shape[1:], dtype=states[name].dtype)
    return states[name][child]


def _slot(children: list[int], position: int) -> int:
    return children[position] if position < len(children) else -1


def _is_leaf(children: list[int]) -> bool:
    return all(child < 0 for child in children)


def tree_fc(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    """leaf h = Emb[word]; internal h = tanh(W (h_l + h_r) + b)."""
    w = _cast(weights, dtype)
    hidden = w["W"].shape[0]

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        if _is_leaf(children):
            return {"h": w["Emb"][structure.words[node]]}
        left = _child_state(states, "h", _slot(children, 0))
        right = _child_state(states, "h", _slot(children, 1))
        return {"h": np.tanh(w["W"] @ (left + right) + w["b"])}

    states = _run(structure, {"h": (hidden,)}, dtype, step)
    return Result(states, {"h": states["h"][structure.root]})


def tree_gru(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    """Binary TreeGRU with one reset gate per child (see examples/treegru.cx)."""
    w = _cast(weights, dtype)
    hidden = w["U_h"].shape[0]

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        if _is_leaf(children):
            gates = w["W_leaf"] @ w["Emb"][structure.words[node]] + w["b_leaf"]
            update, candidate = gates[:hidden], gates[hidden:]
            return {"h": (1 - sigmoid(update)) * np.tanh(candidate)}
        left = _child_state(states, "h", _slot(children, 0))
        right = _child_state(states, "h", _slot(children, 1))
        gates = sigmoid(w["U_g"] @ np.concatenate([left, right]) + w["b_g"])
        update = gates[:hidden]
        reset_left, reset_right = gates[hidden:2 * hidden], gates[2 * hidden:]
        candidate = np.tanh(w["U_h"] @ np.concatenate([reset_left * left, reset_right * right])
                            + w["b_h"])
        return {"h": update * (left + right) / 2 + (1 - update) * candidate}

    states = _run(structure, {"h": (hidden,)}, dtype, step)
    return Result(states, {"h": states["h"][structure.root]})


def _tree_lstm_states(structure: Structure, w: dict[str, np.ndarray],
                      dtype: type) -> dict[str, np.ndarray]:
    """Binary (N-ary, N = 2) TreeLSTM of Tai et al. 2015."""
    hidden = w["U"].shape[1] // 2

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        if _is_leaf(children):
            gates = w["W_leaf"] @ w["Emb"][structure.words[node]] + w["b_leaf"]
            input_gate, output_gate, update = np.split(gates, 3)
            cell = sigmoid(input_gate) * np.tanh(update)
            return {"c": cell, "h": sigmoid(output_gate) * np.tanh(cell)}
        left, right = _slot(children, 0), _slot(children, 1)
        # The product over the concatenation, written as two halves of U.
        gates = (w["U"][:, :hidden] @ _child_state(states, "h", left)
                 + w["U"][:, hidden:] @ _child_state(states, "h", right) + w["b"])
        input_gate, forget_left, forget_right, output_gate, update = np.split(gates, 5)
        cell = (sigmoid(input_gate) * np.tanh(update)
                + sigmoid(forget_left) * _child_state(states, "c", left)
                + sigmoid(forget_right) * _child_state(states, "c", right))
        return {"c": cell, "h": sigmoid(output_gate) * np.tanh(cell)}

    return _run(structure, {"h": (hidden,), "c": (hidden,)}, dtype, step)


def tree_lstm(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    states = _tree_lstm_states(structure, _cast(weights, dtype), dtype)
    return Result(states, {"h": states["h"][structure.root]})


def sentiment(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    """TreeLSTM with a softmax classifier read at every node."""
    w = _cast(weights, dtype)
    states = _tree_lstm_states(structure, w, dtype)
    classes = np.stack([softmax(w["W_s"] @ hidden + w["b_s"]) for hidden in states["h"]])
    return Result(states, {"h": states["h"][structure.root], "sentiment": classes})


def mv_rnn(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    """MV-RNN: a vector and a matrix per node; word matrices shared modulo the table size."""
    w = _cast(weights, dtype)
    hidden = w["W"].shape[0]
    table = w["EmbM"].shape[0]

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        if _is_leaf(children):
            word = int(structure.words[node])
            return {"a": w["Emb"][word], "A": w["EmbM"][word % table]}
        left, right = _slot(children, 0), _slot(children, 1)
        vector_a, matrix_a = _child_state(states, "a", left), _child_state(states, "A", left)
        vector_b, matrix_b = _child_state(states, "a", right), _child_state(states, "A", right)
        mixed = np.concatenate([matrix_b @ vector_a, matrix_a @ vector_b])
        return {"a": np.tanh(w["W"] @ mixed + w["b_W"]),
                "A": w["W_M"] @ np.concatenate([matrix_a, matrix_b], axis=0)}

    states = _run(structure, {"a": (hidden,), "A": (hidden, hidden)}, dtype, step)
    return Result(states, {"a": states["a"][structure.root]})


def dag_rnn(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    """h = tanh(U x + W (h_left + h_up) + b) over a grid; a missing neighbour is zero."""
    w = _cast(weights, dtype)
    hidden = w["W"].shape[0]
    features = np.asarray(structure.features, dtype=dtype)

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        neighbours = np.zeros(hidden, dtype=dtype)
        for child in children:
            if child >= 0:
                neighbours = neighbours + states["h"][child]
        recurrent = 0 if _is_leaf(children) else w["W"] @ neighbours
        return {"h": np.tanh(w["U"] @ features[node] + recurrent + w["b"])}

    states = _run(structure, {"h": (hidden,)}, dtype, step)
    return Result(states, {"h": states["h"][structure.root]})


def child_sum_tree_lstm(structure: Structure, weights: Weights,
                        dtype: type = np.float32) -> Result:
    """Child-sum TreeLSTM (Tai et al. 2015); words enter at the leaves only."""
    w = _cast(weights, dtype)
    hidden = w["U_f"].shape[0]

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        present = [child for child in children if child >= 0]
        hidden_sum = np.zeros(hidden, dtype=dtype)
        for child in present:
            hidden_sum = hidden_sum + states["h"][child]
        gates = w["U_iou"] @ hidden_sum + w["b_iou"]
        if not present:
            gates = gates + w["W_iou"] @ w["Emb"][structure.words[node]]
        input_gate, output_gate, update = np.split(gates, 3)
        cell = sigmoid(input_gate) * np.tanh(update)
        for child in present:
            forget = sigmoid(w["U_f"] @ states["h"][child] + w["b_f"])
            cell = cell + forget * states["c"][child]
        return {"c": cell, "h": sigmoid(output_gate) * np.tanh(cell)}

    states = _run(structure, {"h": (hidden,), "c": (hidden,)}, dtype, step)
    return Result(states, {"h": states["h"][structure.root]})


def sequence_lstm(structure: Structure, weights: Weights, dtype: type = np.float32) -> Result:
    """An LSTM over a sequence, element t reading element t-1; gates [i; f; o; u]."""
    w = _cast(weights, dtype)
    hidden = w["U"].shape[1]

    def step(node: int, children: list[int], states: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
        previous = children[0]
        gates = w["W"] @ w["Emb"][structure.words[node]] + w["b"]
        if previous >= 0:
            gates = gates + w["U"] @ states["h"][previous]
        input_gate, forget, output_gate, update = np.split(gates, 4)
        cell = sigmoid(input_gate) * np.tanh(update)
        if previous >= 0:
            cell = cell + sigmoid(forget) * states["c"][previous]
        return {"c": cell, "h": sigmoid(output_gate) * np.tanh(cell)}

    states = _run(structure, {"h": (hidden,), "c": (hidden,)}, dtype, step)
    return Result(states, {"h": states["h"][structure.root]})


# examples/<file>.cx -> its reference.
MODELS: dict[str, Callable[[Structure, Weights, type], Result]] = {
    "treefc": tree_fc,
    "treegru": tree_gru,
    "treelstm": tree_lstm,
    "sentiment": sentiment,
    "mvrnn": mv_rnn,
    "dagrnn": dag_rnn,
    "childsum_treelstm": child_sum_tree_lstm,
    "lstm_sequence": sequence_lstm,
}

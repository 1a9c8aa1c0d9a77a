"""Evaluate a recursive program with numpy, node by node.

Two uses: computing the hoisted `uniforms` once when weights are bound, and checking that
every recursive-program pass preserves the meaning of the program (tests compare this
evaluator, run after each pass, with the reference interpreter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from cortexlang.inputs.structure import Structure
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram
from cortexlang.outputs import Outputs

_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "neg": np.negative, "tanh": np.tanh, "exp": np.exp, "log": np.log,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 0.5 * (np.tanh(0.5 * x) + 1),
    "softmax": lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "max": np.maximum, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal,
}


def evaluate_ops(ops: Sequence[Op], source: Callable[[Op], np.ndarray],
                 known: Mapping[str, np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    """Evaluate operators in order; `source` supplies node-dependent sources."""
    values: dict[str, np.ndarray] = dict(known)
    for op in ops:
        args = [values[arg] for arg in op.args]
        value: Any
        if op.kind == "const":
            value = np.full(op.shape, op.attr("value"), dtype=dtype)
        elif op.kind == "unary":
            value = _UNARY[op.attr("op")](args[0])
        elif op.kind == "binary":
            value = _BINARY[op.attr("op")](args[0], args[1])
        elif op.kind == "matmul":
            value = args[0] @ args[1]
        elif op.kind == "concat":
            value = np.concatenate(args, axis=0)
        elif op.kind == "slice":
            value = args[0][op.attr("start"):op.attr("stop")]
        elif op.kind == "select":
            value = args[1] if float(args[0]) != 0.0 else args[2]
        elif op.kind == "uniform":
            value = values[op.attr("name")]
        else:
            value = source(op)
        values[op.name] = np.asarray(value, dtype=dtype)
    return values


def evaluate_uniforms(program: RecursiveProgram, weights: Mapping[str, np.ndarray],
                      dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The hoisted node-independent values, computed once per weights."""
    def source(op: Op) -> np.ndarray:
        if op.kind == "param":
            return weights[op.attr("param")]
        raise ValueError(f"uniform {op.name} reads a node-dependent {op.kind}")
    values = evaluate_ops(program.uniforms, source, {}, dtype)
    return {op.name: values[op.name] for op in program.uniforms}


def evaluate_tables(program: RecursiveProgram, weights: Mapping[str, np.ndarray],
                    dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The per-token leaf tables (`leaf_STATE` -> [table_rows, *shape]), evaluated for all
    tokens at once: every per-node value carries a leading token axis."""
    rule = program.table_rule
    if rule is None:
        return {}
    rows = program.table_rows
    uniforms = evaluate_uniforms(program, weights, dtype)
    values: dict[str, np.ndarray] = {}
    batched: set[str] = set()
    for op in rule.ops:
        args = [values[arg] for arg in op.args]
        lifted = [arg in batched for arg in op.args]
        value: Any
        if op.kind == "const":
            value = np.full(op.shape, op.attr("value"), dtype=dtype)
        elif op.kind == "param":
            value = np.asarray(weights[op.attr("param")], dtype=dtype)
        elif op.kind == "uniform":
            value = uniforms[op.attr("name")]
        elif op.kind == "lookup":
            value = np.asarray(weights[op.attr("param")][:rows], dtype=dtype)
            batched.add(op.name)
        elif op.kind == "unary":
            if op.attr("op") == "softmax":
                shifted = np.exp(args[0] - args[0].max(axis=-1, keepdims=True))
                value = shifted / shifted.sum(axis=-1, keepdims=True)
            else:
                value = _UNARY[op.attr("op")](args[0])
        elif op.kind == "binary":
            lhs, rhs = args
            if not op.shape:  # scalars per token: [rows] against a plain scalar
                value = _BINARY[op.attr("op")](lhs, rhs)
            else:  # a per-token scalar [rows] must broadcast against [rows, n]
                shapes = [self_shape(rule, arg) for arg in op.args]
                lhs = lhs[:, None] if lifted[0] and shapes[0] == () else lhs
                rhs = rhs[:, None] if lifted[1] and shapes[1] == () else rhs
                value = _BINARY[op.attr("op")](lhs, rhs)
        elif op.kind == "matmul":
            weight, operand = args
            value = operand @ weight.T if lifted[1] else weight @ operand
        elif op.kind == "concat":
            parts = [part if lift else np.broadcast_to(part, (rows,) + part.shape)
                     for part, lift in zip(args, lifted, strict=True)] if any(lifted) else args
            value = np.concatenate(parts, axis=1 if any(lifted) else 0)
        elif op.kind == "slice":
            start, stop = op.attr("start"), op.attr("stop")
            value = args[0][:, start:stop] if lifted[0] else args[0][start:stop]
        elif op.kind == "select":
            condition = args[0] if lifted[0] else np.full(rows, args[0])
            value = np.where((condition != 0).reshape((rows,) + (1,) * len(op.shape)),
                             args[1], args[2])
            lifted = [True]
        else:
            raise ValueError(f"a leaf table cannot evaluate {op.kind}")
        if any(lifted):
            batched.add(op.name)
        values[op.name] = np.asarray(value, dtype=dtype)
    tables = {}
    for state, result in rule.results:
        value = values[result]
        if result not in batched:
            value = np.broadcast_to(value, (rows,) + value.shape)
        tables[f"leaf_{state}"] = np.ascontiguousarray(value.reshape(rows, -1))
    return tables


def self_shape(rule: RuleProgram, name: str) -> tuple[int, ...]:
    """The per-node shape of operator `name` of `rule`."""
    return next(op.shape for op in rule.ops if op.name == name)


def _topological_order(structure: Structure) -> list[int]:
    """Children before parents, without recursion."""
    count = structure.num_children()
    parents: list[list[int]] = [[] for _ in range(structure.num_nodes)]
    for node, row in enumerate(structure.children):
        for child in row:
            if child >= 0:
                parents[child].append(node)
    ready = [node for node in range(structure.num_nodes) if count[node] == 0]
    order: list[int] = []
    remaining = count.copy()
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in parents[node]:
            remaining[parent] -= 1
            if remaining[parent] == 0:
                ready.append(parent)
    return order


@dataclass
class _Structure:
    """The sources one structure offers its nodes: weights, tokens, features, child states."""

    structure: Structure
    weights: Mapping[str, np.ndarray]
    tables: Mapping[str, np.ndarray]
    states: dict[str, list[np.ndarray | None]]
    dtype: type

    def __post_init__(self) -> None:
        self.count = self.structure.num_children()

    def child(self, node: int, position: int) -> int:
        row = self.structure.children[node]
        return int(row[position]) if position < len(row) else -1

    def state(self, name: str, node: int) -> np.ndarray:
        value = self.states[name][node]
        assert value is not None, "a child is computed before its parent"
        return value

    def source(self, op: Op, node: int) -> np.ndarray:
        """The value of a node-dependent source operator at `node`."""
        kind, structure = op.kind, self.structure
        if kind == "param":
            return self.weights[op.attr("param")]
        if kind == "lookup":
            index = int(structure.words[node])
            for modulus in op.attr("moduli"):
                index %= modulus
            return self.weights[op.attr("param")][index]
        if kind == "table":
            return self.tables[op.attr("name")][int(structure.words[node])].reshape(op.shape)
        if kind == "input":
            assert structure.features is not None
            return structure.features[node]
        if kind == "num_children":
            return np.asarray(self.count[node])
        if kind == "own_state":
            return self.state(op.attr("state"), node)
        position = self.child(node, op.attr("child"))
        if kind == "child_exists":
            return np.asarray(float(position >= 0))
        if kind == "child_is_leaf":
            return np.asarray(float(position >= 0 and self.count[position] == 0))
        if kind == "child_state":
            if position < 0:
                return np.zeros(op.shape, dtype=self.dtype)
            return self.state(op.attr("state"), position)
        raise ValueError(f"unexpected source {kind}")


def run_recursive(program: RecursiveProgram, structures: Sequence[Structure],
                  weights: Mapping[str, np.ndarray], dtype: type = np.float32) -> Outputs:
    """Run the recursive program on every structure, node by node."""
    weights = {name: np.asarray(value, dtype=dtype) for name, value in weights.items()}
    uniforms = evaluate_uniforms(program, weights, dtype)
    tables = evaluate_tables(program, weights, dtype)
    state_rows: dict[str, list[np.ndarray]] = {state.name: [] for state in program.states}
    head_rows: dict[str, list[np.ndarray]] = {}
    for structure in structures:
        sources = _Structure(structure, weights, tables, {
            state.name: [None] * structure.num_nodes for state in program.states}, dtype)
        for node in _topological_order(structure):
            rule: RuleProgram = program.leaf if sources.count[node] == 0 else program.internal
            values = evaluate_ops(rule.ops, partial(_at, sources, node), uniforms, dtype)
            for state_name, result in rule.results:
                sources.states[state_name][node] = values[result]
        for state in program.states:
            state_rows[state.name].extend(sources.state(state.name, node)
                                          for node in range(structure.num_nodes))
        if program.heads is not None:
            for node in range(structure.num_nodes):
                values = evaluate_ops(program.heads.ops, partial(_at, sources, node), uniforms,
                                      dtype)
                for name, result in program.heads.results:
                    head_rows.setdefault(name, []).append(values[result])
    sizes = [structure.num_nodes for structure in structures]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    state_arrays = {name: np.stack(rows) if rows else np.zeros((0,) + program.state_shape(name))
                    for name, rows in state_rows.items()}
    roots = offsets[:-1] + np.array([structure.root for structure in structures], dtype=np.int64)
    outputs: dict[str, np.ndarray] = {}
    for output in program.outputs:
        rows = state_arrays[output.name] if output.name in state_arrays else \
            np.stack(head_rows[output.name])
        outputs[output.name] = rows[roots] if output.selector == "root" else rows
    return Outputs(outputs, state_arrays, offsets,
                   {output.name: output.selector for output in program.outputs})


def _at(sources: _Structure, node: int, op: Op) -> np.ndarray:
    return sources.source(op, node)

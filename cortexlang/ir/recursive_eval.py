"""Evaluate a recursive program with numpy, node by node.

Checks that every recursive-program pass preserves the meaning of the program (tests compare
this evaluator, run after each pass, with the reference interpreter). The node-independent
part (uniforms, leaf tables) is `ir/host_eval.py`, which the runtime uses too.

An unrolled program (`RecursiveProgram.unroll`) is evaluated in its schedule's order: the
linearizer's unrolled order, step by step and group by group, each group's inlined children
just before their parent; a child read before it is computed fails, so the schedule is checked
as a dependence order too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from cortexlang.inputs.structure import Structure
from cortexlang.ir import host_eval
from cortexlang.ir.host_eval import evaluate_ops
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram
from cortexlang.outputs import Outputs


def evaluate_uniforms(program: RecursiveProgram, weights: Mapping[str, np.ndarray],
                      dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The hoisted node-independent values, computed once per weights."""
    return host_eval.evaluate_uniforms(program.uniforms, weights, dtype)


def evaluate_tables(program: RecursiveProgram, weights: Mapping[str, np.ndarray],
                    dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The per-token leaf tables (`leaf_STATE` -> [table_rows, *shape]), evaluated for all
    tokens at once (see `host_eval.evaluate_tables`), by the name the leaf rule's `table`
    operators read them by."""
    rule = program.table_rule
    if rule is None:
        return {}
    reads = {op.name: op.attr("name") for op in program.leaf.ops if op.kind == "table"}
    results = [(reads[program.leaf.result(state)], result) for state, result in rule.results]
    return host_eval.evaluate_tables(rule.ops, results, program.table_rows,
                                     evaluate_uniforms(program, weights, dtype), weights, dtype)


def _schedule(program: RecursiveProgram, structure: Structure) -> list[int]:
    """The order the nodes of `structure` are computed in: the unrolled schedule's when the
    program has one, else any order with children first."""
    if program.unroll is None:
        return _topological_order(structure)
    from cortexlang.runtime.linearize import linearize

    linearized = linearize([structure], max_children=program.max_children,
                           unroll_depth=program.unroll.depth)
    return [int(node) for node in linearized.old_id]


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
        if value is None:
            raise ValueError(f"node {node}'s state {name} is read before it is computed")
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
        for node in _schedule(program, structure):
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

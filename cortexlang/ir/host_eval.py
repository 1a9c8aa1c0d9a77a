"""Evaluate node-independent operators with numpy: the hoisted uniforms and the leaf tables.

One evaluator for two callers: the runtime, which computes an executable's host program
once per weights (`HostOp`s), and `ir/recursive_eval.py`, which checks the recursive passes
(the recursive program's `Op`s). Both operator forms have the same kinds and attributes (see
`ir/recursive.py`); `OpLike` is what the evaluator reads of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from cortexlang.ir.operators import Operator, operator_of


class OpLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def args(self) -> tuple[str, ...]: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    def attr(self, key: str, default: Any = None) -> Any: ...


def _operator(op: OpLike) -> Operator:
    operator = operator_of(op)
    assert operator is not None, f"{op.kind} {op.name} applies no operator"
    return operator


def evaluate_ops(ops: Sequence[OpLike], source: Callable[[Any], np.ndarray],
                 known: Mapping[str, np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    """Evaluate operators in order; `source` supplies node-dependent sources."""
    values: dict[str, np.ndarray] = dict(known)
    for op in ops:
        args = [values[arg] for arg in op.args]
        value: Any
        operator = operator_of(op)
        if operator is not None:
            value = operator.numpy(*args)
        elif op.kind == "const":
            value = np.full(op.shape, op.attr("value"), dtype=dtype)
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


def evaluate_uniforms(ops: Sequence[OpLike], weights: Mapping[str, np.ndarray],
                      dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The hoisted node-independent values `ops`, computed once per weights."""
    def source(op: OpLike) -> np.ndarray:
        if op.kind == "param":
            return weights[op.attr("param")]
        raise ValueError(f"uniform {op.name} reads a node-dependent {op.kind}")
    values = evaluate_ops(ops, source, {}, dtype)
    return {op.name: values[op.name] for op in ops}


def evaluate_tables(ops: Sequence[OpLike], results: Sequence[tuple[str, str]], rows: int,
                    uniforms: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray],
                    dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The per-token leaf tables (state -> [rows, size]) of the leaf rule `ops`, evaluated
    for all `rows` tokens at once: every per-node value carries a leading token axis."""
    values: dict[str, np.ndarray] = {}
    shapes = {op.name: op.shape for op in ops}
    batched: set[str] = set()
    for op in ops:
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
        elif op.kind == "unary":  # softmax works along the last axis, so on every token's row
            value = _operator(op).numpy(args[0])
        elif op.kind == "binary":
            lhs, rhs = args
            if op.shape:  # a per-token scalar [rows] must broadcast against [rows, n]
                lhs = lhs[:, None] if lifted[0] and shapes[op.args[0]] == () else lhs
                rhs = rhs[:, None] if lifted[1] and shapes[op.args[1]] == () else rhs
            value = _operator(op).numpy(lhs, rhs)
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
    for state, result in results:
        value = values[result]
        if result not in batched:
            value = np.broadcast_to(value, (rows,) + value.shape)
        tables[state] = np.ascontiguousarray(value.reshape(rows, -1))
    return tables

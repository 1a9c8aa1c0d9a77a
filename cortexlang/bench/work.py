"""How much work a model does on a batch: FLOPs and the weight bytes it must read.

Two counts. `model_work` counts the recursive program *as written* (straight after
`to_recursive`, before any optimisation), so that every implementation of the same model is
credited with the same useful work (its GFLOP/s). `run_work` counts the program the
compiler's recursive passes leave: the work a run cannot avoid, because leaf tables are
computed once per weights (a TreeLSTM leaf is a row lookup, not `W_leaf @ Emb[word]`) and
leaf-only operators are gone from internal nodes. A cell's floor is taken from `run_work`: a
floor from the written work would credit a run with work it never does, and a run that skips
it would beat its "floor".

A matrix product [m, k] @ [k] is 2mk FLOPs (2mkp with p columns), an elementwise operation
one FLOP per element, a transcendental function one too. Work is counted per leaf and per
internal node and summed over a batch from the linearizer's counts. Values computed once per
run (hoisted invariants) are not counted, which keeps the floor a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cortexlang.inputs.structure import Structure
from cortexlang.ir.checked import CheckedProgram
from cortexlang.ir.operators import operator_of
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram
from cortexlang.passes.to_recursive import to_recursive


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def op_flops(op: Op, ops: dict[str, Op]) -> int:
    """FLOPs of one operator for one node."""
    if op.kind == "matmul":
        lhs = ops[op.args[0]].shape
        return 2 * _size(op.shape) * lhs[1]
    if op.kind == "select":
        return _size(op.shape)
    operator = operator_of(op)
    if op.kind in ("unary", "binary") and operator is not None:
        return _size(op.shape) * operator.flops
    return 0


def rule_flops(rule: RuleProgram) -> int:
    ops = rule.op_map()
    return sum(op_flops(op, ops) for op in rule.ops)


@dataclass(frozen=True)
class Work:
    """FLOPs per leaf and per internal node, and the bytes of weights the rules read (the
    rows of embedding tables a node looks up count once per node, not the whole table)."""

    leaf_flops: int
    internal_flops: int
    head_flops: int
    weight_bytes: int

    def batch_flops(self, structures: Sequence[Structure], heads_per_node: bool) -> int:
        """Total FLOPs of a batch of structures."""
        leaves = sum(int(structure.is_leaf().sum()) for structure in structures)
        internal = sum(structure.num_nodes for structure in structures) - leaves
        heads = (leaves + internal) if heads_per_node else len(structures)
        head_flops = self.head_flops * heads if self.head_flops else 0
        return self.leaf_flops * leaves + self.internal_flops * internal + head_flops


def model_work(program: CheckedProgram) -> Work:
    """The work of a checked program, counted on its unoptimised recursive program."""
    return run_work(to_recursive(program), program)


def run_work(recursive: RecursiveProgram, program: CheckedProgram) -> Work:
    """The work of `recursive` (a recursive program of `program`, after any passes) per node:
    its rules' FLOPs and the bytes of the weights they read."""
    weight_names = {op.attr("param") for rule in recursive.rules() for op in rule.ops
                    if op.kind == "param"}
    weight_bytes = 4 * sum(_size(param.shape) for param in program.params
                           if param.name in weight_names)
    heads = rule_flops(recursive.heads) if recursive.heads is not None else 0
    return Work(rule_flops(recursive.leaf), rule_flops(recursive.internal), heads, weight_bytes)

"""Solutions to lesson 2: why frameworks are slow on trees."""

from __future__ import annotations

from cortexlang.ir.batches import BatchRange
from cortexlang.ir.recursive import SOURCE_KINDS


def eager_operator_calls(program, structures):
    """Leaves run the leaf rule's computed operators, internal nodes the internal rule's."""
    leaf_ops = sum(op.kind not in SOURCE_KINDS for op in program.leaf.ops)
    internal_ops = sum(op.kind not in SOURCE_KINDS for op in program.internal.ops)
    leaves = sum(int(structure.is_leaf().sum()) for structure in structures)
    nodes = sum(structure.num_nodes for structure in structures)
    return leaves * leaf_ops + (nodes - leaves) * internal_ops


def predicted_launches(kernels, linearized):
    """The level strategy: one launch per kernel per batch it covers."""
    leaf_batches = int((linearized.batch_start < linearized.num_leaves).sum())
    batches = {BatchRange.LEAF: leaf_batches,
               BatchRange.INTERNAL: linearized.num_batches - leaf_batches,
               BatchRange.ALL: linearized.num_batches, BatchRange.HEADS: 1}
    return sum(batches[over] for _, over in kernels.launches)


def legal_relu_source():
    """The branch on a computed value becomes relu, an elementwise function."""
    return """\
model TreeFC
sizes H = 8, V = 1000
structure binary_tree
param Emb[V, H]
param W[H, H], b[H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = relu(W @ (h[left(n)] + h[right(n)]) + b)
output h[root]
"""

"""Tile nodes (a kernel-IR step after plan_kernels): how many nodes of a batch one work-item
computes together, so that each weight row it loads serves several nodes.

The tile is the `node_tile` option. Where one work-item runs a whole tile alone (work-groups
of one item: CPUs), a partial tile at the end of a batch runs as sub-tiles of halving sizes
(3 nodes of a tile of 4: a sub-tile of 2, then 1), so that each weight row loaded still
serves every node it can and no lane computes a node twice; elsewhere (GPUs) the positions
past the end of the batch repeat its last node and their stores are skipped. Both are
recorded per kernel (`Kernel.node_tile`, `Kernel.partial_tiles`). A program whose phases
branch per node (leaves not specialised) keeps a tile of 1: the branch is per node.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram
from cortexlang.passes.result import PassResult, unchanged


def tile_nodes(program: KernelProgram, node_tile: int) -> PassResult[KernelProgram]:
    """Give every kernel a tile of `node_tile` nodes per work-item; say why not, if not."""
    if node_tile <= 1:
        return unchanged(program, "the node tile is 1: one node per work-item")
    if any(isinstance(stmt, L.If) for kernel in program.kernels
           for stmt in L.walk_stmts(kernel.phases)):
        return unchanged(program, "node tile 1: leaves are not specialised, so each node "
                         "branches")
    kernels = tuple(_tiled(kernel, node_tile) for kernel in program.kernels)
    partial = sorted({kernel.partial_tiles for kernel in kernels if kernel.partial_tiles})
    note = f"{node_tile} nodes per work-item"
    if partial:
        note += "; a partial tile runs as sub-tiles of " + ", ".join(
            " + ".join(str(size) for size in sizes) for sizes in partial)
    return PassResult(replace(program, kernels=kernels, node_tile=node_tile), note)


def _tiled(kernel: Kernel, node_tile: int) -> Kernel:
    if kernel.per_group:
        return kernel  # one work-item computes a group's members one after another
    alone = kernel.local_size == 1
    return replace(kernel, node_tile=node_tile,
                   partial_tiles=halving_tiles(node_tile) if alone else ())


def halving_tiles(node_tile: int) -> tuple[int, ...]:
    """The sub-tiles a partial tile of `node_tile` nodes runs as: halving powers of two from
    the largest below the tile, down to 1 (together they cover any remainder)."""
    sizes = []
    size = 1 << ((node_tile - 1).bit_length() - 1)
    while size >= 1:
        sizes.append(size)
        size //= 2
    return tuple(sizes)

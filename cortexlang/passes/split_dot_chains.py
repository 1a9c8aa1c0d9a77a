"""Split dot-product chains (a kernel-IR step after unroll_dot_products): into how many
partial sums each accumulator of a dot-product loop is split along k.

The printer fuses a unit loop's dot products of one shape (the same segments) into one loop
over k with one accumulator per product, tile node and row. Each accumulator is a chain of
dependent multiply-adds; a loop with fewer than MIN_CHAINS of them is latency-bound at a
fraction of the machine's rate. Then each accumulator is split into 2, 4, ... partial sums
over consecutive k (while every segment's length divides evenly), summed at the end. The
count depends on how many nodes the tile being printed holds (a full tile, or a sub-tile of a
partial one: see `tile_nodes`; one member at a time in an unrolled section), so it is
recorded per unit loop, shape and tile size in `Kernel.dot_chains` (where it is more than
1). Products stepping along k by 4 with vector loads (`unroll_dot_products`) hold 4 chains
each already and are not split.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import DotChains, Kernel, KernelProgram, tile_sizes, unit_loops
from cortexlang.passes.kernel_steps import each_kernel, plural
from cortexlang.passes.result import PassResult, unchanged

# Independent accumulator chains a dot-product loop needs to hide the latency of its
# multiply-adds (about 4 cycles each on current CPUs, one or two issued per cycle).
MIN_CHAINS = 4


def split_dot_chains(program: KernelProgram) -> PassResult[KernelProgram]:
    """Record the partial-sum count of every dot-product loop with too few chains; say how
    many, or why none."""
    split = each_kernel(program, _split)
    if split is program:
        return unchanged(program, f"every dot-product loop has {MIN_CHAINS} accumulators or "
                         "more, or segments too short to split")
    count = sum(len(kernel.dot_chains) for kernel in split.kernels)
    return PassResult(split, f"{plural(count, 'dot-product loop')} split into partial sums "
                      f"to reach {MIN_CHAINS} chains")


def _split(kernel: Kernel) -> Kernel:
    widths = dict(kernel.widths)
    rows = {tile.key: tile.rows for tile in kernel.row_tiles}
    unrolled = set(kernel.k_unrolled)
    chains: list[DotChains] = []
    for key, loop in unit_loops(kernel.phases):
        shapes: dict[tuple[tuple[int, int], ...], tuple[list[L.Segment], int]] = {}
        for stmt in loop.body:
            if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot):
                shape = tuple((s.start, s.stop) for s in stmt.value.segments)
                segments, count = shapes.get(shape, (list(stmt.value.segments), 0))
                shapes[shape] = (segments, count + 1)
        for shape, (segments, count) in shapes.items():
            if widths.get(key, 1) == 1 and (key, shape) in unrolled:
                continue
            for nodes in tile_sizes(kernel, key):
                parts = chain_split(count * nodes * rows.get(key, 1), segments)
                if parts > 1:
                    chains.append(DotChains(key, shape, nodes, parts))
    return replace(kernel, dot_chains=tuple(chains)) if chains else kernel


def chain_split(accumulators: int, segments: list[L.Segment]) -> int:
    """Into how many partial sums to split each of `accumulators` accumulators along k: a
    lone dot product (one node, one output) is otherwise one chain of dependent
    multiply-adds. Every segment's length must divide evenly."""
    split = 1
    while accumulators * split < MIN_CHAINS and \
            all((s.stop - s.start) % (split * 2) == 0 for s in segments):
        split *= 2
    return split

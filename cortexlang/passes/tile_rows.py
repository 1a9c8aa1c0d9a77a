"""Tile rows (a kernel-IR step after vectorize): a work-item computes several rows of a
flattened matrix loop, so that its per-column loads serve every row.

A unit loop over a flattened matrix (units j = row * length + column) where every use of j
is `j / length` or `j % length` and some product reads a value per row (`[... j / length]`)
gets a tile of ROW_TILE rows: the work-item computing `width` columns of one row computes the
same columns of the next rows too, and its vector loads per column (`[... j % length]`) are
shared. Needs a vector width of 2 or more (from `vectorize`). Recorded in `Kernel.row_tiles`
as (unit-loop key, rows, row length); the work-items a node tile needs follow.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram, RowTile, kernel_units, unit_loops
from cortexlang.passes.kernel_steps import each_kernel, plural, stmt_exprs
from cortexlang.passes.result import PassResult, unchanged

ROW_TILE = 4


def tile_rows(program: KernelProgram) -> PassResult[KernelProgram]:
    """Record the row tiles of flattened-matrix loops; say how many, or why none."""
    tiled = each_kernel(program, _row_tiled)
    if tiled is program:
        return unchanged(program, "no vectorised unit loop is a flattened matrix with a "
                         "product that reads a value per row")
    count = sum(len(kernel.row_tiles) for kernel in tiled.kernels)
    return PassResult(tiled, f"{plural(count, 'unit loop')} in tiles of {ROW_TILE} rows")


def _row_tiled(kernel: Kernel) -> Kernel:
    widths = dict(kernel.widths)
    tiles = []
    for key, loop in unit_loops(kernel.phases):
        tile = row_tile(loop, widths.get(key, 1))
        if tile is not None:
            tiles.append(RowTile(key, *tile))
    if not tiles:
        return kernel
    tiled = replace(kernel, row_tiles=tuple(tiles))
    return replace(tiled, units=kernel_units(tiled))


def row_tile(loop: L.Loop, width: int) -> tuple[int, int] | None:
    """(rows, row length) when a work-item should compute `rows` rows of a flattened matrix
    loop (units j = row * length + column) instead of one: every use of j is `j / length` or
    `j % length`, and some product reads a value per row (`[... j / length]`), so the values
    per column (`[... j % length]`, the vector loads) serve `rows` rows each."""
    def row_or_column(expr: L.Expr) -> bool:
        return isinstance(expr, L.Binary) and expr.op in ("/", "%") and \
            expr.lhs == L.Var("j") and isinstance(expr.rhs, L.Const) and expr.rhs.integer

    subs = [sub for expr in stmt_exprs(loop.body) for sub in L.walk_exprs(expr)]
    uses = [sub for sub in subs if row_or_column(sub)]
    moduli = {int(use.rhs.value) for use in uses}
    bare = sum(sub == L.Var("j") for sub in subs) > len(uses)
    per_row = any(row_or_column(sub) and sub.op == "/"
                  for dot in subs if isinstance(dot, L.Dot) for segment in dot.segments
                  for side in (segment.lhs, segment.rhs) for sub in L.walk_exprs(side))
    extent = int(loop.stop.value) if isinstance(loop.stop, L.Const) else 0
    if width < 2 or bare or not per_row or len(moduli) != 1:
        return None
    (length,) = moduli
    if length % width or extent % (length * ROW_TILE):
        return None
    return ROW_TILE, length

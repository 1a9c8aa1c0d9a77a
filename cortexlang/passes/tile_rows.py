"""Tile rows (a kernel-IR step after vectorize): a work-item computes several rows of a
flattened matrix loop, so that its per-column loads serve every row.

A unit loop over a flattened matrix (units j = row * length + column) where every use of j
is `j / length` or `j % length` and some product reads a value per row (`[... j / length]`)
gets a tile of ROW_TILE rows: the work-item computing `width` columns of one row computes the
same columns of the next rows too, and its vector loads per column (`[... j % length]`) are
shared. Needs a vector width of 2 or more (from `vectorize`). Recorded in `Kernel.row_tiles`
as (unit-loop key, rows, row length, the loop's statements for each row); the work-items a
node tile needs follow.

Row r of a tile computes units j + r * length. Its statements say so with the row and column
simplified: `(j + r * length) / length` is `j / length + r` and `(j + r * length) % length`
is `j % length` (j is at least 0), so every row's per-column loads are the same expressions
and the printer loads each once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram, RowTile, kernel_units, unit_loops
from cortexlang.ir.loop_walk import expressions, map_exprs
from cortexlang.passes.kernel_steps import each_kernel, plural
from cortexlang.passes.loop_indices import iconst
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
            rows, length = tile
            tiles.append(RowTile(key, rows, length, row_bodies(loop, rows, length)))
    if not tiles:
        return kernel
    tiled = replace(kernel, row_tiles=tuple(tiles))
    return replace(tiled, units=kernel_units(tiled))


def row_tile(loop: L.Loop, width: int) -> tuple[int, int] | None:
    """(rows, row length) when a work-item should compute `rows` rows of a flattened matrix
    loop (units j = row * length + column) instead of one: every use of j is `j / length` or
    `j % length`, and some product reads a value per row (`[... j / length]`), so the values
    per column (`[... j % length]`, the vector loads) serve `rows` rows each."""
    def row_or_column(expr: L.Expr) -> L.Const | None:
        """The divisor of `j / c` or `j % c`, else None."""
        if isinstance(expr, L.Binary) and expr.op in ("/", "%") and expr.lhs == L.Var("j") \
                and isinstance(expr.rhs, L.Const) and expr.rhs.integer:
            return expr.rhs
        return None

    subs = list(expressions(loop.body))
    divisors = [divisor for divisor in map(row_or_column, subs) if divisor is not None]
    moduli = {int(divisor.value) for divisor in divisors}
    bare = sum(sub == L.Var("j") for sub in subs) > len(divisors)
    per_row = any(row_or_column(sub) is not None and isinstance(sub, L.Binary) and sub.op == "/"
                  for dot in subs if isinstance(dot, L.Dot) for sub in expressions(dot))
    extent = int(loop.stop.value) if isinstance(loop.stop, L.Const) else 0
    if width < 2 or bare or not per_row or len(moduli) != 1:
        return None
    (length,) = moduli
    if length % width or extent % (length * ROW_TILE):
        return None
    return ROW_TILE, length


def row_bodies(loop: L.Loop, rows: int, length: int) -> tuple[tuple[L.Stmt, ...], ...]:
    """The unit loop's statements for each of `rows` rows of a tile (row 0: its own), row r
    computing units j + r * length (see the module's docstring)."""
    return tuple(loop.body if row == 0 else map_exprs(loop.body, _row_shift(row, length))
                 for row in range(rows))


def _row_shift(row: int, length: int) -> Callable[[L.Expr], L.Expr]:
    """The rewrite of one expression (children first) to row `row`: j is j + row * length,
    then its row and column are said simply."""
    unit, divisor = L.Var("j"), iconst(length)
    shifted = L.Binary("+", unit, iconst(row * length))

    def shift(expr: L.Expr) -> L.Expr:
        if expr == unit:
            return shifted
        if isinstance(expr, L.Binary) and expr.lhs == shifted and expr.rhs == divisor:
            if expr.op == "/":
                return L.Binary("+", L.Binary("/", unit, divisor), iconst(row))
            if expr.op == "%":
                return L.Binary("%", unit, divisor)
        return expr

    return shift

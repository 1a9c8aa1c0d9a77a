"""Block weights (a kernel-IR step after persist_weights): store a transposed weight in column
blocks of the vector width of the work-items that read it.

A work-item computing `width` units reads, at each k, `width` consecutive columns of a
transposed weight: with the plain layout consecutive k are a whole row apart, so a product
strides through memory (and pages). Blocked, each work-item's columns are one contiguous
stream. Applies when every read of the buffer is such a vector read, of one width (from
`vectorize`), at a column offset that is a multiple of it. Recorded in
`KernelProgram.layouts` as (buffer, block, columns); the weights are stored so at load time.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.kernels import KernelProgram, Layout, ordered_buffers, unit_loops
from cortexlang.passes.kernel_steps import stmt_exprs
from cortexlang.passes.result import PassResult, unchanged


def block_weights(program: KernelProgram) -> PassResult[KernelProgram]:
    """Record the blocked layouts of transposed weights; say which, or why none."""
    layouts = _weight_layouts(program)
    if not layouts:
        return unchanged(program, "no transposed weight is read only in vectors of one width "
                         "narrower than its rows")
    decisions = tuple(f"{layout.buffer.ir_text} stored in blocks of {layout.block} columns: "
                      "each work-item's weights are one contiguous stream"
                      for layout in layouts)
    return PassResult(replace(program, layouts=layouts,
                              decisions=program.decisions + decisions),
                      ", ".join(f"{layout.buffer.ir_text} in blocks of {layout.block}"
                                for layout in layouts))


def _weight_layouts(program: KernelProgram) -> tuple[Layout, ...]:
    found: dict[BufferRef, set[tuple[int, int] | None]] = {}
    for kernel in program.kernels:
        widths = dict(kernel.widths)
        for key, loop in unit_loops(kernel.phases):
            width = widths.get(key, 1)
            for expr in stmt_exprs(tuple(L.walk_stmts(loop.body))):
                for sub in L.walk_exprs(expr):
                    if isinstance(sub, L.Load) and sub.buffer.role is Role.WEIGHT_T:
                        found.setdefault(sub.buffer, set()).add(_block_of(sub, width))
    sizes = {buffer.ref: buffer.row_size for buffer in program.buffers}
    layouts = []
    for ref in ordered_buffers(found):
        shapes = found[ref]
        if len(shapes) == 1 and None not in shapes:
            block, columns = next(iter(shapes))  # type: ignore[misc]
            if sizes[ref] % columns == 0 and columns % block == 0 and columns > block:
                layouts.append(Layout(ref, block, columns))
    return tuple(layouts)


def _block_of(load: L.Load, width: int) -> tuple[int, int] | None:
    """(width, columns) when this load reads `width` consecutive columns at k (None: not a
    blockable read)."""
    form = L.affine(load.index)
    if width < 2 or form is None:
        return None
    terms, constant = form
    columns = terms.get("k", 0)
    if set(terms) != {"k", "j"} or terms["j"] != 1 or columns < width:
        return None
    if constant < 0 or (constant % columns) % width:
        return None
    return width, columns

"""Plan kernels from the loop IR (stage 3): strategy, geometry, local memory, launch order.

Decisions, each recorded in the kernel program so that printers and pictures can show why:

- strategy: with level fusion on a CPU, "cooperative": one launch per run of one work-group
  per compute unit, the groups sharing each batch's tasks and meeting at a counter between
  batches; on a GPU, "hybrid": batches wide enough to fill the device get one launch per
  phase, and from the first narrower batch on a single persistent work-group runs the rest
  of the run in one launch; without level fusion, "level" (one launch per batch and phase).
  See `cortexlang.ir.kernels`.
- node tile: how many nodes of a batch one work-item computes, so that each weight row loaded
  serves several nodes. 1 where leaves are not specialised (a per-node branch).
- work-group size: from the device's maximum work-group size, never assumed.
- weight persistence: with the persistent strategy, parameters read by products are copied
  into local memory once per run when they fit in half the device's local memory; with the
  level strategy every launch would copy them again, so they stay in global memory (where the
  node tile blocks them for the cache).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import (
    BATCH_GROUPS,
    BATCH_RANGE_BUFFERS,
    GROUP_START,
    WEIGHT_ROLES,
    BufferRef,
    Role,
)
from cortexlang.ir.kernels import (
    SYNC_BUFFER,
    Kernel,
    KernelProgram,
    counter_stride,
    loop_items,
    unit_loops,
)
from cortexlang.ir.limits import DeviceLimits


@dataclass(frozen=True)
class _Section:
    over: BatchRange
    node_lets: tuple[L.Let, ...]
    phases: tuple[L.Phase, ...]
    grouped: bool = False   # the recursion unrolled: one work-item per group (lower_loops)


def _sections(program: L.LoopProgram) -> list[_Section]:
    sections: list[_Section] = []
    for stmt in program.body:
        if not isinstance(stmt, L.Loop):
            raise InternalError("plan_kernels", "top-level statement is not a loop")
        if stmt.batches is None:
            raise InternalError("plan_kernels", "top-level loop covers no batch range")
        over = stmt.batches
        grouped = False
        if stmt.kind == "batches":
            node_loop = stmt.body[0]
            assert isinstance(node_loop, L.Loop)
            if node_loop.kind == "groups":
                grouped = True
                node_loop = node_loop.body[0]
                assert isinstance(node_loop, L.Loop) and node_loop.kind == "members"
            body = node_loop.body
        else:
            body = stmt.body
        lets = tuple(s for s in body if isinstance(s, L.Let))
        phases = tuple(s for s in body if isinstance(s, L.Phase))
        sections.append(_Section(over, lets, phases, grouped))
    return sections


def _vectorisable(loop: L.Loop, lanes: int) -> bool:
    """Can `lanes` consecutive units of this loop be computed as one vector by one
    work-item? Stores must be contiguous, loads contiguous or the same in every lane."""
    values: list[L.Expr] = []
    for stmt in loop.body:
        if isinstance(stmt, L.Store):
            if L.lane_stride(stmt.index, "j", lanes) != 1:
                return False
            values.append(stmt.value)
        elif isinstance(stmt, L.Let):
            values.append(stmt.value)
    for value in values:
        for sub in L.walk_exprs(value):
            if isinstance(sub, L.Load) and L.lane_stride(sub.index, "j", lanes) not in (0, 1):
                return False
            if isinstance(sub, L.Select) and L.mentions(sub.condition, "j"):
                return False
            if isinstance(sub, L.Reduce) and L.mentions(sub.body, "j"):
                return False
    return all(not _uses_unit_as_value(value) for value in values)


def _uses_unit_as_value(expr: L.Expr) -> bool:
    if isinstance(expr, L.Var):
        return expr.name == "j"
    if isinstance(expr, L.Load):
        return False
    if isinstance(expr, L.Binary):
        return _uses_unit_as_value(expr.lhs) or _uses_unit_as_value(expr.rhs)
    if isinstance(expr, L.Call):
        return any(_uses_unit_as_value(arg) for arg in expr.args)
    if isinstance(expr, L.Select):
        return any(_uses_unit_as_value(e) for e in (expr.condition, expr.then, expr.otherwise))
    if isinstance(expr, L.Dot):
        return any(_uses_unit_as_value(s.lhs) or _uses_unit_as_value(s.rhs)
                   for s in expr.segments)
    if isinstance(expr, L.Reduce):
        return _uses_unit_as_value(expr.body)
    return False


ROW_TILE = 4


def _stmt_exprs(stmts: tuple[L.Stmt, ...]) -> list[L.Expr]:
    """The expressions of these statements' lets and stores (nested statements excluded)."""
    return [expr for stmt in stmts for expr in (
        [stmt.value] if isinstance(stmt, L.Let) else
        [stmt.index, stmt.value] if isinstance(stmt, L.Store) else [])]


def _row_tile(loop: L.Loop, width: int) -> tuple[int, int] | None:
    """(rows, row length) when a work-item should compute `rows` rows of a flattened matrix
    loop (units j = row * length + column) instead of one: every use of j is `j / length` or
    `j % length`, and some product reads a value per row (`[... j / length]`), so the values
    per column (`[... j % length]`, the vector loads) serve `rows` rows each."""
    def row_or_column(expr: L.Expr) -> bool:
        return isinstance(expr, L.Binary) and expr.op in ("/", "%") and \
            expr.lhs == L.Var("j") and isinstance(expr.rhs, L.Const) and expr.rhs.integer

    subs = [sub for expr in _stmt_exprs(loop.body) for sub in L.walk_exprs(expr)]
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


def _widths(phases: tuple[L.Phase, ...], limits: DeviceLimits) -> tuple[
        tuple[tuple[str, int], ...], int, tuple[tuple[str, int, int], ...]]:
    """The vector width of every unit loop, the work-items needed per node tile, and the
    row tiles of flattened-matrix loops (see `_row_tile`)."""
    widths: list[tuple[str, int]] = []
    rows: list[tuple[str, int, int]] = []
    items = 1
    widest = 1 if limits.is_gpu else max(1, limits.preferred_vector_width)
    for key, loop in unit_loops(phases):
        extent = int(loop.stop.value) if isinstance(loop.stop, L.Const) else 1
        width = 1
        for candidate in (16, 8, 4, 2):
            if candidate <= widest and extent % candidate == 0 and \
                    _vectorisable(loop, candidate):
                width = candidate
                break
        widths.append((key, width))
        tile = _row_tile(loop, width)
        if tile is not None:
            rows.append((key, *tile))
        items = max(items, loop_items(loop, width, tile[0] if tile else 1))
    return tuple(widths), items, tuple(rows)


def _buffers_used(lets: tuple[L.Let, ...], phases: tuple[L.Phase, ...],
                  batched: bool = True) -> tuple[tuple[BufferRef, ...], tuple[BufferRef, ...]]:
    """Buffers read and written; batch sections also read the batch ranges."""
    reads: set[BufferRef] = set(BATCH_RANGE_BUFFERS) if batched else set()
    writes: set[BufferRef] = set()
    exprs: list[L.Expr] = [let.value for let in lets]
    for stmt in L.walk_stmts(phases):
        if isinstance(stmt, L.Let):
            exprs.append(stmt.value)
        elif isinstance(stmt, L.Store):
            writes.add(stmt.buffer)
            exprs += [stmt.index, stmt.value]
        elif isinstance(stmt, L.If):
            exprs.append(stmt.condition)
    for expr in exprs:
        reads.update(sub.buffer for sub in L.walk_exprs(expr) if isinstance(sub, L.Load))
    return _ordered(reads), _ordered(writes)


def _has_branch(phases: tuple[L.Phase, ...]) -> bool:
    return any(isinstance(stmt, L.If) for stmt in L.walk_stmts(phases))


def _ordered(refs: Iterable[BufferRef]) -> tuple[BufferRef, ...]:
    """Buffers in the order of their printed names (the kernel printer lists them so)."""
    return tuple(sorted(refs, key=lambda ref: ref.ir_text))


def _product_params(phases: tuple[L.Phase, ...]) -> set[BufferRef]:
    names: set[BufferRef] = set()
    for stmt in L.walk_stmts(phases):
        if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot):
            for segment in stmt.value.segments:
                names.update(sub.buffer for sub in L.walk_exprs(segment.lhs)
                             if isinstance(sub, L.Load)
                             and sub.buffer.role in WEIGHT_ROLES)
    return names


def _lines(phases: tuple[L.Phase, ...]) -> tuple[int, ...]:
    return tuple(sorted({phase.span.line for phase in phases if phase.span is not None}))


def _level_kernels(sections: list[_Section], limits: DeviceLimits, tile: int) -> list[Kernel]:
    """One kernel per section and phase, launched once per batch."""
    local_cap = max(1, min(limits.max_work_group_size, 256))
    kernels: list[Kernel] = []
    for section in sections:
        if section.grouped:
            kernels.append(_group_kernel(section, limits))
            continue
        for phase in section.phases:
            name = f"{phase.rule}_{section.over.value}_phase{phase.index}" \
                if phase.rule != section.over.value else f"{phase.rule}_phase{phase.index}"
            reads, writes = _buffers_used(section.node_lets, (phase,),
                                          section.over is not BatchRange.HEADS)
            widths, items, rows = _widths((phase,), limits)
            # A fixed work-group size: the CPU driver compiles a kernel once per size, so
            # letting it pick per launch would recompile for every new batch length. On a CPU
            # each work-item keeps its units (and their weights, in cache) and walks the
            # batch's node tiles; on a GPU node tiles spread over a second dimension.
            local = min(local_cap, items) if limits.is_gpu else 1
            kernels.append(Kernel(name, section.over, section.node_lets, (phase,), items, tile,
                                  local, reads, writes, (), widths, not limits.is_gpu, (),
                                  _lines((phase,)), row_tiles=rows))
    return kernels


def _group_kernel(section: _Section, limits: DeviceLimits) -> Kernel:
    """An unrolled section's per-level kernel: every phase, one work-item per group of the
    batch (dimension 1), each computing every unit of its members in order."""
    rule = section.phases[0].rule if section.phases else section.over.value
    reads, writes = _buffers_used(section.node_lets, section.phases)
    reads = _ordered(reads + (GROUP_START, BATCH_GROUPS))
    widths, _, rows = _widths(section.phases, limits)
    name = f"{rule}_groups" if rule == section.over.value else \
        f"{rule}_{section.over.value}_groups"
    return Kernel(name, section.over, section.node_lets,
                  section.phases, 1, 1, 1, reads, writes, (), widths, False, (),
                  _lines(section.phases), row_tiles=rows, grouped=(section.over,))


def _persistent_kernel(program: L.LoopProgram, sections: list[_Section], limits: DeviceLimits,
                       tile: int, persist_weights: bool, decisions: list[str],
                       groups: int = 0) -> Kernel:
    """Work-groups looping over batches (from `first_fused` on) and phases: one, or with
    `groups` (> 0) that many, cooperating through the sync counters."""
    # On a CPU one work-item computes a vector of units; a group of one work-item keeps the
    # driver from vectorising across work-items again and needs no barriers.
    local = max(1, min(limits.max_work_group_size, 256)) if limits.is_gpu else 1
    all_phases = tuple(p for section in sections for p in section.phases)
    all_lets = tuple(let for section in sections for let in section.node_lets)
    reads, writes = _buffers_used(all_lets, all_phases)
    cached: list[BufferRef] = []
    if persist_weights:
        sizes = {b.ref: b.row_size * 4 for b in program.buffers}
        budget = limits.local_mem_size // 2
        for ref in _ordered(_product_params(all_phases)):
            if sizes[ref] <= budget:
                cached.append(ref)
                budget -= sizes[ref]
            else:
                decisions.append(f"{ref.ir_text} stays in global memory: {sizes[ref]} bytes "
                                 "do not fit in the local memory left")
        if cached:
            decisions.append("weights in local memory for the fused batches: "
                             + ", ".join(ref.ir_text for ref in cached))
    widths, items, rows = _widths(all_phases, limits)
    if groups:
        writes = _ordered(writes + (SYNC_BUFFER,))
    grouped = tuple(s.over for s in sections if s.grouped)
    if grouped:
        reads = _ordered(reads + (GROUP_START, BATCH_GROUPS))
    return Kernel("forward", BatchRange.RUN, (), all_phases, items, tile, local, reads, writes,
                  tuple(cached), widths, False,
                  tuple((s.over, s.node_lets, s.phases) for s in sections), _lines(all_phases),
                  max(1, groups), rows, grouped=grouped)


# Work-groups of a cooperative kernel at most: each claims tasks at every step, so a group
# per core is the point; past this many, more only adds claims.
MAX_GROUPS = 256


def _groups(count: int) -> str:
    return "1 work-group" if count == 1 else f"{count} work-groups"


def _cooperative(program: L.LoopProgram, sections: list[_Section], limits: DeviceLimits,
                 tile: int, persist_weights: bool,
                 decisions: list[str]) -> tuple[Kernel, L.Buffer]:
    """The whole run as one launch of one single-item work-group per compute unit."""
    groups = min(max(1, limits.compute_units), MAX_GROUPS)
    kernel = _persistent_kernel(program, sections, limits, tile, persist_weights, decisions,
                                groups=groups)
    # Claim counters, one per group, then the finished-task counter; rows of 64-byte lines.
    row = -(-(kernel.groups + 1) * counter_stride(kernel.groups) // 16) * 16
    decisions.insert(0, f"one launch per run: {_groups(kernel.groups)} (one per compute "
                     "unit) share each batch's tasks, a block of units for a node tile; each "
                     "claims its own units first, so their weight rows stay in its core's "
                     "cache, then any task left; a counter of finished tasks is the barrier "
                     "between batches")
    return kernel, L.Buffer(SYNC_BUFFER, "steps", row, integer=True)


def _weight_layouts(program: L.LoopProgram,
                    kernels: list[Kernel]) -> tuple[tuple[BufferRef, int, int], ...]:
    """Block transposed weights by the vector width of the work-items that read them.

    A work-item computing `width` units reads, at each k, `width` consecutive columns of a
    transposed weight: with the plain layout consecutive k are a whole row apart, so a
    product strides through memory (and pages). Blocked, each work-item's columns are one
    contiguous stream. Applies when every read of the buffer is such a vector read, of one
    width, at a column offset that is a multiple of it."""
    found: dict[BufferRef, set[tuple[int, int] | None]] = {}
    for kernel in kernels:
        widths = dict(kernel.widths)
        for key, loop in unit_loops(kernel.phases):
            width = widths.get(key, 1)
            for expr in _stmt_exprs(tuple(L.walk_stmts(loop.body))):
                for sub in L.walk_exprs(expr):
                    if isinstance(sub, L.Load) and sub.buffer.role is Role.WEIGHT_T:
                        found.setdefault(sub.buffer, set()).add(_block_of(sub, width))
    sizes = {buffer.ref: buffer.row_size for buffer in program.buffers}
    layouts = []
    for ref in _ordered(found):
        shapes = found[ref]
        if len(shapes) == 1 and None not in shapes:
            block, columns = next(iter(shapes))  # type: ignore[misc]
            if sizes[ref] % columns == 0 and columns % block == 0 and columns > block:
                layouts.append((ref, block, columns))
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


def plan_kernels(program: L.LoopProgram, limits: DeviceLimits, *, fuse_levels: bool,
                 persist_weights: bool, node_tile: int) -> KernelProgram:
    """Stage 3: kernels and launches for a loop program on a device with `limits`."""
    sections = _sections(program)
    decisions: list[str] = []
    branchy = any(_has_branch(section.phases) for section in sections)
    tile = 1 if branchy else max(1, node_tile)
    if branchy and node_tile > 1:
        decisions.append("node tile 1: leaves are not specialised, so each node branches")
    batch_sections = [section for section in sections if section.over is not BatchRange.HEADS]
    buffers = program.buffers
    if fuse_levels and not limits.is_gpu:
        kernel, sync = _cooperative(program, sections, limits, tile, persist_weights, decisions)
        kernels = [kernel]
        buffers += (sync,)
        launches = [(kernel.name, kernel.over)]
        fuse_below = 0
        strategy = "cooperative"
    elif fuse_levels:
        # A GPU: a batch is worth its own launch across every compute unit when it has at
        # least a node per compute unit. From the first narrower batch on, the rest of the
        # run is one launch of one work-group: a GPU gives no guarantee that a waiting
        # work-group lets the others run, and its caches need not see their stores.
        fuse_below = max(2, limits.compute_units)
        kernels = _level_kernels(batch_sections, limits, tile)
        kernels.append(_persistent_kernel(program, sections, limits, tile, persist_weights,
                                          decisions))
        launches = [(kernel.name, kernel.over) for kernel in kernels]
        decisions.insert(0, f"batches of {fuse_below} nodes or more get one launch per phase "
                         "across all compute units; from the first narrower batch on, one "
                         "persistent work-group runs the rest of the run in one launch")
        strategy = "hybrid"
    else:
        fuse_below = 0
        kernels = _level_kernels(sections, limits, tile)
        launches = [(kernel.name, kernel.over) for kernel in kernels]
        decisions.append("one launch per batch and phase; the host enqueues a run's launches "
                         "back to back and waits once")
        if persist_weights:
            decisions.append("weight persistence not applied: every per-level launch would "
                             "reload local memory; the node tile blocks weights for the cache")
        strategy = "level"
    if any(section.grouped for section in sections):
        decisions.append("recursion unrolled by 2: each step computes a batch's groups (inlined "
                         "children, then their parent), one work-item per group, every unit")
    layouts = _weight_layouts(program, kernels)
    for ref, block, _ in layouts:
        decisions.append(f"{ref.ir_text} stored in blocks of {block} columns: each work-item's "
                         "weights are one contiguous stream")
    return KernelProgram(program.name, strategy, buffers, tuple(kernels),
                         tuple(launches), tile, limits.items(), program.notes,
                         tuple(decisions), fuse_below, layouts)

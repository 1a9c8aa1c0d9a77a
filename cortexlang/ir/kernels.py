"""Stage 3, the kernel IR: kernels, their buffers, work-group geometry and launch order.

OpenCL has no barrier across work-groups, so the recursion's sequential loop over batches
must be split by one of three strategies, chosen per program and visible here:

- "level": one launch per batch (and per phase of the rule), each an NDRange over
  (units, node tiles); the host enqueues a whole run's launches back to back and waits once.
  Every work-group is independent, so it runs on any device at full width.
- "hybrid": batches of at least `fuse_below` nodes as above; from the first narrower batch
  on, one launch of a single *persistent* work-group that loops over the remaining batches
  and phases with barriers between them. The narrow top of a batch of trees then costs one
  launch instead of one per level, and the wide bottom still uses every compute unit.
- "cooperative" (CPUs): the whole run is one launch of `groups` work-groups, one per compute
  unit, that share each batch's tasks (a block of units for a node tile). Tasks are claimed
  with atomic counters, each group taking its own block of units first (so its weight rows
  stay in its core's cache) and then any task left unclaimed; a counter of finished tasks
  per step is the barrier between batches. A group waits only for tasks that a running group
  has claimed, so the run completes even when the driver runs the groups one after another.

A kernel holds phases of the loop IR; `node_tile` nodes share each loaded weight row.

`plan_kernels` makes the kernels, their strategy, work-group geometry and launch order; the
kernel-IR steps after it (see `cortexlang.passes.pipeline`) each record one more decision
here, as typed data that the printer below shows and the OpenCL printer reads:

    tile_nodes           Kernel.node_tile, Kernel.partial_tiles
    vectorize            Kernel.widths (and Kernel.units)
    tile_rows            Kernel.row_tiles (and Kernel.units)
    persist_weights      Kernel.cached_params
    block_weights        KernelProgram.layouts
    unroll_dot_products  Kernel.k_unrolled
    split_dot_chains     Kernel.dot_chains

The device's limits the decisions were made for travel beside them (`KernelProgram.limits`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BATCH_GROUPS, GROUP_START, BufferRef, Role
from cortexlang.ir.limits import DeviceLimits

# A shape of dot products: the (start, stop) of each of its segments along k.
Shape = tuple[tuple[int, int], ...]


class RowTile(NamedTuple):
    """A flattened-matrix unit loop (units j = row * length + column) whose work-items each
    compute `rows` consecutive rows of their columns (`tile_rows`)."""

    key: str
    rows: int
    length: int


class DotChains(NamedTuple):
    """The dot products of one shape in unit loop `key`, printed for a tile of `nodes` nodes:
    each accumulator split along k into `split` partial sums (`split_dot_chains`)."""

    key: str
    shape: Shape
    nodes: int
    split: int


class Layout(NamedTuple):
    """A blocked weight (`block_weights`): `buffer` holds a matrix of `columns` columns (a
    transposed weight: k rows, one column per output unit) stored as column blocks of
    `block` units, each block row-major: element (k, c) sits at
    ((c // block) * rows + k) * block + c % block, so a work-item's units stream
    contiguously through memory as k steps."""

    buffer: BufferRef
    block: int
    columns: int


# A persistent kernel's section: what it covers, its per-node lets, its phases.
Section = tuple[BatchRange, tuple[L.Let, ...], tuple[L.Phase, ...]]


@dataclass(frozen=True, slots=True)
class Kernel:
    """One OpenCL kernel.

    over: which nodes a launch covers (`BatchRange`): leaf or internal batches, all batches,
      the heads, or the run (a persistent kernel covering everything).
    node_lets: per-node values (child ids, token rows) every phase may use.
    phases: the loop-IR phases it computes, in order (barriers between them).
    units: work-items per node tile in dimension 0 (each computes `width` units of a group).
    widths: per unit loop (key "rule.phase.position"), how many consecutive units one
      work-item computes as one vector (1 on GPUs, where neighbouring work-items coalesce).
    local_size: work-group size chosen from the device's limits (None: the driver picks).
    cached_params: parameters copied into local memory once per work-group (persistence).
    tiles_in_kernel: each work-item loops over all node tiles of its batch (CPUs: its weight
      rows stay in cache) instead of one tile per work-item in dimension 1 (GPUs).
    partial_tiles: the sub-tiles, largest first, that a partial node tile at the end of a
      batch runs as (one work-item per tile); empty: its positions past the end repeat the
      batch's last node and their stores are skipped.
    """

    name: str
    over: BatchRange
    node_lets: tuple[L.Let, ...]
    phases: tuple[L.Phase, ...]
    units: int
    node_tile: int
    local_size: int | None
    reads: tuple[BufferRef, ...]
    writes: tuple[BufferRef, ...]
    cached_params: tuple[BufferRef, ...] = ()
    widths: tuple[tuple[str, int], ...] = ()
    tiles_in_kernel: bool = False
    sections: tuple[Section, ...] = ()
    source_lines: tuple[int, ...] = ()
    groups: int = 1
    # Flattened-matrix unit loops a work-item computes several rows of: (key, rows, length).
    row_tiles: tuple[RowTile, ...] = ()
    # Dot products that step along k by 4 lanes with vector loads (`unroll_dot_products`):
    # (unit-loop key, the (start, stop) of each segment of the products of that shape).
    k_unrolled: tuple[tuple[str, Shape], ...] = ()
    # The sections (by what they cover) whose batches are groups of nodes, one work-item a
    # group, every phase in one step (the recursion unrolled, `unroll_recursion`).
    grouped: tuple[BatchRange, ...] = ()
    partial_tiles: tuple[int, ...] = ()
    dot_chains: tuple[DotChains, ...] = ()

    @property
    def per_group(self) -> bool:
        """A per-level kernel of an unrolled section: one work-item per group, computing every
        unit of every phase of its members (its `units` is 1 and its node tile 1)."""
        return self.over in self.grouped

    @property
    def phases_per_step(self) -> int:
        """Steps of a cooperative kernel are numbered batch * this + phase (a grouped section
        takes one step per batch)."""
        return max((1 if over in self.grouped else len(phases)
                    for over, _, phases in self.sections), default=1)


def unit_loops(phases: tuple[L.Phase, ...]) -> list[tuple[str, L.Loop]]:
    """Every unit loop with its key "rule.phase.position" (the key of `Kernel.widths` and
    `Kernel.row_tiles`), nested phases included."""
    found: list[tuple[str, L.Loop]] = []

    def visit(phase: L.Phase) -> None:
        position = 0
        for stmt in phase.body:
            if isinstance(stmt, L.Loop) and stmt.kind is L.LoopKind.UNITS:
                found.append((f"{phase.rule}.{phase.index}.{position}", stmt))
                position += 1
            elif isinstance(stmt, L.If):
                for inner in stmt.then + stmt.otherwise:
                    if isinstance(inner, L.Phase):
                        visit(inner)

    for phase in phases:
        visit(phase)
    return found


def loop_items(loop: L.Loop, width: int, rows: int = 1) -> int:
    """Work-items a unit loop needs per node tile: its units in vectors of `width`, and rows
    of a row tile together."""
    extent = int(loop.stop.value) if isinstance(loop.stop, L.Const) else 1
    return max(1, extent // width // rows)


def phase_items(kernel: Kernel, phase: L.Phase) -> int:
    """Work-items one node tile of this phase needs: its widest unit loop."""
    return _items(kernel, (phase,))


def kernel_units(kernel: Kernel) -> int:
    """Work-items one node tile of the kernel needs (`Kernel.units`): its widest unit loop,
    in vectors of its width and row tiles of its rows (1 for a per-group kernel, whose one
    work-item loops over them)."""
    return 1 if kernel.per_group else _items(kernel, kernel.phases)


def _items(kernel: Kernel, phases: tuple[L.Phase, ...]) -> int:
    widths = dict(kernel.widths)
    rows = {tile.key: tile.rows for tile in kernel.row_tiles}
    return max((loop_items(loop, widths.get(key, 1), rows.get(key, 1))
                for key, loop in unit_loops(phases)), default=1)


def tile_sizes(kernel: Kernel, key: str) -> tuple[int, ...]:
    """The numbers of nodes the printed tiles of unit loop `key` hold: a full tile, then the
    sub-tiles of a partial one; a member of a group at a time in an unrolled section."""
    grouped = {found for over, _, phases in kernel.sections if over in kernel.grouped
               for found, _ in unit_loops(phases)}
    if kernel.per_group or key in grouped:
        return (1,)
    return (kernel.node_tile,) + kernel.partial_tiles


def ordered_buffers(refs: Iterable[BufferRef]) -> tuple[BufferRef, ...]:
    """Buffers in the order of their printed names (the kernel printer lists them so)."""
    return tuple(sorted(refs, key=lambda ref: ref.ir_text))


SYNC_BUFFER = BufferRef(Role.SYNC, "sync")


def counter_stride(groups: int) -> int:
    """Ints between two counters of a cooperative step: a 64-byte line each, so that groups
    claiming at once do not contend for one line, while there are few groups (many would
    make a step's row large: it has one counter per group)."""
    return 16 if groups <= 16 else 1


def sync_rows(kernel: Kernel, num_batches: int) -> int:
    """Rows of the cooperative kernel's counters for a run: one per step (a batch's phase,
    or a phase of the heads), then one counting the groups that have finished the run (the
    last one zeroes every row for the next run)."""
    return (num_batches + 1) * kernel.phases_per_step + 1


@dataclass(frozen=True, slots=True)
class KernelProgram:
    name: str
    strategy: str
    buffers: tuple[L.Buffer, ...]
    kernels: tuple[Kernel, ...]
    launches: tuple[tuple[str, BatchRange], ...]   # (kernel, what it covers) in order
    node_tile: int
    limits: DeviceLimits = field(default_factory=DeviceLimits)  # what it was planned for
    notes: tuple[tuple[str, str], ...] = ()
    # Why, in words, for the decisions a line of typed data does not explain by itself.
    decisions: tuple[str, ...] = field(default=())
    fuse_below: int = 0
    layouts: tuple[Layout, ...] = ()  # blocked weights (see `Layout`)

    def layout(self, ref: BufferRef) -> tuple[int, int] | None:
        """(block, columns) of a blocked buffer, None when it is stored plainly."""
        return next(((block, columns) for buffer, block, columns in self.layouts
                     if buffer == ref), None)

    def kernel(self, name: str) -> Kernel:
        return next(kernel for kernel in self.kernels if kernel.name == name)


def format_kernels(program: KernelProgram) -> str:
    """Deterministic text of the kernel program (the stage's printer)."""
    lines = [f"kernel program {program.name}", f"strategy {program.strategy}, "
             f"node tile {program.node_tile}"
             + (f", fused from the first batch under {program.fuse_below} nodes"
                if program.fuse_below else "")]
    for key, value in program.limits.items():
        lines.append(f"device {key} = {value}")
    for decision in program.decisions:
        lines.append(f"decision: {decision}")
    for buffer in program.buffers:
        lines.append(f"buffer {buffer.ref.ir_text}: {'int' if buffer.integer else 'float'}"
                     f"[{buffer.rows.value}][{buffer.row_size}]")
    for ref, block, columns in program.layouts:
        lines.append(f"layout {ref.ir_text}: {columns} columns in blocks of {block}, each block "
                     "contiguous along k")
    for kernel in program.kernels:
        geometry = f"{kernel.units} work-items x node tiles of {kernel.node_tile}"
        local = kernel.local_size if kernel.local_size is not None else "driver"
        cooperating = f", {kernel.groups} work-groups cooperating" if SYNC_BUFFER in \
            kernel.writes else ""
        lines.append(f"kernel {kernel.name} over {kernel.over.value}: {geometry}, "
                     f"work-group {local}{cooperating}")
        if kernel.tiles_in_kernel:
            lines.append("  each work-item walks every node tile of its batch")
        if kernel.grouped:
            lines.append("  unrolled: one work-item per group of "
                         + ", ".join(over.value for over in kernel.grouped)
                         + " nodes, every phase and unit, members in order")
        if kernel.partial_tiles:
            lines.append("  a partial node tile runs as sub-tiles of "
                         + ", ".join(str(size) for size in kernel.partial_tiles))
        if kernel.widths:
            lines.append("  vector widths: " + ", ".join(f"{key}={width}"
                                                        for key, width in kernel.widths))
        if kernel.row_tiles:
            lines.append("  row tiles: " + ", ".join(f"{key}={rows} rows of {length}"
                                                    for key, rows, length in kernel.row_tiles))
        if kernel.k_unrolled:
            lines.append("  dot products unrolled along k by 4: " + ", ".join(
                f"{key} [{_shape(shape)}]"
                for key, shape in kernel.k_unrolled))
        if kernel.dot_chains:
            lines.append("  dot products split into partial sums: " + ", ".join(
                f"{chains.key} [{_shape(chains.shape)}] x{chains.split} for "
                f"{chains.nodes} node{'s' if chains.nodes != 1 else ''}"
                for chains in kernel.dot_chains))
        if kernel.cached_params:
            lines.append(f"  local memory: {_names(kernel.cached_params)}")
        lines.append(f"  reads {_names(kernel.reads)}")
        lines.append(f"  writes {_names(kernel.writes)}")
        for phase in kernel.phases:
            lines.append(f"  phase {phase.rule}.{phase.index}: stores {_names(phase.stores)}")
        for label, _, phases in kernel.sections:
            lines.append(f"  section {label.value}: phases {len(phases)}")
    lines.append("launches per run:")
    for kernel_name, over in program.launches:
        lines.append(f"  {kernel_name}: {over.value}")
    return "\n".join(lines) + "\n"


def _names(refs: tuple[BufferRef, ...]) -> str:
    return ", ".join(ref.ir_text for ref in refs)


def _shape(shape: Shape) -> str:
    return " ".join(f"{start}:{stop}" for start, stop in shape)


def verify_kernels(program: KernelProgram) -> None:
    declared = {buffer.ref for buffer in program.buffers}
    names = {kernel.name for kernel in program.kernels}
    for kernel in program.kernels:
        for buffer in kernel.reads + kernel.writes:
            if buffer not in declared:
                raise InternalError("verify_kernels",
                                    f"{kernel.name} uses undeclared {buffer.ir_text}")
        if kernel.units < 1 or kernel.node_tile < 1 or kernel.groups < 1:
            raise InternalError("verify_kernels", f"{kernel.name} has an empty geometry")
        if kernel.grouped and not {GROUP_START, BATCH_GROUPS} <= set(kernel.reads):
            raise InternalError("verify_kernels", f"{kernel.name} computes groups without "
                                "reading the group arrays")
        if program.strategy == "cooperative" and kernel.over is BatchRange.RUN:
            if SYNC_BUFFER not in kernel.writes or kernel.local_size != 1:
                raise InternalError("verify_kernels", f"cooperative kernel {kernel.name} needs "
                                    "the sync counters and work-groups of one work-item")
        _verify_decisions(kernel)
    sizes = {buffer.ref: buffer.row_size for buffer in program.buffers}
    for ref, block, columns in program.layouts:
        if ref not in sizes or block < 1 or columns % block or sizes[ref] % columns:
            raise InternalError("verify_kernels", f"layout of {ref.ir_text} does not tile it")
    for kernel_name, _ in program.launches:
        if kernel_name not in names:
            raise InternalError("verify_kernels", f"launch of unknown kernel {kernel_name}")


def _verify_decisions(kernel: Kernel) -> None:
    """The decisions of the steps after plan_kernels fit the kernel's loops and geometry."""
    def fail(message: str) -> None:
        raise InternalError("verify_kernels", f"{kernel.name}: {message}")

    loops = dict(unit_loops(kernel.phases))
    extents = {key: int(loop.stop.value) if isinstance(loop.stop, L.Const) else 1
               for key, loop in loops.items()}
    widths = dict(kernel.widths)
    for key, width in kernel.widths:
        if key not in loops or width < 1 or extents[key] % width:
            fail(f"vector width {width} of {key} does not divide a unit loop")
    for key, rows, length in kernel.row_tiles:
        if key not in loops or rows < 1 or length % widths.get(key, 1) or \
                extents[key] % (rows * length):
            fail(f"row tile of {key} does not tile its unit loop")
    if kernel.units != kernel_units(kernel):
        fail(f"{kernel.units} work-items per node tile, but its loops need "
             f"{kernel_units(kernel)}")
    partial = kernel.partial_tiles
    if partial and (kernel.local_size != 1 or list(partial) != sorted(set(partial), reverse=True)
                    or partial[0] >= kernel.node_tile or partial[-1] != 1
                    or sum(partial) < kernel.node_tile - 1):
        fail(f"sub-tiles {partial} do not cover a partial tile of {kernel.node_tile}")
    for chains in kernel.dot_chains:
        loop = loops.get(chains.key)
        dots = [stmt.value for stmt in (loop.body if loop is not None else ())
                if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot)
                and tuple((s.start, s.stop) for s in stmt.value.segments) == chains.shape]
        if not dots or chains.nodes not in tile_sizes(kernel, chains.key) or \
                chains.split < 2 or \
                chains.split & (chains.split - 1) or \
                any((stop - start) % chains.split for start, stop in chains.shape):
            fail(f"dot-product chains of {chains.key} do not split its products evenly")
    if not set(kernel.cached_params) <= set(kernel.reads):
        fail("caches a parameter it does not read")

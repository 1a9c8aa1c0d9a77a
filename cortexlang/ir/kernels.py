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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BATCH_GROUPS, GROUP_START, BufferRef, Role

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
    row_tiles: tuple[tuple[str, int, int], ...] = ()
    # Dot products that step along k by 4 lanes with vector loads (`unroll_dot_products`):
    # (unit-loop key, the (start, stop) of each segment of the products of that shape).
    k_unrolled: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    # The sections (by what they cover) whose batches are groups of nodes, one work-item a
    # group, every phase in one step (the recursion unrolled, `unroll_recursion`).
    grouped: tuple[BatchRange, ...] = ()

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
            if isinstance(stmt, L.Loop) and stmt.kind == "units":
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
    widths = dict(kernel.widths)
    rows = {key: count for key, count, _ in kernel.row_tiles}
    return max((loop_items(loop, widths.get(key, 1), rows.get(key, 1))
                for key, loop in unit_loops((phase,))), default=1)


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
    device_limits: tuple[tuple[str, int], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    decisions: tuple[str, ...] = field(default=())
    fuse_below: int = 0
    # Blocked weight layouts: (buffer, block, columns). The buffer holds a matrix of
    # `columns` columns (a transposed weight: k rows, one column per output unit) stored as
    # column blocks of `block` units, each block row-major: element (k, c) sits at
    # ((c // block) * rows + k) * block + c % block, so a work-item's units stream
    # contiguously through memory as k steps.
    layouts: tuple[tuple[BufferRef, int, int], ...] = ()

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
    for key, value in program.device_limits:
        lines.append(f"device {key} = {value}")
    for decision in program.decisions:
        lines.append(f"decision: {decision}")
    for buffer in program.buffers:
        lines.append(f"buffer {buffer.ref.ir_text}: {'int' if buffer.integer else 'float'}"
                     f"[{buffer.rows}][{buffer.row_size}]")
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
        if kernel.widths:
            lines.append("  vector widths: " + ", ".join(f"{key}={width}"
                                                        for key, width in kernel.widths))
        if kernel.row_tiles:
            lines.append("  row tiles: " + ", ".join(f"{key}={rows} rows of {length}"
                                                    for key, rows, length in kernel.row_tiles))
        if kernel.k_unrolled:
            lines.append("  dot products unrolled along k by 4: " + ", ".join(
                f"{key} [{' '.join(f'{start}:{stop}' for start, stop in shape)}]"
                for key, shape in kernel.k_unrolled))
        if kernel.cached_params:
            lines.append(f"  local memory: {_names(kernel.cached_params)}")
        lines.append(f"  reads {_names(kernel.reads)}")
        lines.append(f"  writes {_names(kernel.writes)}")
        for phase in kernel.phases:
            lines.append(f"  phase {phase.rule}.{phase.index}: stores {_names(phase.stores)}")
        for label, _, phases in kernel.sections:
            lines.append(f"  section {label}: phases {len(phases)}")
    lines.append("launches per run:")
    for kernel_name, over in program.launches:
        lines.append(f"  {kernel_name}: {over.value}")
    return "\n".join(lines) + "\n"


def _names(refs: tuple[BufferRef, ...]) -> str:
    return ", ".join(ref.ir_text for ref in refs)


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
    sizes = {buffer.ref: buffer.row_size for buffer in program.buffers}
    for ref, block, columns in program.layouts:
        if ref not in sizes or block < 1 or columns % block or sizes[ref] % columns:
            raise InternalError("verify_kernels", f"layout of {ref.ir_text} does not tile it")
    for kernel_name, _ in program.launches:
        if kernel_name not in names:
            raise InternalError("verify_kernels", f"launch of unknown kernel {kernel_name}")

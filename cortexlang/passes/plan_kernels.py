"""Plan kernels from the loop IR (stage 3): strategy, work-group geometry, launch order.

Decisions, each recorded in the kernel program so that printers and pictures can show why:

- strategy: with level fusion on a CPU, "cooperative": one launch per run of one work-group
  per compute unit, the groups sharing each batch's tasks and meeting at a counter between
  batches; on a GPU, "hybrid": batches wide enough to fill the device get one launch per
  phase, and from the first narrower batch on a single persistent work-group runs the rest
  of the run in one launch; without level fusion, "level" (one launch per batch and phase).
  See `cortexlang.ir.kernels`.
- work-group size: from the device's maximum work-group size, never assumed.
- work-items per node tile: one per unit of the widest unit loop (the steps after this one
  may widen what a work-item computes, and say so).
- unrolled recursion (`unroll_recursion`, grouped sections of the loop IR): a per-level
  kernel per grouped section with one work-item per group, computing every phase and unit
  of its members in order; in the persistent kernel one step per batch of groups.

Every other kernel decision is a step of its own after this one, on the kernel IR (see
`cortexlang.passes.pipeline`): the node tile (`tile_nodes`), vector widths (`vectorize`),
row tiles (`tile_rows`), weights in local memory (`persist_weights`), blocked weight layouts
(`block_weights`), dot products along k (`unroll_dot_products`) and their partial sums
(`split_dot_chains`). The kernels planned here compute one node and one unit per work-item.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import (
    BATCH_GROUPS,
    BATCH_RANGE_BUFFERS,
    GROUP_START,
    BufferRef,
    BufferRows,
)
from cortexlang.ir.kernels import (
    SYNC_BUFFER,
    Kernel,
    KernelProgram,
    counter_stride,
    kernel_units,
    ordered_buffers,
)
from cortexlang.ir.limits import DeviceLimits

__all__ = ["MAX_GROUPS", "DeviceLimits", "plan_kernels"]

# Work-groups of a cooperative kernel at most: each claims tasks at every step, so a group
# per core is the point; past this many, more only adds claims.
MAX_GROUPS = 256

# The batch range a rule's own batches are: a level kernel of that rule over them is named
# by the rule alone (`leaf_phase0`), one over other batches by both (`internal_all_phase0`).
_OWN_BATCHES = {"leaf": BatchRange.LEAF, "internal": BatchRange.INTERNAL,
                "heads": BatchRange.HEADS}


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
        if stmt.kind is L.LoopKind.BATCHES:
            node_loop = stmt.body[0]
            assert isinstance(node_loop, L.Loop)
            if node_loop.kind is L.LoopKind.GROUPS:
                grouped = True
                node_loop = node_loop.body[0]
                assert isinstance(node_loop, L.Loop) and node_loop.kind is L.LoopKind.MEMBERS
            body = node_loop.body
        else:
            body = stmt.body
        lets = tuple(s for s in body if isinstance(s, L.Let))
        phases = tuple(s for s in body if isinstance(s, L.Phase))
        sections.append(_Section(over, lets, phases, grouped))
    return sections


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
    return ordered_buffers(reads), ordered_buffers(writes)


def _lines(phases: tuple[L.Phase, ...]) -> tuple[int, ...]:
    return tuple(sorted({phase.span.line for phase in phases if phase.span is not None}))


def _with_units(kernel: Kernel) -> Kernel:
    """The kernel with as many work-items per node tile as its unit loops need."""
    return replace(kernel, units=kernel_units(kernel))


def _level_kernels(sections: list[_Section], limits: DeviceLimits) -> list[Kernel]:
    """One kernel per section and phase, launched once per batch."""
    local_cap = max(1, min(limits.max_work_group_size, 256))
    kernels: list[Kernel] = []
    for section in sections:
        if section.grouped:
            kernels.append(_group_kernel(section))
            continue
        for phase in section.phases:
            own = _OWN_BATCHES.get(phase.rule) is section.over
            name = f"{phase.rule}_phase{phase.index}" if own else \
                f"{phase.rule}_{section.over.value}_phase{phase.index}"
            reads, writes = _buffers_used(section.node_lets, (phase,),
                                          section.over is not BatchRange.HEADS)
            kernel = _with_units(Kernel(name, section.over, section.node_lets, (phase,), 1, 1,
                                        None, reads, writes, (), (), not limits.is_gpu, (),
                                        _lines((phase,))))
            # A fixed work-group size: the CPU driver compiles a kernel once per size, so
            # letting it pick per launch would recompile for every new batch length. On a CPU
            # each work-item keeps its units (and their weights, in cache) and walks the
            # batch's node tiles; on a GPU node tiles spread over a second dimension.
            local = min(local_cap, kernel.units) if limits.is_gpu else 1
            kernels.append(replace(kernel, local_size=local))
    return kernels


def _group_kernel(section: _Section) -> Kernel:
    """An unrolled section's per-level kernel: every phase, one work-item per group of the
    batch (dimension 1), each computing every unit of its members in order."""
    rule = section.phases[0].rule if section.phases else section.over.value
    reads, writes = _buffers_used(section.node_lets, section.phases)
    reads = ordered_buffers(reads + (GROUP_START, BATCH_GROUPS))
    own = _OWN_BATCHES.get(rule) is section.over
    name = f"{rule}_groups" if own else f"{rule}_{section.over.value}_groups"
    return Kernel(name, section.over, section.node_lets, section.phases, 1, 1, 1, reads,
                  writes, (), (), False, (), _lines(section.phases), grouped=(section.over,))


def _persistent_kernel(sections: list[_Section], limits: DeviceLimits,
                       groups: int = 0) -> Kernel:
    """Work-groups looping over batches (from `first_fused` on) and phases: one, or with
    `groups` (> 0) that many, cooperating through the sync counters."""
    # On a CPU one work-item computes a vector of units; a group of one work-item keeps the
    # driver from vectorising across work-items again and needs no barriers.
    local = max(1, min(limits.max_work_group_size, 256)) if limits.is_gpu else 1
    all_phases = tuple(p for section in sections for p in section.phases)
    all_lets = tuple(let for section in sections for let in section.node_lets)
    reads, writes = _buffers_used(all_lets, all_phases)
    if groups:
        writes = ordered_buffers(writes + (SYNC_BUFFER,))
    grouped = tuple(s.over for s in sections if s.grouped)
    if grouped:
        reads = ordered_buffers(reads + (GROUP_START, BATCH_GROUPS))
    return _with_units(Kernel("forward", BatchRange.RUN, (), all_phases, 1, 1, local, reads,
                              writes, (), (), False,
                              tuple((s.over, s.node_lets, s.phases) for s in sections),
                              _lines(all_phases), max(1, groups), grouped=grouped))


def _groups(count: int) -> str:
    return "1 work-group" if count == 1 else f"{count} work-groups"


def _cooperative(sections: list[_Section], limits: DeviceLimits) -> tuple[Kernel, L.Buffer, str]:
    """The whole run as one launch of one single-item work-group per compute unit."""
    groups = min(max(1, limits.compute_units), MAX_GROUPS)
    kernel = _persistent_kernel(sections, limits, groups=groups)
    # Claim counters, one per group, then the finished-task counter; rows of 64-byte lines.
    row = -(-(kernel.groups + 1) * counter_stride(kernel.groups) // 16) * 16
    decision = (f"one launch per run: {_groups(kernel.groups)} (one per compute unit) share "
                "each batch's tasks, a block of units for a node tile; each claims its own "
                "units first, so their weight rows stay in its core's cache, then any task "
                "left; a counter of finished tasks is the barrier between batches")
    return kernel, L.Buffer(SYNC_BUFFER, BufferRows.STEPS, row, integer=True), decision


def plan_kernels(program: L.LoopProgram, limits: DeviceLimits, *,
                 fuse_levels: bool) -> KernelProgram:
    """Stage 3: kernels and launches for a loop program on a device with `limits`."""
    sections = _sections(program)
    batch_sections = [section for section in sections if section.over is not BatchRange.HEADS]
    buffers = program.buffers
    fuse_below = 0
    if fuse_levels and not limits.is_gpu:
        kernel, sync, decision = _cooperative(sections, limits)
        kernels = [kernel]
        buffers += (sync,)
        strategy = "cooperative"
    elif fuse_levels:
        # A GPU: a batch is worth its own launch across every compute unit when it has at
        # least a node per compute unit. From the first narrower batch on, the rest of the
        # run is one launch of one work-group: a GPU gives no guarantee that a waiting
        # work-group lets the others run, and its caches need not see their stores.
        fuse_below = max(2, limits.compute_units)
        kernels = _level_kernels(batch_sections, limits)
        kernels.append(_persistent_kernel(sections, limits))
        decision = (f"batches of {fuse_below} nodes or more get one launch per phase across "
                    "all compute units; from the first narrower batch on, one persistent "
                    "work-group runs the rest of the run in one launch")
        strategy = "hybrid"
    else:
        kernels = _level_kernels(sections, limits)
        decision = ("one launch per batch and phase; the host enqueues a run's launches back "
                    "to back and waits once")
        strategy = "level"
    decisions: tuple[str, ...] = (decision,)
    if any(section.grouped for section in sections):
        decisions += ("recursion unrolled by 2: each step computes a batch's groups (inlined "
                      "children, then their parent), one work-item per group, every unit",)
    launches = tuple((kernel.name, kernel.over) for kernel in kernels)
    return KernelProgram(program.name, strategy, buffers, tuple(kernels), launches, 1,
                         limits=limits, notes=program.notes, decisions=decisions,
                         fuse_below=fuse_below)

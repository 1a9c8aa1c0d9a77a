"""Stage 3, the kernel IR: kernels, their buffers, work-group geometry and launch order.

OpenCL has no barrier across work-groups, so the recursion's sequential loop over batches
must be split by one of two strategies, chosen per program and visible here:

- "level": one launch per batch (and per phase of the rule), each an NDRange over
  (units, node tiles); the host enqueues a whole run's launches back to back and waits once.
  Every work-group is independent, so it runs on any device at full width.
- "hybrid": batches of at least `fuse_below` nodes as above; from the first narrower batch
  on, one launch of a single *persistent* work-group that loops over the remaining batches
  and phases with barriers between them. The narrow top of a batch of trees then costs one
  launch instead of one per level, and the wide bottom still uses every compute unit.

A kernel holds phases of the loop IR; `node_tile` nodes share each loaded weight row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L


@dataclass(frozen=True, slots=True)
class Kernel:
    """One OpenCL kernel.

    over: which nodes a launch covers: "leaf" or "internal" batches, "all" batches, "heads",
      or "run" (a persistent kernel covering everything).
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
    over: str
    node_lets: tuple[L.Let, ...]
    phases: tuple[L.Phase, ...]
    units: int
    node_tile: int
    local_size: int | None
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    cached_params: tuple[str, ...] = ()
    widths: tuple[tuple[str, int], ...] = ()
    tiles_in_kernel: bool = False
    sections: tuple[tuple[str, tuple[L.Let, ...], tuple[L.Phase, ...]], ...] = ()
    source_lines: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class KernelProgram:
    name: str
    strategy: str
    buffers: tuple[L.Buffer, ...]
    kernels: tuple[Kernel, ...]
    launches: tuple[tuple[str, str], ...]      # (kernel, what it covers) in order
    node_tile: int
    device_limits: tuple[tuple[str, int], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    decisions: tuple[str, ...] = field(default=())
    fuse_below: int = 0

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
        lines.append(f"buffer {buffer.name}: {'int' if buffer.integer else 'float'}"
                     f"[{buffer.rows}][{buffer.row_size}]")
    for kernel in program.kernels:
        geometry = f"{kernel.units} work-items x node tiles of {kernel.node_tile}"
        local = kernel.local_size if kernel.local_size is not None else "driver"
        lines.append(f"kernel {kernel.name} over {kernel.over}: {geometry}, work-group {local}")
        if kernel.tiles_in_kernel:
            lines.append("  each work-item walks every node tile of its batch")
        if kernel.widths:
            lines.append("  vector widths: " + ", ".join(f"{key}={width}"
                                                        for key, width in kernel.widths))
        if kernel.cached_params:
            lines.append(f"  local memory: {', '.join(kernel.cached_params)}")
        lines.append(f"  reads {', '.join(kernel.reads)}")
        lines.append(f"  writes {', '.join(kernel.writes)}")
        for phase in kernel.phases:
            lines.append(f"  phase {phase.rule}.{phase.index}: stores {', '.join(phase.stores)}")
        for label, _, phases in kernel.sections:
            lines.append(f"  section {label}: phases {len(phases)}")
    lines.append("launches per run:")
    for kernel_name, over in program.launches:
        lines.append(f"  {kernel_name}: {over}")
    return "\n".join(lines) + "\n"


def verify_kernels(program: KernelProgram) -> None:
    declared = {buffer.name for buffer in program.buffers}
    names = {kernel.name for kernel in program.kernels}
    for kernel in program.kernels:
        for buffer in kernel.reads + kernel.writes:
            if buffer not in declared:
                raise InternalError("verify_kernels", f"{kernel.name} uses undeclared {buffer}")
        if kernel.units < 1 or kernel.node_tile < 1:
            raise InternalError("verify_kernels", f"{kernel.name} has an empty geometry")
    for kernel_name, _ in program.launches:
        if kernel_name not in names:
            raise InternalError("verify_kernels", f"launch of unknown kernel {kernel_name}")

"""Plan kernels from the loop IR (stage 3): strategy, geometry, local memory, launch order.

Decisions, each recorded in the kernel program so that printers and pictures can show why:

- strategy: "persistent" (one launch, one work-group) when level fusion is on, else "level"
  (one launch per batch and phase). See `cortexlang.ir.kernels`.
- node tile: how many nodes of a batch one work-item computes, so that each weight row loaded
  serves several nodes. 1 where leaves are not specialised (a per-node branch).
- work-group size: from the device's maximum work-group size, never assumed.
- weight persistence: with the persistent strategy, parameters read by products are copied
  into local memory once per run when they fit in half the device's local memory; with the
  level strategy every launch would copy them again, so they stay in global memory (where the
  node tile blocks them for the cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram


@dataclass(frozen=True)
class DeviceLimits:
    """What the planner needs to know about the device (queried, never assumed)."""

    max_work_group_size: int = 256
    local_mem_size: int = 32768
    is_gpu: bool = False
    preferred_vector_width: int = 4

    def items(self) -> tuple[tuple[str, int], ...]:
        return (("max_work_group_size", self.max_work_group_size),
                ("local_mem_size", self.local_mem_size), ("is_gpu", int(self.is_gpu)),
                ("preferred_vector_width", self.preferred_vector_width))


@dataclass(frozen=True)
class _Section:
    over: str
    node_lets: tuple[L.Let, ...]
    phases: tuple[L.Phase, ...]


def _sections(program: L.LoopProgram) -> list[_Section]:
    sections: list[_Section] = []
    for stmt in program.body:
        if not isinstance(stmt, L.Loop):
            raise InternalError("plan_kernels", "top-level statement is not a loop")
        if stmt.kind == "batches":
            node_loop = stmt.body[0]
            assert isinstance(node_loop, L.Loop)
            start = L.format_expr(stmt.start)
            stop = L.format_expr(stmt.stop)
            over = {("0", "num_leaf_batches"): "leaf",
                    ("num_leaf_batches", "num_batches"): "internal",
                    ("0", "num_batches"): "all"}[(start, stop)]
            body = node_loop.body
        else:
            over, body = "heads", stmt.body
        lets = tuple(s for s in body if isinstance(s, L.Let))
        phases = tuple(s for s in body if isinstance(s, L.Phase))
        sections.append(_Section(over, lets, phases))
    return sections


def _units(phases: tuple[L.Phase, ...]) -> int:
    extents = [int(s.stop.value) for phase in phases for s in L.walk_stmts(phase.body)
               if isinstance(s, L.Loop) and s.kind == "units" and isinstance(s.stop, L.Const)]
    return max(extents, default=1)


def _buffers_used(lets: tuple[L.Let, ...], phases: tuple[L.Phase, ...],
                  batched: bool = True) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Buffers read and written; batch sections also read the batch ranges."""
    reads: set[str] = {"batch_start", "batch_len"} if batched else set()
    writes: set[str] = set()
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
    return tuple(sorted(reads)), tuple(sorted(writes))


def _has_branch(phases: tuple[L.Phase, ...]) -> bool:
    return any(isinstance(stmt, L.If) for stmt in L.walk_stmts(phases))


def _product_params(phases: tuple[L.Phase, ...]) -> set[str]:
    names: set[str] = set()
    for stmt in L.walk_stmts(phases):
        if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot):
            for segment in stmt.value.segments:
                names.update(sub.buffer for sub in L.walk_exprs(segment.lhs)
                             if isinstance(sub, L.Load) and sub.buffer.startswith("param:"))
    return names


def _lines(phases: tuple[L.Phase, ...]) -> tuple[int, ...]:
    return tuple(sorted({phase.span.line for phase in phases if phase.span is not None}))


def plan_kernels(program: L.LoopProgram, limits: DeviceLimits, *, fuse_levels: bool,
                 persist_weights: bool, node_tile: int) -> KernelProgram:
    """Stage 3: kernels and launches for a loop program on a device with `limits`."""
    sections = _sections(program)
    decisions: list[str] = []
    branchy = any(_has_branch(section.phases) for section in sections)
    tile = 1 if branchy else max(1, node_tile)
    if branchy and node_tile > 1:
        decisions.append("node tile 1: leaves are not specialised, so each node branches")
    local_cap = max(1, min(limits.max_work_group_size, 256))
    kernels: list[Kernel] = []
    launches: list[tuple[str, str]] = []
    if fuse_levels:
        strategy = "persistent"
        decisions.append("one launch for the whole run: a single work-group loops over the "
                         "batches with barriers between them (OpenCL has no grid barrier)")
        all_phases = tuple(p for section in sections for p in section.phases)
        all_lets = tuple(let for section in sections for let in section.node_lets)
        reads, writes = _buffers_used(all_lets, all_phases)
        cached: tuple[str, ...] = ()
        if persist_weights:
            sizes = {b.name: b.row_size * 4 for b in program.buffers}
            candidates = sorted(_product_params(all_phases))
            budget = limits.local_mem_size // 2
            chosen: list[str] = []
            for name in candidates:
                if sizes[name] <= budget:
                    chosen.append(name)
                    budget -= sizes[name]
                else:
                    decisions.append(f"{name} stays in global memory: {sizes[name]} bytes do "
                                     f"not fit in the local memory left")
            cached = tuple(chosen)
            if cached:
                decisions.append("weights in local memory for the whole run: "
                                 + ", ".join(cached))
        kernels.append(Kernel(
            "forward", "run", (), all_phases, _units(all_phases), tile, local_cap, reads, writes,
            cached, tuple((s.over, s.node_lets, s.phases) for s in sections),
            _lines(all_phases)))
        launches.append(("forward", "run"))
    else:
        strategy = "level"
        decisions.append("one launch per batch and phase; the host enqueues a run's launches "
                         "back to back and waits once")
        if persist_weights:
            decisions.append("weight persistence not applied: every per-level launch would "
                             "reload local memory; the node tile blocks weights for the cache")
        for section in sections:
            for phase in section.phases:
                name = f"{phase.rule}_{section.over}_phase{phase.index}" \
                    if phase.rule != section.over else f"{phase.rule}_phase{phase.index}"
                reads, writes = _buffers_used(section.node_lets, (phase,),
                                              section.over != "heads")
                units = _units((phase,))
                local = min(local_cap, units) if limits.is_gpu else None
                kernels.append(Kernel(name, section.over, section.node_lets, (phase,), units,
                                      tile, local, reads, writes, (), (), _lines((phase,))))
                launches.append((name, section.over))
    return KernelProgram(program.name, strategy, program.buffers, tuple(kernels),
                         tuple(launches), tile, limits.items(), program.notes,
                         tuple(decisions))

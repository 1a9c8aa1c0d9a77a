"""Print OpenCL C from the kernel IR (stage 4).

A printer, not a transformation: every decision was made in the kernel IR. What it adds is
the mechanics of fast code on both CPUs and GPUs:

- each work-item computes one unit for `node_tile` nodes: the statements of the loop IR are
  copied once per node (names suffixed `_t0`, `_t1`, ...);
- all dot products of a phase are independent (their operands are ready before the phase),
  so those with the same segments are fused into one loop with one accumulator each: a
  weight row element loaded once serves every node of the tile;
- the dot products the `unroll_dot_products` pass marked step along k by 4 with vector loads
  (`vload4`) and `float4` accumulators, the form that vectorises on CPUs; those that
  `split_dot_chains` split sum into that many partial sums along k.

The node tile and the sub-tiles of a partial one (`tile_nodes`), vector widths
(`vectorize`), row tiles (`tile_rows`), local memory (`persist_weights`) and blocked weights
(`block_weights`) are read from the kernel IR as the steps recorded them.

Identifiers are generated (`p_` parameters, `s_` states, `t_` temporaries, ...) and sanitised;
names from the program appear only in `//` comments, with line breaks removed.
"""

from __future__ import annotations

from collections.abc import Callable

from cortexlang.codegen.dialect import (
    OPENCL,
    RUN_HEADER,
    buffer_identifiers,
    index_buffers,
    kernel_buffers,
)
from cortexlang.codegen.expressions import PRELUDE, Context, c_expr, helper_definitions
from cortexlang.codegen.unit_loops import UnitLoopPrinter
from cortexlang.codegen.writer import Writer, comment
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BATCH_GROUPS, BATCH_LEN, BATCH_START, GROUP_START, Role
from cortexlang.ir.kernels import (
    SYNC_BUFFER,
    Kernel,
    KernelProgram,
    counter_stride,
    phase_items,
)

D = OPENCL  # the spelling of every OpenCL construct below
__all__ = ["RUN_HEADER", "emit_opencl", "index_buffers", "kernel_buffers"]


class KernelPrinter(UnitLoopPrinter):
    def __init__(self, program: KernelProgram) -> None:
        self.program = program
        self.buffers = buffer_identifiers(program.buffers)
        self.writer = Writer()
        self.full_tiles = False  # inside a tile known to be full: no clamping, no guards
        self.sizes = {buffer.ref: buffer.row_size for buffer in program.buffers}
        self.layouts = {ref: (block, columns, self.sizes[ref] // columns)
                        for ref, block, columns in program.layouts}
        self.helpers: set[tuple[str, int]] = set()

    def context(self, rename: dict[str, str], kernel: Kernel) -> Context:
        local = {ref: f"l_{self.buffers[ref]}" for ref in kernel.cached_params}
        return Context(self.buffers, rename, local, layouts=self.layouts,
                        helpers=self.helpers)

    def signature(self, kernel: Kernel) -> str:
        """Every kernel takes its float buffers, one `indices` buffer holding the run's
        integers and all the linearizer's arrays (one upload per run; see `run_header`),
        and the batch of a per-level launch: the same tail for every kernel."""
        args: list[str] = []
        for buffer in kernel_buffers(self.program, kernel):
            identifier = self.buffers[buffer.ref]
            if buffer.ref.role is Role.SYNC:
                args.append(f"{D.global_} {D.volatile} int* {D.restrict} {identifier}")
                continue
            const = "" if buffer.ref in kernel.writes else "const "
            args.append(f"{D.global_} {const}float* {D.restrict} {identifier}")
        args.append(f"{D.global_} const int* {D.restrict} indices")
        args.append("const int b")
        separator = ",\n        "
        return f"{D.kernel} void {kernel.name}(\n        {separator.join(args)})"

    def index_views(self, kernel: Kernel) -> None:
        """The run's integers from the header of `indices`, and each index array the kernel
        reads as a view into it."""
        for position, name in enumerate(RUN_HEADER):
            self.writer.line(f"const int {name} = indices[{position}];")
        for position, ref in enumerate(index_buffers(self.program), start=len(RUN_HEADER)):
            if ref in kernel.reads:
                identifier = self.buffers[ref]
                self.writer.line(f"{D.global_} const int* {D.restrict} {identifier} = "
                                 f"indices + indices[{position}];")

    # -- a phase for the nodes of one tile -----------------------------------------------------
    def node_ids(self, kernel: Kernel, over: BatchRange, lets: tuple[L.Let, ...],
                 contexts: list[Context], first: str | None = None) -> None:
        """Each tile node's id and per-node values. `first`: the position of the first of
        nodes all in the batch; otherwise positions in the tile, clamped to the batch (the
        tile may be partial)."""
        w = self.writer
        tile = kernel.node_tile
        for t, context in enumerate(contexts):
            if first is not None:
                position = f"{first} + {t}"
            else:
                position = f"min(tile * {tile} + {t}, count - 1)"
            if over is BatchRange.HEADS:
                w.line(f"const int i_t{t} = {position};")
            else:
                w.line(f"const int node_t{t} = start + {position};")
            for let in lets:
                ctype = "int" if let.integer else "float"
                w.line(f"const {ctype} {context.rename[let.name]} = {c_expr(let.value, context)};")

    def phase(self, phase: L.Phase, contexts: list[Context], kernel: Kernel) -> None:
        w = self.writer
        where = f"phase {phase.rule}.{phase.index}"
        if phase.span is not None:
            where += f", from line {phase.span.line}"
        w.line(comment(where))
        widths = dict(kernel.widths)
        position = 0
        for stmt in phase.body:
            if isinstance(stmt, L.If):
                self.branch(stmt, contexts, kernel)
            elif isinstance(stmt, L.Loop) and stmt.kind is L.LoopKind.UNITS:
                key = f"{phase.rule}.{phase.index}.{position}"
                width = widths.get(key, 1)
                rows = next(((tile.rows, tile.length) for tile in kernel.row_tiles
                             if tile.key == key), None)
                unrolled = {shape for name, shape in kernel.k_unrolled if name == key}
                splits = {chains.shape: chains.split for chains in kernel.dot_chains
                          if chains.key == key and chains.nodes == len(contexts)}
                self.unit_group(stmt, contexts, width, rows, unrolled, splits)
                position += 1
            else:
                raise AssertionError(f"unexpected statement in a phase: {stmt!r}")

    def branch(self, stmt: L.If, contexts: list[Context], kernel: Kernel) -> None:
        assert len(contexts) == 1, "branches need a node tile of 1"
        w = self.writer
        w.open(f"if ({c_expr(stmt.condition, contexts[0])})")
        for inner in stmt.then:
            assert isinstance(inner, L.Phase)
            self.phase(inner, contexts, kernel)
        w.close()
        if stmt.otherwise:
            w.open("else")
            for inner in stmt.otherwise:
                assert isinstance(inner, L.Phase)
                self.phase(inner, contexts, kernel)
            w.close()

    # -- whole kernels -------------------------------------------------------------------------
    def contexts(self, kernel: Kernel, lets: tuple[L.Let, ...],
                 nodes: int | None = None) -> list[Context]:
        contexts = []
        for t in range(kernel.node_tile if nodes is None else nodes):
            rename = {"node": f"node_t{t}", "i": f"i_t{t}"}
            for let in lets:
                rename[let.name] = f"{let.name}_t{t}"
            contexts.append(self.context(rename, kernel))
        return contexts

    def tile_body(self, kernel: Kernel, over: BatchRange, lets: tuple[L.Let, ...],
                  phases: tuple[L.Phase, ...], batch: str | None = None) -> None:
        """The phases for node tile `tile` of the batch (`start`, `count` in scope).

        With `Kernel.partial_tiles` (chosen by `tile_nodes`), a full tile runs the tiled
        code and the nodes of a partial one run as those sub-tiles, one after another.
        Otherwise positions past the end of the batch repeat its last node and their stores
        are skipped."""
        w = self.writer
        tile = kernel.node_tile
        if kernel.partial_tiles:
            self.full_tiles = True
            w.open(f"if (tile * {tile} + {tile} <= count)")
            self._tile_phases(kernel, over, lets, phases, tile, batch, f"tile * {tile}")
            w.close()
            w.open("else")
            w.line(f"int n = tile * {tile};")
            last = len(kernel.partial_tiles) - 1
            for position, sub in enumerate(kernel.partial_tiles):
                w.open(f"if (n + {sub} <= count)")
                self._tile_phases(kernel, over, lets, phases, sub, batch, "n")
                if position < last:
                    w.line(f"n += {sub};")
                w.close()
            w.close()
            self.full_tiles = False
        else:
            self._tile_phases(kernel, over, lets, phases, tile, batch, None)

    def _tile_phases(self, kernel: Kernel, over: BatchRange, lets: tuple[L.Let, ...],
                     phases: tuple[L.Phase, ...], nodes: int, batch: str | None,
                     first: str | None) -> None:
        contexts = self.contexts(kernel, lets, nodes)
        if batch is not None:
            for context in contexts:
                context.rename["b"] = batch
        self.node_ids(kernel, over, lets, contexts, first)
        for phase in phases:
            self.phase(phase, contexts, kernel)

    def group_body(self, kernel: Kernel, lets: tuple[L.Let, ...],
                   phases: tuple[L.Phase, ...], group: str, batch: str | None = None) -> None:
        """Group `group` of an unrolled section: its members (inlined children, then their
        parent) in order, each every phase and every unit, on this work-item alone."""
        w = self.writer
        first = self.buffers[GROUP_START]
        self.full_tiles = True
        w.open(f"for (int member = {first}[{group}]; member < {first}[{group} + 1]; ++member)")
        contexts = self.contexts(kernel, lets, 1)
        if batch is not None:
            contexts[0].rename["b"] = batch
        w.line("const int node_t0 = member;")
        for let in lets:
            ctype = "int" if let.integer else "float"
            w.line(f"const {ctype} {contexts[0].rename[let.name]} = "
                   f"{c_expr(let.value, contexts[0])};")
        for phase in phases:
            w.open(f"for (int unit = 0; unit < {phase_items(kernel, phase)}; ++unit)")
            self.phase(phase, contexts, kernel)
            w.close()
        w.close()
        self.full_tiles = False

    def group_level_kernel(self, kernel: Kernel) -> None:
        """A per-level kernel of an unrolled section: work-item (0, g) computes group g of
        batch `b` (the launch has a work-item per node; those past the groups return)."""
        w = self.writer
        w.open(self.signature(kernel))
        self.index_views(kernel)
        groups = self.buffers[BATCH_GROUPS]
        w.line(f"const int group = {groups}[b] + {D.global_id(1)};")
        w.line(f"if ({D.global_id(0)} > 0 || group >= {groups}[b + 1]) return;")
        self.group_body(kernel, kernel.node_lets, kernel.phases, "group")
        w.close()

    def level_kernel(self, kernel: Kernel) -> None:
        w = self.writer
        if kernel.grouped:
            self.group_level_kernel(kernel)
            return
        w.open(self.signature(kernel))
        self.index_views(kernel)
        w.line(f"const int unit = {D.global_id(0)};")
        if kernel.over is BatchRange.HEADS:
            w.line("const int start = 0;")
            w.line("const int count = num_heads;")
        else:
            w.line(f"const int start = {self.buffers[BATCH_START]}[b];")
            w.line(f"const int count = {self.buffers[BATCH_LEN]}[b];")
        if kernel.tiles_in_kernel:
            # This work-item keeps its block of units (and their weight rows, in cache)
            # and walks every node tile of the batch.
            w.line(f"if (unit >= {kernel.units}) return;")
            w.open(f"for (int tile = 0; tile * {kernel.node_tile} < count; ++tile)")
        else:
            w.line(f"const int tile = {D.global_id(1)};")
            w.line(f"if (unit >= {kernel.units} || tile * {kernel.node_tile} >= count) return;")
        self.tile_body(kernel, kernel.over, kernel.node_lets, kernel.phases)
        if kernel.tiles_in_kernel:
            w.close()
        w.close()

    def persistent_kernel(self, kernel: Kernel) -> None:
        w = self.writer
        size = kernel.local_size or 1
        cooperative = self.program.strategy == "cooperative"
        w.line(D.work_group_size(size))
        w.open(self.signature(kernel))
        self.index_views(kernel)
        w.line(f"const int lid = {D.local_id(0)};")
        if cooperative:
            w.line(f"const int group = {D.group_id(0)};")
        for ref in kernel.cached_params:
            buffer = next(b for b in self.program.buffers if b.ref == ref)
            local = f"l_{self.buffers[ref]}"
            w.line(f"{D.local} float {local}[{buffer.row_size}];")
            w.line(f"for (int e = lid; e < {buffer.row_size}; e += {size}) "
                   f"{local}[e] = {self.buffers[ref]}[e];")
        if kernel.cached_params and size > 1:
            w.line(D.barrier_local)
        ranges = {BatchRange.LEAF: ("0", "num_leaf_batches"),
                  BatchRange.INTERNAL: ("num_leaf_batches", "num_batches"),
                  BatchRange.ALL: ("0", "num_batches")}
        for over, lets, phases in kernel.sections:
            w.line(comment(f"section: {over.value}"))
            if over is BatchRange.HEADS:
                w.open("")
                w.line("const int start = 0;")
                w.line("const int count = num_heads;")
                step_batch = "num_batches"
            else:
                low, high = ranges[over]
                w.open(f"for (int batch = max({low}, first_fused); batch < {high}; ++batch)")
                w.line(f"const int start = {self.buffers[BATCH_START]}[batch];")
                w.line(f"const int count = {self.buffers[BATCH_LEN]}[batch];")
                step_batch = "batch"
            w.line(f"const int tiles = (count + {kernel.node_tile - 1}) / {kernel.node_tile};")
            units = max(kernel.units, 1)
            if over in kernel.grouped:
                self.grouped_section(kernel, lets, phases, step_batch, cooperative, size)
                w.close()
                continue
            for position, phase in enumerate(phases):
                if cooperative:
                    step = f"({step_batch} * {kernel.phases_per_step} + {position})"
                    self.cooperative_phase(kernel, over, lets, phase, step,
                                           phase_items(kernel, phase))
                    continue
                w.open(f"for (int work = lid; work < tiles * {units}; work += {size})")
                # Consecutive work for one unit block: its weight rows stay in cache while
                # it walks the batch's node tiles.
                w.line("const int unit = work / tiles;")
                w.line("const int tile = work % tiles;")
                self.tile_body(kernel, over, lets, (phase,), "batch")
                w.close()
                if size > 1:  # one work-item orders its own memory accesses
                    w.line(D.barrier_all)
            w.close()
        if cooperative:
            self.cooperative_exit(kernel)
        w.close()

    def grouped_section(self, kernel: Kernel, lets: tuple[L.Let, ...],
                        phases: tuple[L.Phase, ...], batch: str, cooperative: bool,
                        size: int) -> None:
        """One batch of an unrolled section inside the persistent kernel: one step whose
        tasks are the batch's groups (claimed like any step's tasks when cooperating)."""
        w = self.writer
        groups = self.buffers[BATCH_GROUPS]
        w.line(f"const int first_group = {groups}[{batch}];")
        w.line(f"const int groups = {groups}[{batch} + 1] - first_group;")
        if cooperative:
            step = f"({batch} * {kernel.phases_per_step})"
            self.claimed_tasks(kernel, step, "groups",
                               lambda: self.group_body(kernel, lets, phases,
                                                       "first_group + work", "batch"))
            return
        w.open(f"for (int work = lid; work < groups; work += {size})")
        self.group_body(kernel, lets, phases, "first_group + work", "batch")
        w.close()
        if size > 1:
            w.line(D.barrier_all)

    def cooperative_exit(self, kernel: Kernel) -> None:
        """The last group out zeroes the counters: every other group has passed every step,
        and the next launch sees the stores (the buffer starts zeroed when allocated)."""
        w = self.writer
        sync, row = self.buffers[SYNC_BUFFER], self.sizes[SYNC_BUFFER]
        # The steps' rows, then the finished-groups counter (see ir.kernels.sync_rows).
        rows = f"(num_batches + 1) * {kernel.phases_per_step}"
        w.line(comment("the last group to finish resets the counters for the next run"))
        w.line(D.fence_global)
        w.open(f"if ({D.atomic_inc(f'{sync} + {rows} * {row}')} == {kernel.groups - 1})")
        w.line(f"for (int e = 0; e < ({rows} + 1) * {row}; ++e) {sync}[e] = 0;")
        w.line(D.fence_global)
        w.close()

    def cooperative_phase(self, kernel: Kernel, over: BatchRange, lets: tuple[L.Let, ...],
                          phase: L.Phase, step: str, units: int) -> None:
        """One step of the cooperative kernel: claim tasks, compute them, meet the others.

        Task `work` is (unit block work / tiles, node tile work % tiles); group g owns the
        g-th share of the tasks, hence the same unit blocks (and weight rows) at every step.
        It drains its own share, then the others' (a group the driver has not started yet
        claims nothing), adds how many it finished to the step's counter and waits until
        every task is finished: only tasks being computed by running groups are waited for."""
        def task() -> None:
            self.writer.line("const int unit = work / tiles;")
            self.writer.line("const int tile = work % tiles;")
            self.tile_body(kernel, over, lets, (phase,), "batch")

        self.claimed_tasks(kernel, step, f"tiles * {units}", task)

    def claimed_tasks(self, kernel: Kernel, step: str, total: str,
                      task: Callable[[], None]) -> None:
        """A cooperative step of `total` tasks (`work` in scope in `task`): claim, compute,
        meet the other groups at the step's counter (see `cooperative_phase`)."""
        w = self.writer
        groups = kernel.groups
        sync, row = self.buffers[SYNC_BUFFER], self.sizes[SYNC_BUFFER]
        w.open("")
        w.line(f"{D.global_} {D.volatile} int* {D.restrict} counters = "
               f"{sync} + {step} * {row};")
        w.line(f"const int total = {total};")
        w.line("int finished = 0;")
        w.open(f"for (int round = 0; round < {groups}; ++round)")
        w.line(f"const int owner = (group + round) % {groups};")
        w.line(f"const int first = owner * total / {groups};")
        w.line(f"const int last = (owner + 1) * total / {groups};")
        stride = counter_stride(groups)
        claim = D.atomic_inc(f"counters + owner * {stride}" if stride > 1 else
                             "counters + owner")
        w.open(f"for (int work = first + {claim}; work < last; work = first + {claim})")
        task()
        w.line("++finished;")
        w.close()
        w.close()
        finished = f"counters + {groups * stride}"
        w.line(D.fence_global)
        w.line(f"{D.atomic_add(finished, 'finished')};")
        w.line(f"while ({D.atomic_add(finished, '0')} < total) {{}}")
        w.line(D.fence_global)
        w.close()

    def print(self) -> str:
        w = self.writer
        w.line(comment(f"model {self.program.name}: strategy {self.program.strategy}, "
                       f"node tile {self.program.node_tile}"))
        for kernel in self.program.kernels:
            w.line()
            lines = ", ".join(str(line) for line in kernel.source_lines) or "-"
            w.line(comment(f"kernel {kernel.name}: {kernel.over.value}; .cx lines {lines}"))
            if kernel.over is BatchRange.RUN:
                self.persistent_kernel(kernel)
            else:
                self.level_kernel(kernel)
        helpers = helper_definitions(self.helpers)
        return "\n".join([PRELUDE, *helpers, w.text()]) if helpers else w.text()


def emit_opencl(program: KernelProgram) -> str:
    """The OpenCL C source of every kernel of the program."""
    return KernelPrinter(program).print()

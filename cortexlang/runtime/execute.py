"""Run compiled kernels: bind weights once, then linearize, upload, launch and read back.

Compile products (the kernels, the weights and the hoisted uniforms on the device) are kept
apart from per-input products (the linearized index arrays, states and temporaries), which
live in buffers reused from run to run and grown only when a larger input arrives. A run's
launches are all enqueued before a single wait. Inputs too large for the device are split
into chunks of whole structures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyopencl as cl

from cortexlang.backends import merge_outputs
from cortexlang.codegen.opencl import RUN_HEADER, index_buffers
from cortexlang.errors import InputError, user_error
from cortexlang.inputs.structure import Structure
from cortexlang.ir.kernels import SYNC_BUFFER, KernelProgram, sync_rows
from cortexlang.ir.loops import Buffer
from cortexlang.ir.recursive_eval import evaluate_tables, evaluate_uniforms
from cortexlang.outputs import Outputs
from cortexlang.passes.pipeline import CompileResult
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.build import build_program
from cortexlang.runtime.checks import (
    check_allocations,
    check_tokens,
    checked_weights,
    leaf_token_rows,
    weight_buffers,
)
from cortexlang.runtime.devices import Device
from cortexlang.runtime.linearize import Linearized, linearize

BUILD_OPTIONS = ("-cl-mad-enable",)
# A run of fewer than this many times the kernel program's `fuse_below` nodes is one launch.
SMALL_RUN_FACTOR = 8


def device_limits(device: Device) -> DeviceLimits:
    """The planner's view of a device, read from its OpenCL properties."""
    info = device.info
    return DeviceLimits(
        max_work_group_size=int(info.max_work_group_size),
        local_mem_size=int(info.local_mem_size),
        is_gpu=info.device_type == "GPU",
        compute_units=int(info.max_compute_units),
        preferred_vector_width=int(info.preferred_vector_width_float or 4))


@dataclass(frozen=True)
class LaunchRecord:
    """One kernel launch of a profiled run: which kernel, for which batch, when (ns)."""

    kernel: str
    batch: int
    nodes: int
    start_ns: int
    end_ns: int

    @property
    def milliseconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass
class _Run:
    """The per-run scalars and the host arrays that must outlive the asynchronous copies."""

    linearized: Linearized
    num_leaf_batches: int
    head_nodes: np.ndarray
    host_arrays: list[np.ndarray]
    zero_row: int
    offsets: dict[str, int]
    first_fused: int = 0


Launch = tuple[str, int, int, tuple[int, ...], "tuple[int, ...] | None"]


def first_fused_batch(kernels: KernelProgram, batch_len: np.ndarray) -> int:
    """The batch from which the persistent kernel takes over: the first narrow one, or the
    first batch of all when the whole run is small (it is then one launch). The cooperative
    kernel runs every batch; the level strategy has no persistent kernel."""
    if kernels.strategy == "cooperative":
        return 0
    if kernels.strategy != "hybrid":
        return len(batch_len)
    if int(batch_len.sum()) < SMALL_RUN_FACTOR * kernels.fuse_below:
        return 0
    narrow = np.flatnonzero(batch_len < kernels.fuse_below)
    return int(narrow[0]) if narrow.size else len(batch_len)


def launch_plan(kernels: KernelProgram, batch_len: np.ndarray, num_leaf_batches: int,
                num_heads: int, first_fused: int) -> list[Launch]:
    """Every launch of a run in order: (kernel, batch or -1, nodes, global size, local size).

    Per-level kernels run for each non-empty batch before `first_fused` (all batches for the
    "level" strategy); the persistent kernel, if any, runs once for the rest and the heads."""
    num_batches = len(batch_len)
    ranges = {"leaf": range(0, num_leaf_batches),
              "internal": range(num_leaf_batches, num_batches),
              "all": range(0, num_batches), "heads": range(0, 1)}
    sections: list[tuple[str, list[str]]] = []
    for name, over in kernels.launches:
        if sections and sections[-1][0] == over:
            sections[-1][1].append(name)
        else:
            sections.append((over, [name]))
    plan: list[Launch] = []
    for over, names in sections:
        if over == "run":
            kernel = kernels.kernel(names[0])
            size = kernel.local_size or 1
            remaining = int(batch_len[first_fused:].sum()) + num_heads
            plan.append((kernel.name, -1, remaining, (size * kernel.groups,), (size,)))
            continue
        for batch in ranges[over]:
            if over != "heads" and batch >= first_fused:
                break
            count = num_heads if over == "heads" else int(batch_len[batch])
            if count == 0:
                continue
            for name in names:
                kernel = kernels.kernel(name)
                tiles = 1 if kernel.tiles_in_kernel else -(-count // kernel.node_tile)
                local = kernel.local_size
                units = kernel.units if local is None else -(-kernel.units // local) * local
                plan.append((name, batch, count, (units, tiles),
                             None if local is None else (local, 1)))
    return plan


def transposed_layout(value: np.ndarray, layout: tuple[int, int] | None) -> np.ndarray:
    """A weight as its `param_t` buffer holds it: transposed to (k rows, one column per output
    unit), and with a layout, as column blocks each stored row-major."""
    matrix: np.ndarray = value.reshape(value.shape[0], -1).T
    if layout is not None:
        block, columns = layout
        rows = matrix.size // columns
        matrix = matrix.reshape(rows, columns // block, block).transpose(1, 0, 2)
    return np.ascontiguousarray(matrix).reshape(-1)


def chunk_structures(structures: Sequence[Structure],
                     max_nodes: int) -> list[Sequence[Structure]]:
    """Consecutive runs of whole structures of at most `max_nodes` nodes each (a structure
    larger than that on its own is an InputError: it cannot be split)."""
    chunks: list[Sequence[Structure]] = []
    start, nodes = 0, 0
    for index, structure in enumerate(structures):
        if structure.num_nodes > max_nodes:
            raise user_error("E0557", f"structure {index} has {structure.num_nodes} nodes; the "
                             f"device holds at most {max_nodes} in one run",
                             hint="use a device with more memory, or a smaller hidden size",
                             error_class=InputError)
        if nodes + structure.num_nodes > max_nodes:
            chunks.append(structures[start:index])
            start, nodes = index, 0
        nodes += structure.num_nodes
    chunks.append(structures[start:])
    return chunks


class CompiledModel:
    """A compiled program bound to one device; `run` maps structures to `Outputs`."""

    def __init__(self, result: CompileResult, device: Device, *, use_cache: bool = True) -> None:
        self.result = result
        self.device = device
        self.queue = device.queue
        build = build_program(device, result.source, BUILD_OPTIONS, use_cache=use_cache)
        self.build_seconds = build.seconds
        self.build_log = build.log  # the OpenCL compiler's messages; shown with --verbose
        self.cache_hit = build.cache_hit
        program = build.program
        self.kernels = {kernel.name: cl.Kernel(program, kernel.name)
                        for kernel in result.kernels.kernels}
        self.kernel_args = {kernel.name: [b.name for b in result.kernels.buffers
                                          if (b.name in kernel.reads or b.name in kernel.writes)
                                          and b.role != "index"] + ["indices"]
                            for kernel in result.kernels.kernels}
        self.index_names = index_buffers(result.kernels)
        self._kernel_token_rows = self._token_tables()
        self._leaf_token_rows = self._fast_token_rows()
        self._max_nodes = self._node_limit()
        self.node_capacity = 0
        # The buffer generation each kernel's arguments were last bound at.
        self.bound_args: dict[str, int] = {}
        self.generation = 0  # bumped whenever a buffer is (re)allocated
        self.kernel_buffers = {buffer.name for buffer in result.kernels.buffers}
        self.buffers: dict[str, cl.Buffer] = {}
        self.capacity: dict[str, int] = {}
        self.weights_bound = False
        self.last_launches = 0
        self.profiling = bool(self.queue.properties & cl.command_queue_properties.PROFILING_ENABLE)
        self.last_profile: list[LaunchRecord] = []
        self._events: list[tuple[str, int, int, cl.Event]] = []

    # -- buffers -------------------------------------------------------------------------------
    def _buffer(self, name: str, nbytes: int) -> cl.Buffer:
        nbytes = max(nbytes, 4)
        if self.capacity.get(name, 0) < nbytes:
            size = int(nbytes * 1.25) + 64
            self.buffers[name] = cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE, size)
            self.generation += 1
            self.capacity[name] = size
            if name == SYNC_BUFFER:
                # The cooperative kernel's counters start at zero; each run leaves them so.
                cl.enqueue_copy(self.queue, self.buffers[name], np.zeros(size // 4, np.int32))
        return self.buffers[name]

    def _upload(self, name: str, array: np.ndarray, run: _Run | None = None) -> None:
        array = np.ascontiguousarray(array)
        buffer = self._buffer(name, array.nbytes)
        if array.nbytes:
            cl.enqueue_copy(self.queue, buffer, array, is_blocking=run is None)
        if run is not None:
            run.host_arrays.append(array)

    def bind_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Upload the parameters and compute the hoisted uniforms (once per weights).

        Before anything is uploaded, the weights are checked as the interpreter checks them
        (`InputError` E0530 missing, E0535 not floats, E0532 wrong shape), and every buffer
        they fill must fit one allocation of the device (`EnvironmentProblem` E0604)."""
        recursive = self.result.recursive
        values = checked_weights(self.result.program, weights)
        self._allocate_weights()
        for param in recursive.params:
            value = values[param.name]
            self._upload(f"param:{param.name}", value.reshape(-1))
            if f"param_t:{param.name}" in self.kernel_buffers:
                # Products read weights transposed (see passes/lower_loops.py), perhaps in
                # blocks of columns (see KernelProgram.layouts).
                self._upload(f"param_t:{param.name}",
                             transposed_layout(value, self.result.kernels.layout(
                                 f"param_t:{param.name}")))
        uniforms = {**evaluate_uniforms(recursive, weights), **evaluate_tables(recursive, weights)}
        for name, value in uniforms.items():
            self._upload(f"uniform:{name}", value.reshape(-1).astype(np.float32))
        self.weights_bound = True

    def _allocate_weights(self) -> None:
        """Allocate every buffer the weights fill at its exact size (the slack `_buffer`
        gives per-run buffers, which grow, could push a weight past the device's limit),
        after checking that each fits one allocation (E0604)."""
        buffers = weight_buffers(self.result.recursive, self.kernel_buffers)
        check_allocations(buffers, self.device.info)
        for buffer in buffers:
            nbytes = max(buffer.nbytes, 4)
            if self.capacity.get(buffer.name, 0) < nbytes:
                self.generation += 1
                self.buffers[buffer.name] = cl.Buffer(self.device.context,
                                                      cl.mem_flags.READ_WRITE, nbytes)
                self.capacity[buffer.name] = nbytes

    # -- a run ---------------------------------------------------------------------------------
    def _node_rows(self, needed: int) -> int:
        """Rows of every node-indexed buffer: grown geometrically, last row kept at zero.

        The last row stands for every missing child (its states read as zeros), so it is
        zeroed once when the buffers are allocated, not on every run."""
        if needed > self.node_capacity:
            self.node_capacity = max(needed, int(self.node_capacity * 1.5), 64)
            for buffer in self.result.kernels.buffers:
                if buffer.role == "state" or (buffer.role == "temp" and buffer.rows == "nodes"):
                    nbytes = self.node_capacity * buffer.row_size * 4
                    self.generation += 1
                    self.buffers[buffer.name] = cl.Buffer(self.device.context,
                                                          cl.mem_flags.READ_WRITE, nbytes)
                    self.capacity[buffer.name] = nbytes
                    zero = np.zeros(buffer.row_size, dtype=np.float32)
                    cl.enqueue_copy(self.queue, self.buffers[buffer.name], zero,
                                    dst_offset=nbytes - zero.nbytes)
        return self.node_capacity

    def linearize(self, structures: Sequence[Structure]) -> Linearized:
        """The structures as this model's runs take them (see `run_linearized`)."""
        return linearize(structures, max_children=self.result.recursive.max_children,
                         dynamic_batching=self.result.options.dynamic_batching)

    def _prepare(self, linearized: Linearized) -> _Run:
        program = self.result.recursive
        total = linearized.num_nodes
        zero_row = self._node_rows(total + 1) - 1
        leaf_batches = int(np.count_nonzero(linearized.batch_start < linearized.num_leaves))
        heads = program.heads
        if heads is not None and any(o.selector == "all" for o in program.outputs
                                     if o.name in dict(heads.results)):
            head_nodes = np.arange(total, dtype=np.int32)
        else:
            head_nodes = linearized.roots.astype(np.int32)
        run = _Run(linearized, leaf_batches, head_nodes, [], zero_row, {})
        arrays = {
            "children": np.where(linearized.children < 0, zero_row, linearized.children),
            "num_children": linearized.num_children, "batch_start": linearized.batch_start,
            "batch_len": linearized.batch_len, "head_nodes": head_nodes}
        for item in program.inputs:
            if item.kind == "token":
                arrays[f"words:{item.name}"] = linearized.words
            else:
                self._upload(f"input:{item.name}", self._features(item, linearized), run)
        self._check_words(program, linearized)
        # One buffer holds the run's integers, then each index array's offset, then the
        # arrays (see codegen.opencl.RUN_HEADER): one upload, no kernel argument to set.
        run.first_fused = first_fused_batch(self.result.kernels, linearized.batch_len)
        scalars = {"num_leaf_batches": leaf_batches, "num_batches": len(linearized.batch_start),
                   "num_leaves": linearized.num_leaves, "zero_row": zero_row,
                   "num_heads": len(head_nodes), "first_fused": run.first_fused}
        header = [scalars[name] for name in RUN_HEADER]
        pieces: list[np.ndarray] = [np.zeros(len(header) + len(self.index_names), np.int32)]
        offset = pieces[0].size
        for name in self.index_names:
            values = np.asarray(arrays[name], dtype=np.int32).reshape(-1)
            run.offsets[name] = offset
            header.append(offset)
            pieces.append(values)
            offset += values.size
        pieces[0][:] = header
        self._upload("indices", np.concatenate(pieces), run)
        for buffer in self.result.kernels.buffers:
            rows = self._rows(buffer, linearized, len(head_nodes))
            if rows is not None:
                self._buffer(buffer.name, rows * buffer.row_size * 4)
        return run

    @staticmethod
    def _features(item, linearized: Linearized) -> np.ndarray:  # type: ignore[no-untyped-def]
        features = linearized.features
        if features is None:
            raise user_error("E0556", f"the model reads the vector input `{item.name}` but the "
                             "structures carry no features",
                             hint="give grid inputs with per-node features",
                             error_class=InputError)
        if features.shape[1] != item.shape[0]:
            raise user_error("E0556", f"input `{item.name}` has {features.shape[1]} features "
                             f"per node but the model needs {item.shape[0]}",
                             error_class=InputError)
        return features.astype(np.float32)

    def _rows(self, buffer: Buffer, linearized: Linearized, heads: int) -> int | None:
        """Rows of the per-run buffers that are not node-indexed (None: not per run)."""
        if buffer.role == "sync":
            return sync_rows(self.result.kernels.kernel("forward"), len(linearized.batch_len))
        if buffer.role == "temp" and buffer.rows != "nodes":
            return max(linearized.max_batch_len, heads, 1)
        if buffer.role == "output":
            return max(heads, 1)
        return None

    def _token_tables(self) -> dict[str, int]:
        """Per rule of the compiled program ("leaf", "internal", "heads"), the fewest rows of
        the tables its kernels read at a node's token (rules that read none are absent)."""
        program = self.result.recursive
        tables: dict[str, int] = {}
        for kind, rule in (("leaf", program.leaf), ("internal", program.internal),
                           ("heads", program.heads)):
            rows = [program.param_shape(op.attr("param"))[0] for op in
                    (rule.ops if rule is not None else ()) if op.kind == "lookup"
                    and not op.attr("moduli")]
            rows += [program.table_rows] if rule is not None and any(
                op.kind == "table" for op in rule.ops) else []
            if rows:
                tables[kind] = min(rows)
        return tables

    def _fast_token_rows(self) -> int | None:
        """`leaf_token_rows` of the source program, when the kernels too read tokens at
        leaves only (then bounded by the tables they read); None: every run walks."""
        rows = leaf_token_rows(self.result.program)
        program = self.result.recursive
        if rows is None or program.leaf is None:
            return None
        for rule in (program.internal, program.heads):
            if rule is not None and any(op.kind in ("lookup", "table") for op in rule.ops):
                return None
        return min(rows, self._kernel_token_rows.get("leaf", rows))

    def _check_words(self, program, linearized: Linearized) -> None:  # type: ignore[no-untyped-def]
        """The interpreter's E0554 and E0555 where the model reads a token (see
        runtime/checks.py). The kernels clamp a missing token to row 0 but do not bound a
        token above, so one past a table that a kernel reads is refused wherever it is read,
        even on a branch the interpreter would not take."""
        leaf = linearized.num_children == 0
        if self._leaf_token_rows is not None:
            # The common case, decided once per model: only leaves read tokens, and the
            # kernels read them at leaves only; a batch whose leaves all have a token inside
            # every table needs no walk (a bad one is walked to name the first bad node).
            words = linearized.words[leaf]
            if not words.size or (int(words.min()) >= 0 and
                                  int(words.max()) < self._leaf_token_rows):
                return
        nodes = {"leaf": leaf, "internal": ~leaf, "heads": np.ones_like(leaf)}
        kernel_reads = [(nodes[kind], rows) for kind, rows in self._kernel_token_rows.items()]
        check_tokens(self.result.program, linearized, kernel_reads)

    def _launch(self, run: _Run) -> None:
        """Enqueue every launch of the run (see `launch_plan`), then record the count."""
        kernels = self.result.kernels
        linearized = run.linearized
        for kernel in kernels.kernels:
            self._bind_buffers(kernel.name)
        plan = launch_plan(kernels, linearized.batch_len, run.num_leaf_batches,
                           len(run.head_nodes), run.first_fused)
        for name, batch, count, global_size, local_size in plan:
            opencl_kernel = self.kernels[name]
            if batch >= 0:
                opencl_kernel.set_arg(len(self.kernel_args[name]), np.int32(batch))
            event = cl.enqueue_nd_range_kernel(self.queue, opencl_kernel, global_size,
                                               local_size)
            self._record(name, batch, count, event)
        self.last_launches = len(plan)

    def _bind_buffers(self, name: str) -> None:
        """Bind the kernel's buffers, again only after one was reallocated (each call to
        set an argument costs microseconds)."""
        if self.bound_args.get(name) != self.generation:
            self.kernels[name].set_args(*(self.buffers[b] for b in self.kernel_args[name]),
                                        np.int32(0))
            self.bound_args[name] = self.generation

    def _record(self, kernel: str, batch: int, nodes: int, event: cl.Event) -> None:
        if self.profiling:
            self._events.append((kernel, batch, nodes, event))

    def _collect_profile(self) -> None:
        self.last_profile = [
            LaunchRecord(kernel, batch, nodes, event.profile.start, event.profile.end)
            for kernel, batch, nodes, event in self._events]
        self._events = []

    def _read(self, run: _Run, all_states: bool) -> tuple[dict[str, np.ndarray],
                                                          dict[str, np.ndarray]]:
        program = self.result.recursive
        total = run.linearized.num_nodes
        states: dict[str, np.ndarray] = {}
        wanted = {output.name for output in program.outputs}
        for state in program.states:
            if not all_states and state.name not in wanted:
                continue
            host = np.empty((total,) + state.shape, dtype=np.float32)
            if total:
                cl.enqueue_copy(self.queue, host, self.buffers[f"state:{state.name}"],
                                is_blocking=False)
            states[state.name] = host
        heads: dict[str, np.ndarray] = {}
        if program.heads is not None:
            shapes = {op.name: op.shape for op in program.heads.ops}
            for name, op in program.heads.results:
                host = np.empty((len(run.head_nodes),) + shapes[op], dtype=np.float32)
                cl.enqueue_copy(self.queue, host, self.buffers[f"output:{name}"],
                                is_blocking=False)
                heads[name] = host
        self.queue.finish()
        return states, heads

    def max_nodes(self) -> int:
        """How many nodes one run may hold: every node-indexed buffer must fit one
        allocation, and all of them together half the device's memory."""
        return self._max_nodes

    def _node_limit(self) -> int:
        info = self.device.info
        row_bytes = [4 * buffer.row_size for buffer in self.result.kernels.buffers
                     if buffer.rows == "nodes" and buffer.role != "index"]
        if not row_bytes:
            return 1 << 30
        by_allocation = (info.max_mem_alloc_size or 1 << 62) // max(row_bytes)
        by_memory = (info.global_mem_size or 1 << 62) // 2 // (sum(row_bytes) + 64)
        return max(1, int(min(by_allocation, by_memory)) - 1)

    def run(self, structures: Sequence[Structure], *, states: bool = True) -> Outputs:
        """Compute every state and output for `structures` (weights must be bound).

        With `states` False only the outputs are read back (what a latency measurement
        should include) and `Outputs.states` is empty. On a queue created with profiling,
        `last_profile` then lists every launch's times. Inputs larger than the device's
        memory allows run in chunks of whole structures, joined as one result."""
        limit = self.max_nodes()
        if sum(structure.num_nodes for structure in structures) > limit:
            return merge_outputs([self.run_linearized(self.linearize(chunk), states=states)
                                  for chunk in chunk_structures(structures, limit)])
        return self.run_linearized(self.linearize(structures), states=states)

    def run_linearized(self, linearized: Linearized, *, states: bool = True) -> Outputs:
        """`run` for structures already linearized by `linearize`: the host's share of a run
        is then uploading the index arrays, launching and reading back (the benchmark's
        latency; the linearizer is timed on its own). The input must fit the device."""
        if not self.weights_bound:
            raise RuntimeError("bind_weights must be called before run")
        if linearized.num_nodes > self.max_nodes():
            raise user_error("E0557", f"{linearized.num_nodes} nodes do not fit the device "
                             f"in one run (at most {self.max_nodes()})",
                             hint="run the structures with `run`, which splits them into "
                                  "chunks", error_class=InputError)
        timings: dict[str, float] = {"linearize": linearized.seconds}
        started = time.perf_counter()
        run = self._prepare(linearized)
        prepared = time.perf_counter()
        self._launch(run)
        read_states, heads = self._read(run, states)
        finished = time.perf_counter()
        if self.profiling:
            self._collect_profile()
        # `prepare` counts the linearizer (when it ran first) and the uploads.
        timings["prepare"] = linearized.seconds + prepared - started
        timings["compute"] = finished - prepared
        return self._outputs(run, read_states, heads, timings, states)

    def _outputs(self, run: _Run, states: dict[str, np.ndarray], heads: dict[str, np.ndarray],
                 timings: dict[str, float], all_states: bool) -> Outputs:
        program = self.result.recursive
        linearized = run.linearized
        order = linearized.new_id[:int(linearized.node_offset[-1])]
        source_states = {s.name for s in self.result.program.states}
        original_states = {name: values[order] for name, values in states.items()
                           if name in source_states} if all_states else {}
        outputs: dict[str, np.ndarray] = {}
        selectors: dict[str, str] = {}
        all_heads = len(run.head_nodes) == linearized.num_nodes and \
            not np.array_equal(run.head_nodes, linearized.roots)
        for output in program.outputs:
            selectors[output.name] = output.selector
            if output.name in heads:
                values = heads[output.name]
                if all_heads:
                    outputs[output.name] = values[linearized.roots] \
                        if output.selector == "root" else values[order]
                else:
                    outputs[output.name] = values
            else:
                values = states[output.name]
                outputs[output.name] = values[linearized.roots] \
                    if output.selector == "root" else values[order]
        return Outputs(outputs, original_states,
                       linearized.node_offset.astype(np.int64), selectors, timings)

"""Run an executable on an OpenCL device: bind weights once, then upload, launch, read back.

Compile products (the kernels, the weights and the hoisted values on the device) are kept
apart from per-input products (the `indices` upload, states and temporaries), which live in
buffers reused from run to run and grown only when a larger input arrives (the `indices` in
fine-grained shared memory where the device has it, written in place: no upload command). A
run's launches are all enqueued before a single wait, on its last read-back. Inputs too
large for the device are split into chunks of whole structures. Everything that does not
talk to the device is in `runtime/plan.py`, `runtime/weights.py`, `runtime/tokens.py` and
`runtime/results.py`; this module only allocates, copies and enqueues what they compute
from the `Executable`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyopencl as cl

from cortexlang.errors import InputError, user_error
from cortexlang.inputs.structure import Structure
from cortexlang.ir.executable import BufferRef, Executable, InputSpec, Role
from cortexlang.outputs import Outputs, merge_outputs
from cortexlang.runtime.build import build_program
from cortexlang.runtime.devices import Device, device_limits
from cortexlang.runtime.linearize import Linearized, linearize
from cortexlang.runtime.plan import (
    RunLayout,
    chunk_structures,
    first_fused_batch,
    launch_plan,
    launch_sections,
    node_buffers,
    node_limit,
    per_run_buffers,
    run_layout,
)
from cortexlang.runtime.results import run_outputs
from cortexlang.runtime.tokens import check_tokens
from cortexlang.runtime.weights import (
    check_allocations,
    checked_weights,
    weight_arrays,
    weight_buffers,
)

__all__ = ["CompiledModel", "LaunchRecord", "chunk_structures", "device_limits",
           "first_fused_batch", "launch_plan"]

BUILD_OPTIONS = ("-cl-mad-enable",)
# The OpenCL compiler's optimisations off: the same arithmetic, built in about half the time
# on PoCL, for runs that check meaning rather than speed (the tests' random programs).
UNOPTIMISED_BUILD_OPTIONS = BUILD_OPTIONS + ("-cl-opt-disable",)
_INDICES = BufferRef(Role.INDEX, "indices")


class Compiled(Protocol):
    """A compile product that carries its executable (the pipeline's `CompileResult`)."""

    @property
    def executable(self) -> Executable: ...


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


class CompiledModel:
    """An executable bound to one device; `run` maps structures to `Outputs`.

    `compiled` is an `Executable`, or a compile product carrying one (kept as `result` for
    callers that inspect it; the model itself reads only the executable). `optimise_build`
    False builds with the OpenCL compiler's optimisations off (UNOPTIMISED_BUILD_OPTIONS)."""

    def __init__(self, compiled: Executable | Compiled, device: Device, *,
                 use_cache: bool = True, optimise_build: bool = True,
                 shared_indices: bool | None = None) -> None:
        executable = compiled if isinstance(compiled, Executable) else compiled.executable
        self.executable = executable
        self.result: Any = compiled
        self.device = device
        self.queue = device.queue
        options = BUILD_OPTIONS if optimise_build else UNOPTIMISED_BUILD_OPTIONS
        build = build_program(device, executable.opencl, options, use_cache=use_cache)
        self.build_seconds = build.seconds
        self.build_log = build.log  # the OpenCL compiler's messages; shown with --verbose
        self.cache_hit = build.cache_hit
        self.kernels = {kernel.name: cl.Kernel(build.program, kernel.name)
                        for kernel in executable.kernels}
        self.kernel_args = {kernel.name: kernel.args + (_INDICES,)
                            for kernel in executable.kernels}
        # What every run reads from the executable, looked up once: the vector inputs (and
        # whether a kernel reads each), the launch order, the per-run buffers and their row
        # sizes, the states and head outputs read back.
        read = {buffer.ref for buffer in executable.buffers_of(Role.INPUT)}
        self._vector_inputs = tuple(
            (item, ref if ref in read else None) for item in executable.inputs
            if item.kind != "token" for ref in (BufferRef(Role.INPUT, item.name),))
        self._sections = launch_sections(executable)
        self._per_run = per_run_buffers(executable)
        self._row_size = {buffer.ref: buffer.row_size for buffer in executable.buffers}
        wanted = {output.name for output in executable.outputs if not output.head}
        self._output_states = tuple(state for state in executable.states
                                    if state.name in wanted)
        self._head_outputs = tuple(output for output in executable.outputs if output.head)
        # The buffer generation every kernel's arguments were last bound at: setting an
        # argument costs microseconds, so they are bound again only after a reallocation.
        self._bound_generation = -1
        info = device.info
        self._max_nodes = node_limit(executable, int(info.max_mem_alloc_size or 0),
                                     int(info.global_mem_size or 0))
        self._node_buffers = node_buffers(executable)
        self.node_capacity = 0
        self.generation = 0  # bumped whenever a buffer is (re)allocated
        self.buffers: dict[BufferRef, Any] = {}   # cl.Buffer, or cl.SVM for the indices
        # The `indices` in fine-grained shared virtual memory where the device has it: the
        # host writes them in place and no upload command runs (on PoCL that command costs
        # a worker's wake-up, 15-20 us a run); kernel launches are the synchronisation
        # points that make host writes visible, and every run waits for its kernels before
        # the next one writes.
        fine_grain = int(cl.device_svm_capabilities.FINE_GRAIN_BUFFER)
        supported = bool(int(getattr(device.device, "svm_capabilities", 0) or 0) & fine_grain)
        self.shared_indices = supported if shared_indices is None else \
            shared_indices and supported
        self._indices_host: np.ndarray | None = None
        self._in_flight = False   # a run's commands enqueued and not yet waited for
        self.capacity: dict[BufferRef, int] = {}
        self.weights_bound = False
        self.uploaded_bytes = 0  # bytes the last `bind_weights` copied to the device
        self.last_launches = 0
        self.profiling = bool(self.queue.properties & cl.command_queue_properties.PROFILING_ENABLE)
        self.last_profile: list[LaunchRecord] = []
        self._events: list[tuple[str, int, int, cl.Event]] = []

    # -- buffers -------------------------------------------------------------------------------
    def _allocate(self, ref: BufferRef, nbytes: int) -> cl.Buffer:
        self.generation += 1
        self.buffers[ref] = cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE, nbytes)
        self.capacity[ref] = nbytes
        return self.buffers[ref]

    def _buffer(self, ref: BufferRef, nbytes: int) -> cl.Buffer:
        """A per-run buffer of at least `nbytes`, grown with slack."""
        nbytes = max(nbytes, 4)
        if self.capacity.get(ref, 0) < nbytes:
            size = int(nbytes * 1.25) + 64
            buffer = self._allocate(ref, size)
            if ref.role is Role.SYNC:
                # The cooperative kernel's counters start at zero; each run leaves them so.
                cl.enqueue_copy(self.queue, buffer, np.zeros(size // 4, np.int32))
        return self.buffers[ref]

    def _upload(self, ref: BufferRef, array: np.ndarray, keep: list[np.ndarray]) -> None:
        """Copy without waiting; `keep` holds the host array until the run's wait."""
        array = np.ascontiguousarray(array)
        buffer = self._buffer(ref, array.nbytes)
        if array.nbytes:
            cl.enqueue_copy(self.queue, buffer, array, is_blocking=False)
        keep.append(array)

    def _upload_indices(self, indices: np.ndarray, keep: list[np.ndarray]) -> None:
        """The run's `indices`: written in place into shared memory (`shared_indices`),
        else uploaded like any input."""
        if not self.shared_indices:
            self._upload(_INDICES, indices, keep)
            return
        if self._in_flight:
            self.queue.finish()   # an earlier run that failed may still read them
            self._in_flight = False
        if self._indices_host is None or self._indices_host.size < indices.size:
            self.generation += 1
            count = int(max(indices.size, 1) * 1.25) + 16
            flags = cl.svm_mem_flags.READ_WRITE | cl.svm_mem_flags.SVM_FINE_GRAIN_BUFFER
            self._indices_host = cl.svm_empty(self.device.context, flags,  # type: ignore[arg-type]
                                              count, np.dtype(np.int32))
            self.buffers[_INDICES] = cl.SVM(self._indices_host)
            self.capacity[_INDICES] = self._indices_host.nbytes
        self._indices_host[:indices.size] = indices

    def bind_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Upload the weight buffers the kernels read and the host-computed uniforms and
        tables (once per weights).

        Before anything is uploaded, the weights are checked as the interpreter checks them
        (`InputError` E0530 missing, E0535 not floats, E0532 wrong shape), and every buffer
        they fill must fit one allocation of the device (`EnvironmentProblem` E0604)."""
        values = checked_weights(self.executable, weights)
        info = self.device.info
        check_allocations(weight_buffers(self.executable), int(info.max_mem_alloc_size or 0),
                          info.device_name)
        arrays = weight_arrays(self.executable, values)
        # Exact sizes: the slack per-run buffers get could push a weight past the limit.
        for ref in arrays:
            nbytes = max(self.executable.buffer(ref).fixed_bytes, 4)
            if self.capacity.get(ref, 0) < nbytes:
                self._allocate(ref, nbytes)
        self.uploaded_bytes = 0
        for ref, array in arrays.items():
            if array.nbytes:
                cl.enqueue_copy(self.queue, self.buffers[ref], array, is_blocking=True)
            self.uploaded_bytes += array.nbytes
        self.weights_bound = True

    def _node_rows(self, needed: int) -> int:
        """Rows of every node-indexed buffer: grown geometrically, last row kept at zero.

        The last row stands for every missing child (its states read as zeros), so it is
        zeroed once when the buffers are allocated, not on every run."""
        if needed > self.node_capacity:
            self.node_capacity = max(needed, int(self.node_capacity * 1.5), 64)
            for buffer in self._node_buffers:
                if buffer.ref.role is Role.INPUT:
                    continue  # uploaded whole every run
                nbytes = self.node_capacity * buffer.row_size * 4
                allocated = self._allocate(buffer.ref, nbytes)
                zero = np.zeros(buffer.row_size, dtype=np.float32)
                cl.enqueue_copy(self.queue, allocated, zero, dst_offset=nbytes - zero.nbytes)
        return self.node_capacity

    # -- a run ---------------------------------------------------------------------------------
    def linearize(self, structures: Sequence[Structure]) -> Linearized:
        """The structures as this model's runs take them (see `run_linearized`)."""
        return linearize(structures, max_children=self.executable.max_children,
                         dynamic_batching=self.executable.dynamic_batching,
                         unroll_depth=self.executable.unroll_depth)

    def _prepare(self, linearized: Linearized, keep: list[np.ndarray]) -> RunLayout:
        zero_row = self._node_rows(linearized.num_nodes + 1) - 1
        for item, ref in self._vector_inputs:
            features = _features(item, linearized)
            if ref is not None:
                self._upload(ref, features, keep)
        check_tokens(self.executable, linearized)
        layout = run_layout(self.executable, linearized, zero_row, self._per_run)
        self._upload_indices(layout.indices, keep)
        for ref, rows in layout.rows.items():
            self._buffer(ref, rows * self._row_size[ref] * 4)
        return layout

    def _launch(self, linearized: Linearized, layout: RunLayout) -> None:
        """Enqueue every launch of the run (see `launch_plan`), then record the count."""
        if self._bound_generation != self.generation:
            for name, kernel in self.kernels.items():
                kernel.set_args(*(self.buffers[ref] for ref in self.kernel_args[name]),
                                np.int32(0))
            self._bound_generation = self.generation
        plan = launch_plan(self.executable, linearized.batch_len, layout.num_leaf_batches,
                           len(layout.head_nodes), layout.first_fused, self._sections)
        for launch in plan:
            kernel = self.kernels[launch.kernel]
            if launch.batch >= 0:
                kernel.set_arg(len(self.kernel_args[launch.kernel]), np.int32(launch.batch))
            event = cl.enqueue_nd_range_kernel(self.queue, kernel, launch.global_size,
                                               launch.local_size)
            self._in_flight = True
            if self.profiling:
                self._events.append((launch.kernel, launch.batch, launch.nodes, event))
        self.last_launches = len(plan)

    def _collect_profile(self) -> None:
        self.last_profile = [
            LaunchRecord(kernel, batch, nodes, event.profile.start, event.profile.end)
            for kernel, batch, nodes, event in self._events]
        self._events = []

    def _read(self, linearized: Linearized, layout: RunLayout, all_states: bool) -> tuple[
            dict[str, np.ndarray], dict[str, np.ndarray]]:
        total = linearized.num_nodes
        copies: list[tuple[np.ndarray, Any]] = []
        states: dict[str, np.ndarray] = {}
        for state in self.executable.states if all_states else self._output_states:
            states[state.name] = np.empty((total,) + state.shape, dtype=np.float32)
            if total:
                copies.append((states[state.name],
                               self.buffers[BufferRef(Role.STATE, state.name)]))
        heads: dict[str, np.ndarray] = {}
        for output in self._head_outputs:
            heads[output.name] = np.empty((len(layout.head_nodes),) + output.shape,
                                          dtype=np.float32)
            copies.append((heads[output.name], self.buffers[BufferRef(Role.OUTPUT,
                                                                       output.name)]))
        # The in-order queue runs the last copy after everything before it: waiting for it
        # is waiting for the run (one call fewer than copying and then finishing).
        for index, (host, buffer) in enumerate(copies):
            cl.enqueue_copy(self.queue, host, buffer, is_blocking=index == len(copies) - 1)
        if not copies:
            self.queue.finish()
        self._in_flight = False
        return states, heads

    def max_nodes(self) -> int:
        """How many nodes one run may hold (see `plan.node_limit`)."""
        return self._max_nodes

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
        is then writing or uploading the `indices`, launching and reading back (the
        benchmark's latency; the linearizer is timed on its own). The input must fit the
        device."""
        if not self.weights_bound:
            raise RuntimeError("bind_weights must be called before run")
        if linearized.num_nodes > self.max_nodes():
            raise user_error("E0557", f"{linearized.num_nodes} nodes do not fit the device "
                             f"in one run (at most {self.max_nodes()})",
                             hint="run the structures with `run`, which splits them into "
                                  "chunks", error_class=InputError)
        timings: dict[str, float] = {"linearize": linearized.seconds}
        started = time.perf_counter()
        keep: list[np.ndarray] = []
        layout = self._prepare(linearized, keep)
        prepared = time.perf_counter()
        self._launch(linearized, layout)
        read_states, heads = self._read(linearized, layout, states)
        finished = time.perf_counter()
        if self.profiling:
            self._collect_profile()
        # `prepare` counts the linearizer (when it ran first) and the uploads.
        timings["prepare"] = linearized.seconds + prepared - started
        timings["compute"] = finished - prepared
        return run_outputs(self.executable, linearized, layout.head_nodes, read_states, heads,
                           timings, states)


def _features(item: InputSpec, linearized: Linearized) -> np.ndarray:
    features = linearized.features
    if features is None:
        raise user_error("E0556", f"the model reads the vector input `{item.name}` but the "
                         "structures carry no features",
                         hint="give grid inputs with per-node features",
                         error_class=InputError)
    if features.shape[1] != item.size:
        raise user_error("E0556", f"input `{item.name}` has {features.shape[1]} features "
                         f"per node but the model needs {item.size}",
                         error_class=InputError)
    return features.astype(np.float32)


"""The device-free part of a run: its scalars, its `indices` upload, its buffers' rows and
its launches, all computed from an executable and a linearized batch.

Nothing here touches OpenCL, so each piece is tested on its own (tests/runtime/test_plan.py);
`runtime/execute.py` enqueues what these functions return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cortexlang.errors import InputError, user_error
from cortexlang.inputs.structure import Structure
from cortexlang.ir.executable import (
    BatchRange,
    BufferRef,
    DeviceBuffer,
    Executable,
    KernelEntry,
    Role,
    Rows,
    RunScalar,
    Strategy,
)
from cortexlang.runtime.linearize import Linearized

# A run of fewer than this many times the executable's `fuse_below` nodes is one launch.
SMALL_RUN_FACTOR = 8


@dataclass(frozen=True)
class Launch:
    """One kernel launch: which kernel, for which batch (-1: a persistent kernel, which
    takes no batch), over how many nodes, and its NDRange."""

    kernel: str
    batch: int
    nodes: int
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None


def first_fused_batch(executable: Executable, batch_len: np.ndarray) -> int:
    """The batch from which the persistent kernel takes over: the first narrow one, or the
    first batch of all when the whole run is small (it is then one launch). The cooperative
    kernel runs every batch; the level strategy has no persistent kernel."""
    if executable.strategy is Strategy.COOPERATIVE:
        return 0
    if executable.strategy is not Strategy.HYBRID:
        return len(batch_len)
    if int(batch_len.sum()) < SMALL_RUN_FACTOR * executable.fuse_below:
        return 0
    narrow = np.flatnonzero(batch_len < executable.fuse_below)
    return int(narrow[0]) if narrow.size else len(batch_len)


Section = tuple[BatchRange, tuple[KernelEntry, ...]]


def launch_sections(executable: Executable) -> tuple[Section, ...]:
    """The executable's launch order as runs of consecutive kernels over the same batch
    range (the same for every run: a model computes it once)."""
    sections: list[tuple[BatchRange, list[KernelEntry]]] = []
    for name, over in executable.launches:
        kernel = executable.kernel(name)
        if sections and sections[-1][0] is over:
            sections[-1][1].append(kernel)
        else:
            sections.append((over, [kernel]))
    return tuple((over, tuple(kernels)) for over, kernels in sections)


def launch_plan(executable: Executable, batch_len: np.ndarray, num_leaf_batches: int,
                num_heads: int, first_fused: int,
                sections: Sequence[Section] | None = None) -> list[Launch]:
    """Every launch of a run in order (`sections`: `launch_sections(executable)`, computed
    here when not given).

    Per-level kernels run for each non-empty batch before `first_fused` (all batches for the
    level strategy); the persistent kernel, if any, runs once for the rest and the heads."""
    num_batches = len(batch_len)
    ranges = {BatchRange.LEAF: range(0, num_leaf_batches),
              BatchRange.INTERNAL: range(num_leaf_batches, num_batches),
              BatchRange.ALL: range(0, num_batches), BatchRange.HEADS: range(0, 1)}
    if sections is None:
        sections = launch_sections(executable)
    counts = batch_len.tolist()
    plan: list[Launch] = []
    for over, kernels in sections:
        if over is BatchRange.RUN:
            kernel = kernels[0]
            size = kernel.local_size or 1
            remaining = sum(counts[first_fused:]) + num_heads
            plan.append(Launch(kernel.name, -1, remaining, (size * kernel.groups,), (size,)))
            continue
        for batch in ranges[over]:
            if over is not BatchRange.HEADS and batch >= first_fused:
                break
            count = num_heads if over is BatchRange.HEADS else counts[batch]
            if count == 0:
                continue
            for kernel in kernels:
                name = kernel.name
                tiles = 1 if kernel.tiles_in_kernel else -(-count // kernel.node_tile)
                local = kernel.local_size
                units = kernel.units if local is None else -(-kernel.units // local) * local
                plan.append(Launch(name, batch, count, (units, tiles),
                                   None if local is None else (local, 1)))
    return plan


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


def node_buffers(executable: Executable) -> tuple[DeviceBuffer, ...]:
    """The float buffers with a row per node (states, node-indexed temporaries, inputs)."""
    return tuple(buffer for buffer in executable.buffers
                 if buffer.rows is Rows.NODES and buffer.ref.role not in (Role.INDEX,
                                                                          Role.TOKENS))


def node_limit(executable: Executable, max_alloc: int, global_memory: int) -> int:
    """How many nodes one run may hold: every node-indexed buffer must fit one allocation
    (`max_alloc` bytes), and all of them together half the device's memory (0: unknown)."""
    row_bytes = [4 * buffer.row_size for buffer in node_buffers(executable)]
    if not row_bytes:
        return 1 << 30
    by_allocation = (max_alloc or 1 << 62) // max(row_bytes)
    by_memory = (global_memory or 1 << 62) // 2 // (sum(row_bytes) + 64)
    return max(1, int(min(by_allocation, by_memory)) - 1)


def head_nodes(executable: Executable, linearized: Linearized) -> np.ndarray:
    """The nodes the output heads run at: every node, or each structure's root."""
    if executable.heads_at_every_node:
        return np.arange(linearized.num_nodes, dtype=np.int32)
    return linearized.roots.astype(np.int32)


@dataclass(frozen=True, eq=False)
class RunLayout:
    """A run's device-independent products: the `indices` upload (the run's integers, the
    offset of each index array, then the arrays; see `Executable.run_header`), the rows
    each per-run buffer needs, and the facts the launches and the read-back use."""

    indices: np.ndarray
    scalars: dict[RunScalar, int]
    head_nodes: np.ndarray
    first_fused: int
    num_leaf_batches: int
    rows: dict[BufferRef, int]


def per_run_buffers(executable: Executable) -> tuple[DeviceBuffer, ...]:
    """The buffers whose rows a run decides, apart from the node-indexed ones (see
    `RunLayout.rows`)."""
    return tuple(buffer for buffer in executable.buffers
                 if buffer.ref.role in (Role.SYNC, Role.OUTPUT) or
                 (buffer.ref.role is Role.TEMP and buffer.rows is not Rows.NODES))


def run_layout(executable: Executable, linearized: Linearized, zero_row: int,
               per_run: Sequence[DeviceBuffer] | None = None) -> RunLayout:
    """The run's layout for `linearized`, whose node-indexed buffers have `zero_row + 1`
    rows (the last one, read for every missing child, holds zeros); `per_run`:
    `per_run_buffers(executable)`, computed here when not given."""
    if linearized.unroll_depth != executable.unroll_depth:
        raise ValueError(f"a run linearized with {linearized.unroll_depth} height(s) per batch "
                         f"for kernels that take {executable.unroll_depth}: linearize with "
                         "the model's own `linearize`")
    heads = head_nodes(executable, linearized)
    leaf_batches = int(np.count_nonzero(linearized.batch_start < linearized.num_leaves))
    first_fused = first_fused_batch(executable, linearized.batch_len)
    scalars = {RunScalar.NUM_LEAF_BATCHES: leaf_batches,
               RunScalar.NUM_BATCHES: linearized.num_batches,
               RunScalar.NUM_LEAVES: linearized.num_leaves, RunScalar.ZERO_ROW: zero_row,
               RunScalar.NUM_HEADS: len(heads), RunScalar.FIRST_FUSED: first_fused}
    arrays = [_index_array(ref, linearized, heads, zero_row) for ref in executable.index_arrays]
    header = [scalars[scalar] for scalar in executable.run_header]
    offset = len(header) + len(arrays)
    for values in arrays:
        header.append(offset)
        offset += values.size
    # One int32 array: the header, then each index array flat (concatenate converts).
    indices = np.concatenate([header] + [values.reshape(-1) for values in arrays],
                             dtype=np.int32, casting="unsafe")
    if per_run is None:
        per_run = per_run_buffers(executable)
    rows: dict[BufferRef, int] = {}
    for buffer in per_run:
        count = _per_run_rows(executable, buffer, linearized, len(heads))
        if count is not None:
            rows[buffer.ref] = count
    return RunLayout(indices, scalars, heads, first_fused, leaf_batches, rows)


def _index_array(ref: BufferRef, linearized: Linearized, heads: np.ndarray,
                 zero_row: int) -> np.ndarray:
    if ref.role is Role.TOKENS:
        return linearized.words
    if ref.name == "children":
        return np.where(linearized.children < 0, zero_row, linearized.children)
    if ref.name in ("group_start", "batch_groups"):
        return getattr(linearized, ref.name)   # unrolled (checked by run_layout)
    arrays = {"num_children": linearized.num_children, "batch_start": linearized.batch_start,
              "batch_len": linearized.batch_len, "head_nodes": heads}
    return arrays[ref.name]


def _per_run_rows(executable: Executable, buffer: DeviceBuffer, linearized: Linearized,
                  heads: int) -> int | None:
    """Rows of a per-run buffer that is not node-indexed (None: not one; the buffers
    `per_run_buffers` lists are exactly those)."""
    if buffer.ref.role is Role.SYNC:
        return executable.sync_rows(linearized.num_batches)
    if buffer.ref.role is Role.TEMP and buffer.rows is not Rows.NODES:
        return max(linearized.max_batch_len, heads, 1)
    if buffer.ref.role is Role.OUTPUT:
        return max(heads, 1)
    return None

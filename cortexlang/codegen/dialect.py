"""The OpenCL spelling the printer uses: keywords and barriers, the run header, and the C
identifier of every buffer (a prefix per role, so no user name meets a C keyword or a local
of the kernels)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import INDEX_ROLES, BufferRef, Role
from cortexlang.ir.kernels import Kernel, KernelProgram


@dataclass(frozen=True)
class Dialect:
    """Every OpenCL C spelling the kernel printer writes: qualifiers, work-item ids,
    barriers and fences, atomics, attributes and vector loads and stores. The printer says
    what it wants; this table says how OpenCL writes it."""

    kernel: str = "__kernel"
    global_: str = "__global"
    local: str = "__local"
    restrict: str = "restrict"
    volatile: str = "volatile"
    barrier_all: str = "barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);"
    barrier_local: str = "barrier(CLK_LOCAL_MEM_FENCE);"
    fence_global: str = "mem_fence(CLK_GLOBAL_MEM_FENCE);"

    def global_id(self, dimension: int) -> str:
        return f"get_global_id({dimension})"

    def local_id(self, dimension: int) -> str:
        return f"get_local_id({dimension})"

    def group_id(self, dimension: int) -> str:
        return f"get_group_id({dimension})"

    def atomic_inc(self, pointer: str) -> str:
        """The counter's value before adding 1."""
        return f"atomic_inc({pointer})"

    def atomic_add(self, pointer: str, value: str) -> str:
        """The counter's value before adding `value` (0: an atomic read)."""
        return f"atomic_add({pointer}, {value})"

    def work_group_size(self, size: int) -> str:
        return f"__attribute__((reqd_work_group_size({size}, 1, 1)))"

    def vload(self, lanes: int, pointer: str) -> str:
        return f"vload{lanes}(0, {pointer})"

    def vstore(self, lanes: int, value: str, pointer: str) -> str:
        return f"vstore{lanes}({value}, 0, {pointer});"


OPENCL = Dialect()
# The run's integers lead the `indices` buffer (one upload per run, no argument to set), then
# the offset of each index array in it. Only the batch of a per-level launch is an argument.
RUN_HEADER = ("num_leaf_batches", "num_batches", "num_leaves", "zero_row", "num_heads",
              "first_fused")
_PREFIX = {Role.WEIGHT: "p", Role.WEIGHT_T: "pt", Role.STATE: "s", Role.TEMP: "t",
           Role.UNIFORM: "u", Role.TABLE: "u", Role.INPUT: "x", Role.TOKENS: "w",
           Role.OUTPUT: "o"}

def index_buffers(program: KernelProgram) -> tuple[BufferRef, ...]:
    """The linearizer's integer arrays, in the order their offsets are passed."""
    return tuple(buffer.ref for buffer in program.buffers if buffer.ref.role in INDEX_ROLES)


def kernel_buffers(program: KernelProgram, kernel: Kernel) -> tuple[L.Buffer, ...]:
    """The buffers a kernel takes as arguments, in order: every buffer it reads or writes
    but the index arrays (those are views into `indices`, the argument after them)."""
    return tuple(buffer for buffer in program.buffers if buffer.ref.role not in INDEX_ROLES
                 and (buffer.ref in kernel.reads or buffer.ref in kernel.writes))


def buffer_identifiers(buffers: tuple[L.Buffer, ...]) -> dict[BufferRef, str]:
    """A unique, valid C identifier for every buffer."""
    names: dict[BufferRef, str] = {}
    taken: set[str] = set()
    for buffer in buffers:
        ref = buffer.ref
        prefix = _PREFIX.get(ref.role)
        base = f"{prefix}_{ref.name}" if prefix else ref.name
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)
        candidate, index = base, 2
        while candidate in taken:
            candidate, index = f"{base}_{index}", index + 1
        taken.add(candidate)
        names[ref] = candidate
    return names

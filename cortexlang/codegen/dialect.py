"""The OpenCL spelling the printer uses: keywords and barriers, the run header, and the C
identifier of every buffer (a prefix per role, so no user name meets a C keyword or a local
of the kernels)."""

from __future__ import annotations

import re

from cortexlang.ir import loops as L
from cortexlang.ir.kernels import Kernel, KernelProgram

DIALECT = {
    "kernel": "__kernel",
    "global": "__global",
    "local": "__local",
    "barrier_all": "barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)",
    "barrier_local": "barrier(CLK_LOCAL_MEM_FENCE)",
}
# The run's integers lead the `indices` buffer (one upload per run, no argument to set), then
# the offset of each index array in it. Only the batch of a per-level launch is an argument.
RUN_HEADER = ("num_leaf_batches", "num_batches", "num_leaves", "zero_row", "num_heads",
              "first_fused")
_PREFIX = {"param": "p", "param_t": "pt", "state": "s", "temp": "t", "uniform": "u", "input": "x",
           "words": "w", "output": "o"}

def index_buffers(program: KernelProgram) -> tuple[str, ...]:
    """The linearizer's integer arrays, in the order their offsets are passed."""
    return tuple(buffer.name for buffer in program.buffers if buffer.role == "index")


def kernel_buffers(program: KernelProgram, kernel: Kernel) -> tuple[L.Buffer, ...]:
    """The buffers a kernel takes as arguments, in order: every buffer it reads or writes
    but the index arrays (those are views into `indices`, the argument after them)."""
    return tuple(buffer for buffer in program.buffers if buffer.role != "index" and
                 (buffer.name in kernel.reads or buffer.name in kernel.writes))


def buffer_identifiers(buffers: tuple[L.Buffer, ...]) -> dict[str, str]:
    """A unique, valid C identifier for every buffer."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for buffer in buffers:
        role, _, name = buffer.name.partition(":")
        base = f"{_PREFIX[role]}_{name}" if name else role
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)
        candidate, index = base, 2
        while candidate in taken:
            candidate, index = f"{base}_{index}", index + 1
        taken.add(candidate)
        names[buffer.name] = candidate
    return names

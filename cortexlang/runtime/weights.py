"""The device-free part of binding weights: what each weight buffer holds, and whether it
fits the device.

`checked_weights` checks the weights as the interpreter checks them (E0530 missing, E0535 not
floats, E0532 wrong shape); `weight_arrays` computes the host program (hoisted uniforms, leaf
tables) and returns, for exactly the weight, uniform and table buffers the executable
declares (those some kernel reads), the float32 array to upload in its layout.
`check_allocations` raises `EnvironmentProblem` E0604 for such a buffer larger than the
device's largest allocation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cortexlang.errors import Diagnostic, EnvironmentProblem
from cortexlang.inputs.checks import check_parameters
from cortexlang.ir import host_eval
from cortexlang.ir.executable import (
    BufferRef,
    Executable,
    Layout,
    LayoutKind,
    Role,
)

WEIGHT_ROLES = (Role.WEIGHT, Role.WEIGHT_T, Role.UNIFORM, Role.TABLE)


def in_layout(value: np.ndarray, layout: Layout) -> np.ndarray:
    """A parameter as a buffer of `layout` holds it, flat: as declared (plain); transposed
    to (k rows, one column per output unit); or transposed and stored as column blocks of
    `layout.block` columns, each block row-major."""
    if layout.kind is LayoutKind.PLAIN:
        return np.ascontiguousarray(value).reshape(-1)
    matrix: np.ndarray = value.reshape(value.shape[0], -1).T
    if layout.kind is LayoutKind.BLOCKED:
        rows = matrix.size // layout.columns
        matrix = matrix.reshape(rows, layout.columns // layout.block,
                                layout.block).transpose(1, 0, 2)
    return np.ascontiguousarray(matrix).reshape(-1)


def checked_weights(executable: Executable,
                    weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every parameter as float32, checked as the interpreter checks it (InputError E0530,
    E0535, E0532)."""
    return check_parameters(executable.parameters, weights, np.dtype(np.float32),
                            executable.cx_source)


def weight_arrays(executable: Executable,
                  values: Mapping[str, np.ndarray]) -> dict[BufferRef, np.ndarray]:
    """The float32 contents of every weight, uniform and table buffer the executable
    declares, from checked parameter `values` (see `checked_weights`)."""
    arrays = {binding.buffer: in_layout(values[binding.parameter], binding.layout)
              for binding in executable.bindings}
    wanted = {buffer.ref for buffer in executable.buffers_of(Role.UNIFORM, Role.TABLE)}
    if not wanted:
        return arrays
    uniforms = host_eval.evaluate_uniforms(executable.uniforms, values)
    computed = {BufferRef(Role.UNIFORM, name): value for name, value in uniforms.items()}
    if executable.tables is not None:
        tables = executable.tables
        computed.update((BufferRef(Role.TABLE, name), value) for name, value in
                        host_eval.evaluate_tables(tables.ops, tables.results, tables.rows,
                                                  uniforms, values).items())
    for ref in sorted(wanted, key=str):
        arrays[ref] = np.ascontiguousarray(computed[ref], dtype=np.float32).reshape(-1)
    return arrays


@dataclass(frozen=True)
class WeightBuffer:
    """A device buffer that binding weights fills: which, what it holds (for messages), its
    size, and how to make it smaller."""

    ref: BufferRef
    what: str
    nbytes: int
    fix: str


def weight_buffers(executable: Executable) -> list[WeightBuffer]:
    """Every buffer the weights fill, at its exact size (float32): only those some kernel
    reads."""
    sizes = "make the model smaller with -D"
    shapes = {parameter.name: list(parameter.shape) for parameter in executable.parameters}
    uniforms = {op.name: list(op.shape) for op in executable.uniforms}
    found: list[WeightBuffer] = []
    for buffer in executable.buffers_of(*WEIGHT_ROLES):
        ref = buffer.ref
        if ref.role in (Role.WEIGHT, Role.WEIGHT_T):
            found.append(WeightBuffer(ref, f"parameter `{ref.name}` {shapes[ref.name]}",
                                      buffer.fixed_bytes, sizes))
        elif ref.role is Role.UNIFORM:
            found.append(WeightBuffer(
                ref, f"the hoisted value `{ref.name}` {uniforms[ref.name]}",
                buffer.fixed_bytes, f"{sizes}, or compile with --disable hoist_invariants"))
        else:
            shape = [buffer.fixed_rows, buffer.row_size]
            found.append(WeightBuffer(
                ref, f"the leaf table `{ref.name}` {shape}", buffer.fixed_bytes,
                f"{sizes}, or compile with --disable tabulate_leaves"))
    return found


def check_allocations(buffers: Sequence[WeightBuffer], limit: int, device_name: str) -> None:
    """`EnvironmentProblem` E0604, one diagnostic per buffer larger than the device's
    largest allocation of `limit` bytes (not checked when the device does not say: 0). A
    parameter read both plainly and transposed is reported once."""
    if not limit:
        return
    diagnostics = list(dict.fromkeys(Diagnostic(
        "E0604", f"{buffer.what} takes {buffer.nbytes} bytes ({_gib(buffer.nbytes)}), more "
                 f"than the {limit} bytes ({_gib(limit)}) that the device "
                 f"{device_name} allows in one allocation", None, "",
        f"{buffer.fix}, or use a device that allows larger allocations (see `cortexlang "
        "devices`)") for buffer in buffers if buffer.nbytes > limit))
    if diagnostics:
        raise EnvironmentProblem(diagnostics)


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB"

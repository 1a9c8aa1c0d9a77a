"""What a run will allocate, checked against what the machine can hold, before allocating.

A size that checks (below 2^31) can still ask for far more memory than any machine has:
`param W[H, H]` with H = 10^7 is 10^14 values. numpy would fail deep inside weight
initialisation, so `cortexlang run` first adds up what the run needs and refuses, at the
declaration in the .cx file, with the size and the limit (E0590, exit 1):

- each parameter, and all of them together, in the run's dtype (an initialiser draws in
  float64, so initialised weights count 8 bytes a value on top);
- the states of every node of the inputs (the interpreter keeps them all, as do `--out`
  archives), plus the `[all]` outputs.

The host limit is the memory the kernel says is available now (`MemAvailable`), else the
physical memory; where neither can be read nothing is checked. For the compiled backend each
weight buffer must also fit the device's largest allocation (E0591): the runtime checks that
again (E0604) when it uploads, but only after the host copy exists.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from cortexlang.errors import CortexError, Diagnostic, Span
from cortexlang.ir import checked as ir

_MEMINFO = "/proc/meminfo"


def available_host_bytes() -> int | None:
    """Bytes of memory available to a new allocation, or None when the system does not say."""
    try:
        with open(_MEMINFO, encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(count: int) -> str:
    """A byte count for people: 512 B, 3.0 MiB, 372529.0 GiB."""
    if count < 1024:
        return f"{count} B"
    if count < 2**30:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**30:.1f} GiB"


@dataclass(frozen=True)
class Need:
    """One allocation the run will make: what it is, its bytes, where the .cx declares it."""

    what: str
    nbytes: int
    span: Span | None


def _values(shape: ir.Shape) -> int:
    return math.prod(int(dim) for dim in shape)  # Python ints: no overflow at 2^31 cubed


def parameter_needs(program: ir.CheckedProgram, itemsize: int, *,
                    initialised: bool) -> list[Need]:
    """One `Need` per parameter, in the run's dtype (plus the float64 draw when initialised)."""
    per_value = itemsize + (8 if initialised else 0)
    return [Need(f"parameter `{param.name}` {list(param.shape)} ({_values(param.shape)} "
                 "values)", _values(param.shape) * per_value, param.span)
            for param in program.params]


def state_needs(program: ir.CheckedProgram, itemsize: int, num_nodes: int,
                num_structures: int) -> list[Need]:
    """The states of every node, and every output, as the run keeps them."""
    needs = [Need(f"state `{state.name}` {list(state.shape)} at {num_nodes} nodes",
                  _values(state.shape) * num_nodes * itemsize, state.span)
             for state in program.states]
    needs += [Need(f"output `{output.name}` {list(output.shape)} at "
                   f"{num_nodes if output.selector == 'all' else num_structures} "
                   f"{'nodes' if output.selector == 'all' else 'structures'}",
                   _values(output.shape) * itemsize
                   * (num_nodes if output.selector == "all" else num_structures), output.span)
              for output in program.outputs]
    return needs


def check_host_memory(program: ir.CheckedProgram, dtype: np.dtype, *, initialised: bool,
                      num_nodes: int, num_structures: int,
                      limit: int | None = None) -> None:
    """Raise `CortexError` E0590 when the run would need more memory than `limit` (default:
    `available_host_bytes()`): at the largest single need if it alone is too large, else at
    the largest one with the total."""
    limit = available_host_bytes() if limit is None else limit
    if limit is None:
        return
    params = parameter_needs(program, dtype.itemsize, initialised=initialised)
    needs = params + state_needs(program, dtype.itemsize, num_nodes, num_structures)
    too_large = [need for need in needs if need.nbytes > limit]
    diagnostics = [_diagnostic("E0590", need, limit, "this machine has", "available")
                   for need in too_large]
    total = sum(need.nbytes for need in needs)
    if not diagnostics and total > limit and needs:
        largest = max(needs, key=lambda need: need.nbytes)
        diagnostics.append(Diagnostic(
            "E0590", f"the run needs {format_bytes(total)} for its weights and states, more "
                     f"than the {format_bytes(limit)} this machine has available",
            largest.span, f"the largest part: {largest.what}, {format_bytes(largest.nbytes)}",
            _HINT))
    if diagnostics:
        raise CortexError(diagnostics, program.source)


def check_device_allocations(program: ir.CheckedProgram, max_allocation: int,
                             device_name: str) -> None:
    """Raise `CortexError` E0591 for each parameter (float32 on the device) larger than the
    device's largest allocation; nothing when the device does not say (0)."""
    if max_allocation <= 0:
        return
    diagnostics = [_diagnostic("E0591", need, max_allocation,
                               f"the device {device_name} allows", "in one allocation")
                   for need in parameter_needs(program, 4, initialised=False)
                   if need.nbytes > max_allocation]
    if diagnostics:
        raise CortexError(diagnostics, program.source)


_HINT = ("lower the sizes (-D NAME=VALUE), run fewer inputs (--limit), or use a machine with "
         "more memory")


def _diagnostic(code: str, need: Need, limit: int, holder: str, how: str) -> Diagnostic:
    return Diagnostic(code, f"{need.what} needs {format_bytes(need.nbytes)}, more than the "
                            f"{format_bytes(limit)} {holder} {how}", need.span,
                      f"{need.nbytes} bytes", _HINT)

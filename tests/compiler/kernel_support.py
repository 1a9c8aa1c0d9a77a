"""What the tests of the kernel-IR steps share: the IR a step is given, and what it returns."""

from __future__ import annotations

from compiler_support import stage_before

from cortexlang.ir.checked import CheckedProgram
from cortexlang.ir.kernels import KernelProgram, verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.pipeline import Options

# Fixed GPU-like limits (never a real device's).
GPU = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=8)


def given(program: CheckedProgram, step: str, limits: DeviceLimits,
          options: Options | None = None) -> KernelProgram:
    """The kernel IR `step` receives in the pipeline (verified)."""
    before = stage_before(program, step, options, limits)
    assert isinstance(before, KernelProgram)
    verify_kernels(before)
    return before

"""unroll_dot_products: which dot products step along k by 4, recorded in the kernel IR."""

from __future__ import annotations

from dataclasses import replace

from compiler_support import small_example, stage_before

from cortexlang.ir.kernels import KernelProgram, format_kernels, verify_kernels
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.passes.unroll_dot_products import unroll_dot_products, unroll_dot_products_result

GPU = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=4)


def _planned(name: str, limits: DeviceLimits) -> KernelProgram:
    before = stage_before(small_example(name), "unroll_dot_products", Options(), limits)
    assert isinstance(before, KernelProgram)
    return before


def test_scalar_products_with_contiguous_loads_are_unrolled() -> None:
    """MV-RNN's matrix products read contiguously in k at width 1 (on GPU limits)."""
    before = _planned("mvrnn", GPU)
    after = unroll_dot_products(before)
    verify_kernels(after)
    marked = [entry for kernel in after.kernels for entry in kernel.k_unrolled]
    assert marked and all(kernel.k_unrolled == () for kernel in before.kernels)
    assert "dot products unrolled along k by 4" in format_kernels(after)
    source = run_pipeline(small_example("mvrnn"), Options(), GPU).source
    rolled = run_pipeline(small_example("mvrnn"), Options().without("unroll_dot_products"),
                          GPU).source
    assert "vload4" in source and "vload4" not in rolled


def test_nothing_to_unroll_returns_the_same_program() -> None:
    """TreeFC's products read weights transposed (strided in k): nothing changes."""
    before = _planned("treefc", GPU)
    assert unroll_dot_products(before) is before
    result = unroll_dot_products_result(before)
    assert result.ir is before and result.note == (
        "no scalar dot product is contiguous in k with a length that is a multiple of 4")


def test_a_device_with_narrower_vectors_gets_none() -> None:
    narrow = replace(GPU, preferred_vector_width=2)
    before = _planned("mvrnn", narrow)
    assert unroll_dot_products(before) is before
    result = unroll_dot_products_result(before)
    assert result.ir is before
    assert result.note == "the device's vectors hold 2 floats, fewer than 4"
    assert "float4" not in run_pipeline(small_example("mvrnn"), Options(), narrow).source

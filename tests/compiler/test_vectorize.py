"""vectorize: the consecutive units of a unit loop one work-item computes as a vector."""

from __future__ import annotations

from dataclasses import replace

import pytest
from compiler_support import small_example
from kernel_support import GPU, given

from cortexlang.errors import InternalError
from cortexlang.ir.kernels import kernel_units, verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.vectorize import vectorize


def test_on_a_cpu_units_are_as_wide_as_the_device_prefers() -> None:
    for preferred, expected in ((4, 4), (16, 8)):
        limits = DeviceLimits(preferred_vector_width=preferred)
        before = given(small_example("treelstm"), "vectorize", limits)
        result = vectorize(before)
        verify_kernels(result.ir)
        (forward,) = result.ir.kernels
        # H = 8: the state loops of 8 units are one vector each, up to the device's width.
        assert {width for _, width in forward.widths} == {expected}
        assert forward.units == kernel_units(forward) == 8 // expected
        assert result.note.endswith(f"in vectors of up to {expected} units")


def test_a_gpu_computes_one_unit_per_work_item() -> None:
    before = given(small_example("treelstm"), "vectorize", GPU)
    result = vectorize(before)
    assert result.ir is before
    assert result.note.startswith("a GPU: neighbouring work-items coalesce")


def test_a_device_without_vectors_gets_none() -> None:
    before = given(small_example("treelstm"), "vectorize", DeviceLimits(preferred_vector_width=1))
    result = vectorize(before)
    assert result.ir is before and result.note == "the device prefers vectors of 1 float"


def test_the_verifier_rejects_a_width_that_does_not_divide_the_loop() -> None:
    before = given(small_example("treelstm"), "vectorize", DeviceLimits())
    (forward,) = vectorize(before).ir.kernels
    key, _ = forward.widths[0]
    broken = replace(before, kernels=(replace(forward, widths=((key, 3),)),))
    with pytest.raises(InternalError, match="vector width 3"):
        verify_kernels(broken)

"""block_weights: transposed weights stored in column blocks of their readers' vector width."""

from __future__ import annotations

from compiler_support import small_example
from kernel_support import GPU, given

from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.kernels import Layout, format_kernels, verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.block_weights import block_weights

U_T = BufferRef(Role.WEIGHT_T, "U")


def test_wide_transposed_weights_are_blocked_by_the_vector_width() -> None:
    # TreeLSTM at H = 64: U^T has 5 * 64 columns, read by work-items of 16 units.
    limits = DeviceLimits(preferred_vector_width=16)
    before = given(small_example("treelstm", H=64), "block_weights", limits)
    result = block_weights(before)
    verify_kernels(result.ir)
    assert result.ir.layouts == (Layout(U_T, 16, 320),)
    assert result.ir.layout(U_T) == (16, 320)
    assert result.ir.layout(BufferRef(Role.WEIGHT, "U")) is None
    assert "layout param_t:U: 320 columns in blocks of 16" in format_kernels(result.ir)
    assert result.note == "param_t:U in blocks of 16"


def test_a_gpu_keeps_the_plain_layout() -> None:
    """A GPU reads one unit per work-item: neighbouring work-items coalesce the plain layout."""
    before = given(small_example("treelstm", H=64), "block_weights", GPU)
    result = block_weights(before)
    assert result.ir is before and result.ir.layouts == ()
    assert result.note.startswith("no transposed weight is read only in vectors")

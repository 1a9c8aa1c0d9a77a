"""persist_weights: a persistent kernel's product weights in local memory, where they fit."""

from __future__ import annotations

from compiler_support import small_example
from kernel_support import GPU, given

from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.kernels import verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.persist_weights import persist_weights
from cortexlang.passes.pipeline import Options

U_T = BufferRef(Role.WEIGHT_T, "U")


def test_the_persistent_kernel_keeps_its_weights_in_local_memory() -> None:
    for limits in (DeviceLimits(), GPU):
        before = given(small_example("treelstm"), "persist_weights", limits)
        result = persist_weights(before)
        verify_kernels(result.ir)
        forward = result.ir.kernel("forward")
        assert forward.cached_params == (U_T,)
        assert all(kernel.cached_params == () for kernel in result.ir.kernels
                   if kernel is not forward)
        assert result.ir.decisions[-1] == \
            "weights in local memory for the fused batches: param_t:U"


def test_weights_that_do_not_fit_stay_in_global_memory() -> None:
    # U at H = 8 is 40 x 16 floats, 2560 bytes: more than half of 2048 bytes.
    before = given(small_example("treelstm"), "persist_weights",
                   DeviceLimits(local_mem_size=2048))
    result = persist_weights(before)
    assert result.ir is before
    assert result.note == "param_t:U stays in global memory: 2560 bytes do not fit in the " \
        "local memory left"


def test_the_level_strategy_copies_nothing() -> None:
    options = Options().without("fuse_levels")
    for limits in (DeviceLimits(), GPU):
        before = given(small_example("treelstm"), "persist_weights", limits, options)
        result = persist_weights(before)
        assert result.ir is before
        assert result.note.startswith("weight persistence not applied: every per-level launch")


def test_switched_off_the_next_step_gets_the_ir_as_it_was() -> None:
    off = Options().without("persist_weights")
    for limits in (DeviceLimits(), GPU):
        program = small_example("treelstm")
        assert given(program, "block_weights", limits, off) == \
            given(program, "persist_weights", limits)

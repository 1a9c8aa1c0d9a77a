"""plan_kernels: kernels, strategy, geometry, local memory and launch order, decided from the
loop IR and the device's limits (the default `DeviceLimits()` here, never the local device)."""

from __future__ import annotations

import pytest
from compiler_support import EXAMPLE_NAMES, program_from_source, small_example, stage_before

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.kernels import KernelProgram, format_kernels, verify_kernels
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.plan_kernels import MAX_GROUPS, DeviceLimits, plan_kernels

TINY = """\
model Tiny
sizes H = 4, V = 3
structure binary_tree
param Emb[V, H], W[H, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = W @ (h[left(n)] + h[right(n)])
output h[root]
"""
OPTIONS = Options().without("refactor_recursion")

# The loop IR's buffers of Tiny, as every plan declares them.
TINY_BUFFERS = """\
buffer param:Emb: float[param][12]
buffer param:W: float[param][16]
buffer param_t:W: float[param][16]
buffer state:h: float[nodes][4]
buffer words:word: int[nodes][1]
buffer children: int[nodes][2]
buffer num_children: int[nodes][1]
buffer batch_start: int[batches][1]
buffer batch_len: int[batches][1]
"""

# Cooperative (a CPU): the whole run is one launch of one single-item work-group per compute
# unit; the groups share each batch's tasks through the sync counters. A work-item computes
# the 4 units as one vector; the product's weight (read transposed) is kept in local memory.
EXPECTED_COOPERATIVE = """\
kernel program Tiny
strategy cooperative, node tile 4
device compute_units = 2
device max_work_group_size = 256
device local_mem_size = 32768
device is_gpu = 0
device preferred_vector_width = 4
decision: one launch per run: 2 work-groups (one per compute unit) share each batch's tasks, \
a block of units for a node tile; each claims its own units first, so their weight rows stay \
in its core's cache, then any task left; a counter of finished tasks is the barrier between \
batches
decision: weights in local memory for the fused batches: param_t:W
""" + TINY_BUFFERS + """\
buffer sync: int[steps][48]
kernel forward over run: 1 work-items x node tiles of 4, work-group 1, 2 work-groups cooperating
  vector widths: leaf.0.0=4, internal.0.0=4
  local memory: param_t:W
  reads batch_len, batch_start, children, param:Emb, param_t:W, state:h, words:word
  writes state:h, sync
  phase leaf.0: stores state:h
  phase internal.0: stores state:h
  section leaf: phases 1
  section internal: phases 1
launches per run:
  forward: run
"""

# Hybrid (a GPU): a level kernel per phase for batches of at least a node per compute unit,
# then one persistent work-group for the rest of the run; a work-item computes one unit.
GPU = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=8)
EXPECTED_HYBRID = """\
kernel program Tiny
strategy hybrid, node tile 4, fused from the first batch under 8 nodes
device compute_units = 8
device max_work_group_size = 64
device local_mem_size = 32768
device is_gpu = 1
device preferred_vector_width = 4
decision: batches of 8 nodes or more get one launch per phase across all compute units; from \
the first narrower batch on, one persistent work-group runs the rest of the run in one launch
decision: weights in local memory for the fused batches: param_t:W
""" + TINY_BUFFERS + """\
kernel leaf_phase0 over leaf: 4 work-items x node tiles of 4, work-group 4
  vector widths: leaf.0.0=1
  reads batch_len, batch_start, param:Emb, words:word
  writes state:h
  phase leaf.0: stores state:h
kernel internal_phase0 over internal: 4 work-items x node tiles of 4, work-group 4
  vector widths: internal.0.0=1
  reads batch_len, batch_start, children, param_t:W, state:h
  writes state:h
  phase internal.0: stores state:h
kernel forward over run: 4 work-items x node tiles of 4, work-group 64
  vector widths: leaf.0.0=1, internal.0.0=1
  local memory: param_t:W
  reads batch_len, batch_start, children, param:Emb, param_t:W, state:h, words:word
  writes state:h
  phase leaf.0: stores state:h
  phase internal.0: stores state:h
  section leaf: phases 1
  section internal: phases 1
launches per run:
  leaf_phase0: leaf
  internal_phase0: internal
  forward: run
"""


def _loops(options: Options = OPTIONS) -> L.LoopProgram:
    return stage_before(program_from_source(TINY, "tiny.cx"), "plan_kernels", options)


def plan(limits: DeviceLimits | None = None, options: Options = OPTIONS, *,
         fuse_levels: bool = True, persist_weights: bool = True,
         node_tile: int = 4) -> KernelProgram:
    program = plan_kernels(_loops(options), limits or DeviceLimits(), fuse_levels=fuse_levels,
                           persist_weights=persist_weights, node_tile=node_tile)
    verify_kernels(program)
    return program


def test_level_fusion_on_a_cpu_plans_the_cooperative_strategy() -> None:
    assert format_kernels(plan()) == EXPECTED_COOPERATIVE


def test_level_fusion_on_a_gpu_plans_the_hybrid_strategy() -> None:
    assert format_kernels(plan(GPU)) == EXPECTED_HYBRID


@pytest.mark.parametrize("units", [1, 2, 3, 8, 1 << 20])
def test_the_cooperative_kernel_has_a_group_per_compute_unit(units: int) -> None:
    program = plan(DeviceLimits(compute_units=units))
    (forward,) = program.kernels
    assert forward.groups == min(units, MAX_GROUPS) and forward.local_size == 1
    (sync,) = [buffer for buffer in program.buffers if buffer.ref.role is Role.SYNC]
    assert sync.integer and sync.row_size % 16 == 0 and sync.row_size > forward.groups


def test_wide_transposed_weights_are_blocked_by_the_vector_width() -> None:
    wide = program_from_source(TINY.replace("H = 4", "H = 64"), "tiny.cx")
    program = plan_kernels(stage_before(wide, "plan_kernels", OPTIONS),
                           DeviceLimits(preferred_vector_width=16), fuse_levels=True,
                           persist_weights=False, node_tile=4)
    verify_kernels(program)
    transposed = BufferRef(Role.WEIGHT_T, "W")
    assert program.layouts == ((transposed, 16, 64),)
    assert program.layout(transposed) == (16, 64)
    assert program.layout(BufferRef(Role.WEIGHT, "W")) is None
    # A GPU reads one unit per work-item: neighbouring work-items coalesce the plain layout.
    gpu = plan_kernels(stage_before(wide, "plan_kernels", OPTIONS), GPU, fuse_levels=True,
                       persist_weights=False, node_tile=4)
    assert gpu.layouts == ()


def test_without_level_fusion_every_batch_and_phase_is_a_launch() -> None:
    program = plan(fuse_levels=False, node_tile=2)
    assert program.strategy == "level"
    assert [kernel.name for kernel in program.kernels] == ["leaf_phase0", "internal_phase0"]
    assert program.launches == (("leaf_phase0", "leaf"), ("internal_phase0", "internal"))
    assert program.node_tile == 2
    assert "weight persistence not applied: every per-level launch would reload local " \
        "memory; the node tile blocks weights for the cache" in program.decisions
    assert all(not kernel.cached_params for kernel in program.kernels)


def test_weights_that_do_not_fit_stay_in_global_memory() -> None:
    program = plan(DeviceLimits(local_mem_size=64))
    assert program.kernel("forward").cached_params == ()
    assert "param_t:W stays in global memory: 64 bytes do not fit in the local memory left" \
        in program.decisions


def test_without_persistence_nothing_is_cached() -> None:
    assert plan(persist_weights=False).kernel("forward").cached_params == ()


def test_unspecialised_leaves_force_a_node_tile_of_one() -> None:
    program = plan(options=OPTIONS.without("specialize_leaves"))
    assert program.node_tile == 1
    assert all(kernel.node_tile == 1 for kernel in program.kernels)
    assert "node tile 1: leaves are not specialised, so each node branches" in \
        program.decisions
    assert [kernel.over for kernel in program.kernels] == ["run"]
    gpu = plan(GPU, options=OPTIONS.without("specialize_leaves"))
    assert [kernel.over for kernel in gpu.kernels] == ["all", "run"]


def test_a_gpu_gets_wide_work_groups_and_no_unit_vectors() -> None:
    program = plan(GPU)
    assert program.fuse_below >= GPU.compute_units
    assert program.kernel("forward").local_size == 64
    for kernel in program.kernels:
        assert {width for _, width in kernel.widths} == {1}
        assert kernel.local_size is not None and kernel.local_size <= 64


@pytest.mark.parametrize("node_tile", [1, 2, 4, 8])
def test_the_node_tile_is_the_option_when_leaves_are_specialised(node_tile: int) -> None:
    for limits in (DeviceLimits(), GPU):
        program = plan(limits, node_tile=node_tile)
        assert program.node_tile == node_tile
        assert all(kernel.node_tile == node_tile for kernel in program.kernels)


def test_a_gpu_threshold_grows_with_the_device() -> None:
    small = plan(DeviceLimits(is_gpu=True, compute_units=2)).fuse_below
    assert plan(DeviceLimits(is_gpu=True, compute_units=8)).fuse_below > small >= 2


def test_the_work_group_never_exceeds_the_device() -> None:
    for size in (1, 3, 64, 1024):
        limits = DeviceLimits(is_gpu=True, max_work_group_size=size)
        for kernel in plan(limits).kernels:
            assert kernel.local_size is not None and 1 <= kernel.local_size <= size


def _section_phases(loops: L.LoopProgram) -> list[tuple[bool, int]]:
    """(is a batch section, number of phases) for each top-level loop of the loop IR."""
    found = []
    for loop in loops.body:
        assert isinstance(loop, L.Loop)
        body = loop.body
        if loop.kind == "batches":
            assert isinstance(body[0], L.Loop)
            body = body[0].body
        found.append((loop.kind == "batches", sum(isinstance(s, L.Phase) for s in body)))
    return found


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("fuse_levels", [True, False], ids=["hybrid", "level"])
def test_every_phase_of_every_example_gets_a_kernel(name: str, fuse_levels: bool) -> None:
    loops = stage_before(small_example(name), "plan_kernels")
    program = plan_kernels(loops, GPU, fuse_levels=fuse_levels,
                           persist_weights=True, node_tile=4)
    verify_kernels(program)
    sections = _section_phases(loops)
    level = [kernel for kernel in program.kernels if kernel.over != "run"]
    assert all(len(kernel.phases) == 1 for kernel in level)
    if fuse_levels:
        # Wide batches get level kernels; heads and narrow batches run in `forward`.
        assert len(level) == sum(count for batched, count in sections if batched)
        (forward,) = [kernel for kernel in program.kernels if kernel.over == "run"]
        assert len(forward.phases) == sum(count for _, count in sections)
    else:
        assert len(level) == len(program.kernels) == sum(count for _, count in sections)
    assert [kernel for kernel, _ in program.launches] == [k.name for k in program.kernels]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_phase_of_every_example_is_in_the_cooperative_kernel(name: str) -> None:
    loops = stage_before(small_example(name), "plan_kernels")
    program = plan_kernels(loops, DeviceLimits(), fuse_levels=True, persist_weights=True,
                           node_tile=4)
    verify_kernels(program)
    (forward,) = program.kernels
    assert program.launches == (("forward", "run"),)
    assert len(forward.phases) == sum(count for _, count in _section_phases(loops))


def test_the_verifier_rejects_a_launch_of_an_unknown_kernel() -> None:
    program = plan()
    broken = KernelProgram(program.name, program.strategy, program.buffers, program.kernels,
                           program.launches + (("missing", "run"),), program.node_tile)
    with pytest.raises(InternalError) as caught:
        verify_kernels(broken)
    assert caught.value.step == "verify_kernels"


def test_a_flattened_matrix_product_gets_a_row_tile() -> None:
    """MV-RNN's `W_M @ concat(A_l, A_r)`: units j = row * H + column. A work-item computes 4
    rows of its 16 columns, so each vector of a child's matrix it loads serves 4 rows; the
    vector products of the same model (no per-row value) get none."""
    program = plan_kernels(stage_before(small_example("mvrnn", H=64), "plan_kernels"),
                           DeviceLimits(preferred_vector_width=16), fuse_levels=True,
                           persist_weights=True, node_tile=4)
    verify_kernels(program)
    (forward,) = program.kernels
    assert forward.row_tiles == (("internal.0.0", 4, 64),)
    assert dict(forward.widths)["internal.0.0"] == 16
    assert "row tiles: internal.0.0=4 rows of 64" in format_kernels(program)
    source = run_pipeline(small_example("mvrnn", H=64), Options(),
                          DeviceLimits(preferred_vector_width=16)).source
    assert "const int j = (unit / 4) * 256 + (unit % 4) * 16;" in source

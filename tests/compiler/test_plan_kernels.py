"""plan_kernels: kernels, strategy, work-group geometry and launch order, decided from the
loop IR and the device's limits (the default `DeviceLimits()` here, never the local device);
and the kernel stage after the steps that follow it (each tested in its own file)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from compiler_support import EXAMPLE_NAMES, program_from_source, small_example, stage_before

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import Role
from cortexlang.ir.kernels import KernelProgram, format_kernels, verify_kernels
from cortexlang.passes.pipeline import PIPELINE, Options, Verify, run_pipeline
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
# unit; the groups share each batch's tasks through the sync counters. As planned, before the
# steps after plan_kernels, a work-item computes one unit of one node.
PLANNED_COOPERATIVE = """\
kernel program Tiny
strategy cooperative, node tile 1
device compute_units = 2
device max_work_group_size = 256
device local_mem_size = 32768
device is_gpu = 0
device preferred_vector_width = 4
decision: one launch per run: 2 work-groups (one per compute unit) share each batch's tasks, \
a block of units for a node tile; each claims its own units first, so their weight rows stay \
in its core's cache, then any task left; a counter of finished tasks is the barrier between \
batches
""" + TINY_BUFFERS + """\
buffer sync: int[steps][48]
kernel forward over run: 4 work-items x node tiles of 1, work-group 1, 2 work-groups cooperating
  reads batch_len, batch_start, children, param:Emb, param_t:W, state:h, words:word
  writes state:h, sync
  phase leaf.0: stores state:h
  phase internal.0: stores state:h
  section leaf: phases 1
  section internal: phases 1
launches per run:
  forward: run
"""

# The kernel stage after all its steps: 4 nodes per work-item (a partial tile as sub-tiles
# of 2 and 1), the 4 units as one vector, the product's weight (read transposed) in local
# memory, and the dot product of the sub-tiles split into partial sums (2 and 4 chains).
EXPECTED_COOPERATIVE = PLANNED_COOPERATIVE.replace("node tile 1", "node tile 4").replace(
    "batches\n", "batches\ndecision: weights in local memory for the fused batches: "
    "param_t:W\n").replace("""\
kernel forward over run: 4 work-items x node tiles of 1, work-group 1, 2 work-groups cooperating
""", """\
kernel forward over run: 1 work-items x node tiles of 4, work-group 1, 2 work-groups cooperating
  a partial node tile runs as sub-tiles of 2, 1
  vector widths: leaf.0.0=4, internal.0.0=4
  dot products split into partial sums: internal.0.0 [0:4] x2 for 2 nodes, \
internal.0.0 [0:4] x4 for 1 node
  local memory: param_t:W
""")

# Hybrid (a GPU): a level kernel per phase for batches of at least a node per compute unit,
# then one persistent work-group for the rest of the run; a work-item computes one unit.
GPU = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=8)
PLANNED_HYBRID = """\
kernel program Tiny
strategy hybrid, node tile 1, fused from the first batch under 8 nodes
device compute_units = 8
device max_work_group_size = 64
device local_mem_size = 32768
device is_gpu = 1
device preferred_vector_width = 4
decision: batches of 8 nodes or more get one launch per phase across all compute units; from \
the first narrower batch on, one persistent work-group runs the rest of the run in one launch
""" + TINY_BUFFERS + """\
kernel leaf_phase0 over leaf: 4 work-items x node tiles of 1, work-group 4
  reads batch_len, batch_start, param:Emb, words:word
  writes state:h
  phase leaf.0: stores state:h
kernel internal_phase0 over internal: 4 work-items x node tiles of 1, work-group 4
  reads batch_len, batch_start, children, param_t:W, state:h
  writes state:h
  phase internal.0: stores state:h
kernel forward over run: 4 work-items x node tiles of 1, work-group 64
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

# After its steps: 4 nodes per work-item, clamped at the end of a batch (no sub-tiles: a
# work-group of many items runs each tile), no unit vectors (work-items coalesce), the
# weight in local memory of the persistent kernel.
EXPECTED_HYBRID = PLANNED_HYBRID.replace("tiles of 1", "tiles of 4").replace(
    "node tile 1", "node tile 4").replace(
    "launch\n", "launch\ndecision: weights in local memory for the fused batches: "
    "param_t:W\n", 1).replace("""\
kernel forward over run: 4 work-items x node tiles of 4, work-group 64
""", """\
kernel forward over run: 4 work-items x node tiles of 4, work-group 64
  local memory: param_t:W
""")


def _loops(options: Options = OPTIONS) -> L.LoopProgram:
    return stage_before(program_from_source(TINY, "tiny.cx"), "plan_kernels", options)


def plan(limits: DeviceLimits | None = None, options: Options = OPTIONS, *,
         fuse_levels: bool = True) -> KernelProgram:
    program = plan_kernels(_loops(options), limits or DeviceLimits(), fuse_levels=fuse_levels)
    verify_kernels(program)
    return program


def kernel_stage(limits: DeviceLimits, options: Options = OPTIONS) -> KernelProgram:
    """The kernel IR after every kernel step (what emit_opencl prints)."""
    last = [step.name for step in PIPELINE if step.stage == "kernels"][-1]
    return run_pipeline(program_from_source(TINY, "tiny.cx"), options, limits,
                        instruments=[Verify()], stop_after=last)


def test_level_fusion_on_a_cpu_plans_the_cooperative_strategy() -> None:
    assert format_kernels(plan()) == PLANNED_COOPERATIVE


def test_level_fusion_on_a_gpu_plans_the_hybrid_strategy() -> None:
    assert format_kernels(plan(GPU)) == PLANNED_HYBRID


def test_the_steps_after_plan_kernels_add_their_decisions() -> None:
    assert format_kernels(kernel_stage(DeviceLimits())) == EXPECTED_COOPERATIVE
    assert format_kernels(kernel_stage(GPU)) == EXPECTED_HYBRID


@pytest.mark.parametrize("units", [1, 2, 3, 8, 1 << 20])
def test_the_cooperative_kernel_has_a_group_per_compute_unit(units: int) -> None:
    program = plan(DeviceLimits(compute_units=units))
    (forward,) = program.kernels
    assert forward.groups == min(units, MAX_GROUPS) and forward.local_size == 1
    (sync,) = [buffer for buffer in program.buffers if buffer.ref.role is Role.SYNC]
    assert sync.integer and sync.row_size % 16 == 0 and sync.row_size > forward.groups


def test_without_level_fusion_every_batch_and_phase_is_a_launch() -> None:
    program = plan(fuse_levels=False)
    assert program.strategy == "level"
    assert [kernel.name for kernel in program.kernels] == ["leaf_phase0", "internal_phase0"]
    assert program.launches == (("leaf_phase0", BatchRange.LEAF),
                                ("internal_phase0", BatchRange.INTERNAL))
    assert all(kernel.tiles_in_kernel and kernel.local_size == 1 for kernel in program.kernels)


def test_plan_kernels_leaves_every_later_decision_to_its_step() -> None:
    for limits in (DeviceLimits(), GPU):
        for fuse_levels in (True, False):
            program = plan(limits, fuse_levels=fuse_levels)
            assert program.node_tile == 1 and program.layouts == ()
            for kernel in program.kernels:
                assert (kernel.node_tile, kernel.partial_tiles, kernel.widths,
                        kernel.row_tiles, kernel.cached_params, kernel.k_unrolled,
                        kernel.dot_chains) == (1, (), (), (), (), (), ())


def test_unspecialised_leaves_run_every_batch_in_one_section() -> None:
    assert [kernel.over for kernel in plan(options=OPTIONS.without("specialize_leaves"))
            .kernels] == [BatchRange.RUN]
    gpu = plan(GPU, options=OPTIONS.without("specialize_leaves"))
    assert [kernel.over for kernel in gpu.kernels] == [BatchRange.ALL, BatchRange.RUN]
    assert [kernel.name for kernel in gpu.kernels] == ["node_all_phase0", "forward"]


def test_a_gpu_gets_wide_work_groups() -> None:
    program = plan(GPU)
    assert program.fuse_below >= GPU.compute_units
    assert program.kernel("forward").local_size == 64
    for kernel in program.kernels:
        assert kernel.local_size is not None and kernel.local_size <= 64


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
        batched = loop.kind is L.LoopKind.BATCHES
        if batched:
            assert isinstance(body[0], L.Loop)
            body = body[0].body
        found.append((batched, sum(isinstance(s, L.Phase) for s in body)))
    return found


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("fuse_levels", [True, False], ids=["hybrid", "level"])
def test_every_phase_of_every_example_gets_a_kernel(name: str, fuse_levels: bool) -> None:
    loops = stage_before(small_example(name), "plan_kernels")
    program = plan_kernels(loops, GPU, fuse_levels=fuse_levels)
    verify_kernels(program)
    sections = _section_phases(loops)
    level = [kernel for kernel in program.kernels if kernel.over is not BatchRange.RUN]
    assert all(len(kernel.phases) == 1 for kernel in level)
    if fuse_levels:
        # Wide batches get level kernels; heads and narrow batches run in `forward`.
        assert len(level) == sum(count for batched, count in sections if batched)
        (forward,) = [kernel for kernel in program.kernels if kernel.over is BatchRange.RUN]
        assert len(forward.phases) == sum(count for _, count in sections)
    else:
        assert len(level) == len(program.kernels) == sum(count for _, count in sections)
    assert [kernel for kernel, _ in program.launches] == [k.name for k in program.kernels]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_phase_of_every_example_is_in_the_cooperative_kernel(name: str) -> None:
    loops = stage_before(small_example(name), "plan_kernels")
    program = plan_kernels(loops, DeviceLimits(), fuse_levels=True)
    verify_kernels(program)
    (forward,) = program.kernels
    assert program.launches == (("forward", BatchRange.RUN),)
    assert len(forward.phases) == sum(count for _, count in _section_phases(loops))


def test_the_verifier_rejects_a_launch_of_an_unknown_kernel() -> None:
    program = plan()
    broken = replace(program, launches=program.launches + (("missing", BatchRange.RUN),))
    with pytest.raises(InternalError) as caught:
        verify_kernels(broken)
    assert caught.value.step == "verify_kernels"


def test_the_verifier_rejects_work_items_its_loops_do_not_need() -> None:
    program = plan()
    (forward,) = program.kernels
    broken = replace(program, kernels=(replace(forward, units=forward.units + 1),))
    with pytest.raises(InternalError, match="work-items per node tile"):
        verify_kernels(broken)

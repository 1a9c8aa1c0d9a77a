"""tile_nodes: how many nodes a work-item computes, and the sub-tiles of a partial tile."""

from __future__ import annotations

from compiler_support import small_example
from kernel_support import GPU, given

from cortexlang.ir.kernels import format_kernels, verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.tile_nodes import halving_tiles, tile_nodes


def test_on_a_cpu_a_partial_tile_runs_as_halving_sub_tiles() -> None:
    before = given(small_example("treelstm"), "tile_nodes", DeviceLimits())
    result = tile_nodes(before, 4)
    verify_kernels(result.ir)
    (forward,) = result.ir.kernels
    assert result.ir.node_tile == forward.node_tile == 4
    assert forward.partial_tiles == (2, 1)
    assert result.note == "4 nodes per work-item; a partial tile runs as sub-tiles of 2 + 1"
    assert "a partial node tile runs as sub-tiles of 2, 1" in format_kernels(result.ir)
    source = run_pipeline(small_example("treelstm"), Options(), DeviceLimits()).source
    assert "if (n + 2 <= count)" in source and "if (n + 1 <= count)" in source


def test_on_a_gpu_a_partial_tile_repeats_the_last_node() -> None:
    before = given(small_example("treelstm"), "tile_nodes", GPU)
    result = tile_nodes(before, 4)
    verify_kernels(result.ir)
    assert all(kernel.node_tile == 4 and kernel.partial_tiles == ()
               for kernel in result.ir.kernels if kernel.local_size != 1)
    assert "min(tile * 4 + 1, count - 1)" in run_pipeline(small_example("treelstm"),
                                                           Options(), GPU).source


def test_a_tile_of_one_leaves_the_program_as_it_is() -> None:
    for limits in (DeviceLimits(), GPU):
        before = given(small_example("treelstm"), "tile_nodes", limits)
        result = tile_nodes(before, 1)
        assert result.ir is before
        assert result.note == "the node tile is 1: one node per work-item"


def test_unspecialised_leaves_keep_a_tile_of_one() -> None:
    options = Options().without("specialize_leaves")
    before = given(small_example("treefc"), "tile_nodes", DeviceLimits(), options)
    result = tile_nodes(before, 4)
    assert result.ir is before
    assert result.note == "node tile 1: leaves are not specialised, so each node branches"


def test_the_sub_tiles_cover_every_remainder() -> None:
    for tile in range(2, 33):
        sizes = halving_tiles(tile)
        assert sizes[-1] == 1 and sizes[0] < tile <= 2 * sizes[0]
        assert sum(sizes) >= tile - 1


def test_a_per_group_kernel_keeps_one_work_item_per_group() -> None:
    """With the recursion unrolled, a level kernel of grouped batches runs each group's
    members one after another on one work-item: no node tile, and after every kernel step
    still one work-item."""
    options = Options().with_enabled("unroll_recursion").without("fuse_levels")
    result = run_pipeline(small_example("treefc"), options, DeviceLimits())
    (grouped,) = [kernel for kernel in result.kernels.kernels if kernel.per_group]
    assert grouped.node_tile == 1 and grouped.partial_tiles == () and grouped.units == 1
    assert result.kernels.node_tile == 4
    # Its products are split for the one member computed at a time.
    assert {chains.nodes for chains in grouped.dot_chains} == {1}

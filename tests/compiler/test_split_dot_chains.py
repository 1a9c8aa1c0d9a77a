"""split_dot_chains: partial sums along k where a dot-product loop has few accumulators."""

from __future__ import annotations

from compiler_support import small_example
from kernel_support import GPU, given

from cortexlang.ir.kernels import DotChains, format_kernels, verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.split_dot_chains import MIN_CHAINS, split_dot_chains


def test_sub_tiles_of_few_nodes_split_their_accumulators() -> None:
    """TreeFC's internal product on a CPU: one accumulator per node, a tile of 4 nodes has 4
    chains, its sub-tiles of 2 and 1 node are split into 2 and 4 partial sums."""
    before = given(small_example("treefc"), "split_dot_chains", DeviceLimits())
    result = split_dot_chains(before)
    verify_kernels(result.ir)
    (forward,) = result.ir.kernels
    assert forward.dot_chains == (DotChains("internal.1.0", ((0, 8),), 2, 2),
                                  DotChains("internal.1.0", ((0, 8),), 1, 4))
    assert "internal.1.0 [0:8] x2 for 2 nodes" in format_kernels(result.ir)
    source = run_pipeline(small_example("treefc"), Options(), DeviceLimits()).source
    assert "_p3 = (float4)(0.0f)" in source


def test_a_gpu_tile_has_chains_enough() -> None:
    before = given(small_example("treefc"), "split_dot_chains", GPU)
    result = split_dot_chains(before)
    assert result.ir is before
    assert result.note.startswith(f"every dot-product loop has {MIN_CHAINS} accumulators")


def test_without_node_tiles_a_gpu_splits_its_lone_products() -> None:
    before = given(small_example("treefc"), "split_dot_chains", GPU, Options(node_tile=1))
    result = split_dot_chains(before)
    verify_kernels(result.ir)
    assert {chains.split for kernel in result.ir.kernels for chains in kernel.dot_chains} \
        == {MIN_CHAINS}


def test_products_stepping_along_k_are_not_split() -> None:
    """MV-RNN's matrix product on a GPU steps along k by 4 (four chains per accumulator)."""
    before = given(small_example("mvrnn"), "split_dot_chains", GPU, Options(node_tile=1))
    result = split_dot_chains(before)
    unrolled = {entry for kernel in before.kernels for entry in kernel.k_unrolled}
    assert unrolled
    assert not {(chains.key, chains.shape) for kernel in result.ir.kernels
                for chains in kernel.dot_chains} & unrolled

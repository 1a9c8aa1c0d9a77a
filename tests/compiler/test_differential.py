"""Every compiled configuration agrees with the reference interpreter.

For every example model: the standard option sets (all on, all off, -O0..-O3 and a seeded
pairwise covering set: every two optimisations in all four on/off combinations; exhaustive:
each optimisation off alone, each one on alone and a fixed sample of other subsets), node
tiles 1, 2 and 8 (4 is the default everywhere else; by default each model runs one of them,
drawn with the run's seed so that every tile runs; exhaustive: all three), every
shape class of its structure kind with all optimisations and with none, SST test trees, batches
of 1, 10 and 1000 structures, a chain of 10,000 nodes, and the declared (full) sizes. The
exhaustive products of all the switches are in test_option_products.py. Tolerance and error
measure: compiler_support.py.

Building OpenCL on a CPU driver costs seconds per distinct kernel, so the `exhaustive` tier
(`pytest --all`, `make test-all`) holds the option sets that mostly build programs nobody else
runs; the default tier covers their interactions with a new covering set on every run (the
seed is in the header).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import replace

import pytest
from compiler_support import (
    DECLARED_SIZE_FLOOR,
    EXAMPLE_NAMES,
    SST_TEST,
    Options,
    compile_program,
    covering_options,
    declared_values,
    grid,
    mixed_batch,
    padded,
    random_batch,
    seeded,
    shape_classes,
    small_example,
    sst_test_trees,
    standard_option_sets,
    vocabulary,
)
from differential import Differential, Inputs, crossing_over, widest_batches

from cortexlang.inputs import generators
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import device_limits

pytestmark = pytest.mark.opencl

TREE_MODELS = tuple(name for name in EXAMPLE_NAMES
                    if small_example(name).structure.kind in ("binary_tree", "tree"))


@pytest.fixture(scope="module")
def differential(opencl_device: Device) -> Differential:
    return Differential(opencl_device, device_limits(opencl_device))


@functools.cache
def mixed_inputs(name: str) -> Inputs:
    return Inputs("mixed batch", mixed_batch(small_example(name)))


def sample_seed(name: str) -> int:
    """A stable seed per model for its sample of option subsets."""
    return zlib.crc32(name.encode())


STANDARD = {name: standard_option_sets(
    sample=3, seed=sample_seed(name),
    covering=covering_options(2, seeded("option sets", name))) for name in EXAMPLE_NAMES}
EXHAUSTIVE = pytest.mark.exhaustive


@pytest.mark.parametrize(("name", "label"), [
    pytest.param(name, label, marks=[EXHAUSTIVE] if exhaustive else [])
    for name in EXAMPLE_NAMES for label, (_, exhaustive) in STANDARD[name].items()])
def test_option_set_agrees_with_the_interpreter(differential: Differential, name: str,
                                                label: str) -> None:
    options, _ = STANDARD[name][label]
    differential.check(name, small_example(name), options, mixed_inputs(name), label=label)


NODE_TILES = (1, 2, 8)


def _default_tiles() -> dict[str, int]:
    """One tile per model, drawn with the run's seed, every tile used by some model."""
    chooser = seeded("node tiles")
    tiles = list(NODE_TILES) * (len(EXAMPLE_NAMES) // len(NODE_TILES) + 1)
    chooser.shuffle(tiles)
    return dict(zip(EXAMPLE_NAMES, tiles, strict=False))


DEFAULT_TILES = _default_tiles()


@pytest.mark.parametrize(("name", "node_tile"), [
    pytest.param(name, tile, marks=[] if DEFAULT_TILES[name] == tile else [EXHAUSTIVE])
    for name in EXAMPLE_NAMES for tile in NODE_TILES])
def test_node_tile_agrees_with_the_interpreter(differential: Differential, name: str,
                                               node_tile: int) -> None:
    """Tile 4 is the default, run by every other test."""
    options = Options(node_tile=node_tile)
    differential.check(name, small_example(name), options, mixed_inputs(name))


def _shape_cases() -> list[tuple[str, str]]:
    return [(name, shape) for name in EXAMPLE_NAMES
            for shape in shape_classes(small_example(name))]


@pytest.mark.parametrize("options", [Options(), Options.level(0)], ids=["all-on", "O0"])
@pytest.mark.parametrize(("name", "shape"), _shape_cases())
def test_shape_class_agrees_with_the_interpreter(differential: Differential, name: str,
                                                 shape: str, options: Options) -> None:
    program = small_example(name)
    structures = shape_classes(program)[shape]
    differential.check(name, program, options, Inputs(shape, structures))


@pytest.mark.skipif(not SST_TEST.exists(), reason=f"no SST test split at {SST_TEST}")
@pytest.mark.parametrize("options", [Options(), Options().without("fuse_levels")],
                         ids=["all-on", "level-strategy"])
@pytest.mark.parametrize("name", TREE_MODELS)
def test_sst_trees_agree_with_the_interpreter(differential: Differential, name: str,
                                              options: Options) -> None:
    """The first 200 trees of the SST test split, read by the project's PTB reader."""
    program = small_example(name)
    trees = [padded(tree, program.structure.max_children)
             for tree in sst_test_trees(vocabulary(program), 200)]
    differential.check(name, program, options, Inputs("SST test[:200]", trees))


@pytest.mark.parametrize("count", [1, 10, 1000])
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_batch_size_agrees_with_the_interpreter(differential: Differential, name: str,
                                                count: int) -> None:
    program = small_example(name)
    structures = random_batch(program, count, seed=count)
    differential.check(name, program, Options(), Inputs(f"{count} random", structures))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_a_chain_of_ten_thousand_nodes(differential: Differential, name: str) -> None:
    """10,000 levels of one node each: the deepest input of its size."""
    program = small_example(name)
    kind = program.structure.kind
    length = 10_000
    if kind == "dag":
        chain = grid(1, length, program.inputs[0].shape[0], seed=3)
    elif kind == "sequence":
        chain = generators.sequence(length, rng=3, vocab_size=vocabulary(program))
    else:
        chain = padded(generators.chain(length, rng=3, vocab_size=vocabulary(program)),
                       program.structure.max_children)
    differential.check(name, program, Options(), Inputs("chain of 10,000", [chain]))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_declared_sizes_agree_with_the_interpreter(differential: Differential,
                                                   name: str) -> None:
    """The model as written (H = 256 ...): wide vectors, weights too large to persist, with
    the project's own weights (see WEIGHT_SCALE) and the declared-size floor."""
    program = small_example(name, **declared_values(name))
    differential.check(name, program, Options(), Inputs("declared sizes", mixed_batch(
        program)[:6]), scale=1.0, floor=DECLARED_SIZE_FLOOR)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_both_halves_of_a_hybrid_plan_agree_with_the_interpreter(differential: Differential,
                                                                 name: str) -> None:
    """A hybrid plan (a GPU's: work-groups of many work-items, one unit each) launches wide
    batches level by level and runs the narrow rest in one persistent kernel that starts
    part way through the run (see `crossing_over`). It runs on this device all the same."""
    from cortexlang.runtime.plan import first_fused_batch

    program = small_example(name)
    gpu = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=4,
                       local_mem_size=differential.limits.local_mem_size)
    result = crossing_over(compile_program(program, Options(), gpu))
    assert result.kernels.strategy == "hybrid"
    structures = mixed_inputs(name).structures
    lengths = widest_batches(structures, program.structure.max_children)
    first_fused = first_fused_batch(result.executable, lengths)
    assert 0 < first_fused < len(lengths), (result.kernels.fuse_below, lengths.tolist())
    differential.check(name, program, Options(), mixed_inputs(name), result=result,
                       label="hybrid crossing over")


@pytest.mark.parametrize("groups", [1, 3, 8])
@pytest.mark.parametrize("name", ["treelstm", "dagrnn", "sentiment"])
def test_cooperative_plans_for_any_number_of_groups_agree(differential: Differential,
                                                          name: str, groups: int) -> None:
    """The cooperative kernel planned for more (or fewer) compute units than the device has:
    groups the driver runs one after another, or interleaved, still finish every task."""
    program = small_example(name)
    limits = replace(differential.limits, compute_units=groups, is_gpu=False)
    result = compile_program(program, Options(), limits)
    assert result.kernels.strategy == "cooperative"
    assert result.kernels.kernel("forward").groups == groups
    for batch in (mixed_inputs(name), Inputs(f"{name} x10 random", random_batch(program, 10,
                                                                                 seed=5))):
        differential.check(name, program, Options(), batch, result=result,
                           label=f"cooperative, {groups} compute units")


@pytest.mark.parametrize("name", ["sentiment", "dagrnn"])
def test_one_model_runs_many_batches_and_weights(differential: Differential,
                                                 name: str) -> None:
    """Buffers are reused from run to run and grown for larger inputs; weights can be bound
    again. A large batch, a small one, the large one again, then new weights."""
    from compiler_support import assert_close, weights_for

    from cortexlang.interp.interpreter import interpret
    from cortexlang.runtime.execute import CompiledModel

    program = small_example(name)
    model = CompiledModel(differential.compile(program, Options()), differential.device)
    large, small = mixed_batch(program), random_batch(program, 1, seed=4)
    for seed, structures in ((1, large), (1, small), (1, large), (9, large)):
        weights = weights_for(program, seed)
        model.bind_weights(weights)
        assert_close(name, "reused model", model.run(structures),
                     interpret(program, structures, weights))

"""The product of the optimisation switches, for TreeLSTM and child-sum TreeLSTM.

Subsets are compiled (each verified after every step); subsets that give byte-identical OpenCL
share one build and one run per `dynamic_batching` value, the only switch that acts at run
time (in the linearizer). The products use the default node tile, so the programs they build
are the ones the option-set tests of test_differential.py build for these two models (the
runtime's build cache shares them). Building OpenCL dominates the time: TreeLSTM's full
product holds about 30 distinct programs, child-sum TreeLSTM's about 90 larger ones (over 8
minutes cold on two cores).

Two tiers. `pytest --all` (`make test-all`) compiles all 2^n subsets and runs every distinct
program. The default tier compiles a seeded 3-wise covering set of subsets (every three
compile-time switches in all eight on/off combinations) and a seeded sample, and runs the
distinct programs among them that together hold every pair of switches in all four
combinations (2-wise coverage); the sets change with the run's seed (in the header).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from compiler_support import (
    SWEEP_STATS,
    SWEPT,
    compile_program,
    covering_options,
    every_subset,
    full_sweeps,
    option_label,
    options_summary,
    sampled_subsets,
    seeded,
    small_batch,
    small_example,
)
from differential import Differential, Inputs, crossing_over, group_by_source, widest_batches

from cortexlang.ir.checked import CheckedProgram
from cortexlang.passes.pipeline import CompileResult, Options
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import device_limits

PRODUCT_TILE = Options().node_tile
_COMPILED: dict[tuple[str, DeviceLimits], list[tuple[Options, CompileResult]]] = {}


@pytest.fixture(scope="module")
def product_limits() -> DeviceLimits:
    """The local device's limits when one works (so that the runs reuse these compilations),
    else the defaults: compiling needs no device."""
    from cortexlang.errors import EnvironmentProblem
    from cortexlang.runtime.devices import select_device

    try:
        return device_limits(select_device())
    except EnvironmentProblem:
        return DeviceLimits()


COMPILE_TIME = tuple(name for name in SWEPT if name != "dynamic_batching")
# The default tier: a 3-wise covering set of subsets, topped up to this many with a sample.
SAMPLED_SUBSETS = 64
# ... and its runs: the distinct programs that hold every pair of switches in all combinations.
RUN_STRENGTH = 2


def product_subsets() -> list[Options]:
    """The subsets this tier compiles, with dynamic batching on: all of them with --all,
    else a seeded 3-wise covering set and sample."""
    if full_sweeps():
        return [options for options in every_subset(PRODUCT_TILE) if options.dynamic_batching]
    chosen = covering_options(3, seeded("option products"), COMPILE_TIME)
    for options in sampled_subsets(4 * SAMPLED_SUBSETS, seeded("option products", "sample")
                                   .randrange(1 << 30)):
        if len(chosen) >= SAMPLED_SUBSETS:
            break
        options = replace(options, dynamic_batching=True)
        if options not in chosen:
            chosen.append(options)
    return [replace(options, node_tile=PRODUCT_TILE) for options in chosen]


def compiled_product(name: str, limits: DeviceLimits) -> list[tuple[Options, CompileResult]]:
    """This tier's subsets, compiled once per session. Dynamic batching does not change the
    compilation (checked below), so the subsets with it off reuse these results with the
    option flipped."""
    key = (name, limits)
    if key not in _COMPILED:
        program = small_example(name)
        _COMPILED[key] = [(options, compile_program(program, options, limits))
                          for options in product_subsets()]
    return _COMPILED[key]


PRODUCT_MODELS = ["treelstm", "childsum_treelstm"]


def _tuples(options: Options, names: Sequence[str],
            strength: int) -> set[tuple[tuple[str, bool], ...]]:
    return {tuple((name, getattr(options, name)) for name in chosen)
            for chosen in itertools.combinations(names, strength)}


def covering_selection(groups: Sequence[Sequence[Options]], strength: int,
                       chooser: random.Random | None = None) -> list[int]:
    """Indices of groups (each a set of option sets compiling to one program) that together
    hold every `strength` compile-time switches in all the on/off combinations the groups
    hold: all on and all off first, then greedily the group covering most combinations not
    covered yet (ties broken by `chooser`, else by order)."""
    names = list(COMPILE_TIME)
    covers = [set().union(*(_tuples(options, names, strength) for options in group))
              for group in groups]
    order = list(range(len(groups)))
    if chooser is not None:
        chooser.shuffle(order)
    extremes = [index for index, group in enumerate(groups)
                if any(set(options.enabled()) >= set(names) or not set(options.enabled()) &
                       set(names) for options in group)]
    chosen = list(dict.fromkeys(extremes))
    covered = set().union(*(covers[index] for index in chosen)) if chosen else set()
    everything = set().union(*covers)
    while covered != everything:
        best = max(order, key=lambda index: len(covers[index] - covered))
        chosen.append(best)
        covered |= covers[best]
    return chosen


@pytest.mark.parametrize("name", ["treelstm", "childsum_treelstm"])
def test_every_subset_compiles_and_verifies(name: str, product_limits: DeviceLimits) -> None:
    started = time.perf_counter()
    results = compiled_product(name, product_limits)
    if full_sweeps():
        assert len(results) == 2 ** len(COMPILE_TIME)
    else:
        assert len(results) == len(set(product_subsets())) >= SAMPLED_SUBSETS
    sources = {result.source for _, result in results}
    SWEEP_STATS.append((f"{name}: compile and verify {2 * len(results)} subsets",
                        f"{len(sources)} distinct OpenCL sources",
                        time.perf_counter() - started))


@pytest.mark.parametrize("name", ["treelstm", "childsum_treelstm"])
def test_dynamic_batching_does_not_change_the_compilation(name: str) -> None:
    program = small_example(name)
    for options in (Options(node_tile=PRODUCT_TILE), Options.level(1), Options.level(2)):
        flipped = replace(options, dynamic_batching=not options.dynamic_batching)
        assert compile_program(program, options).source == \
            compile_program(program, flipped).source, option_label(options)


@pytest.mark.opencl
@pytest.mark.parametrize("name", PRODUCT_MODELS)
def test_every_subset_agrees_with_the_interpreter(opencl_device: Device,
                                                  product_limits: DeviceLimits,
                                                  name: str) -> None:
    if product_limits != device_limits(opencl_device):
        pytest.skip("the product was compiled for other limits")
    started = time.perf_counter()
    program = small_example(name)
    differential = Differential(opencl_device, product_limits)
    inputs = Inputs("small batch", small_batch(program))
    results = compiled_product(name, product_limits)
    by_source: dict[str, list[tuple[Options, CompileResult]]] = {}
    for options, result in results:
        by_source.setdefault(result.source, []).append((options, result))
    selected = list(by_source.values())
    scope = "all"
    if not full_sweeps():
        picks = covering_selection([[options for options, _ in group] for group in selected],
                                   RUN_STRENGTH, seeded("option products", name))
        selected = [selected[index] for index in picks]
        scope = f"a {RUN_STRENGTH}-wise covering {len(selected)} of {len(by_source)}"
    groups = group_by_source(
        [(replace(options, dynamic_batching=batching), replace(
            result, options=replace(result.options, dynamic_batching=batching)))
         for group in selected for options, result in group for batching in (True, False)])
    failures: list[str] = []
    worst = 0.0
    for (_, batching), group in groups.items():
        options, result = group[0]
        # Hybrid plans run twice: with the planner's threshold, and crossing over part way.
        for variant in dict.fromkeys((result, crossing_over(result))):
            try:
                worst = max(worst, differential.check(name, program, options, inputs,
                                                      result=variant))
            except AssertionError as error:
                failures.append(f"{options_summary([o for o, _ in group])} (dynamic "
                                f"batching {'on' if batching else 'off'}, fusion threshold "
                                f"{variant.kernels.fuse_below}): {error}")
    assert _fused_plan_is_exercised(program, results, inputs)
    SWEEP_STATS.append((f"{name}: run {scope} distinct programs of the {2 * len(results)} "
                        "subsets on the device", f"{len({source for source, _ in groups})} "
                        f"builds, {differential.runs} runs, largest error {worst:.1e}",
                        time.perf_counter() - started))
    assert not failures, f"{len(failures)} of {len(groups)} distinct programs disagree:\n" + \
        "\n".join(failures[:5])


def _fused_plan_is_exercised(program: CheckedProgram,
                             results: list[tuple[Options, CompileResult]],
                             inputs: Inputs) -> bool:
    """Whether the all-on plan's fused kernel really ran its interesting case on these
    inputs: a CPU's cooperative kernel with more than one group and a batch of more tasks
    than groups; a GPU's hybrid plan, crossing over, level kernels before its persistent
    kernel."""
    from cortexlang.runtime.plan import first_fused_batch

    result = next(result for options, result in results if options == Options())
    lengths = widest_batches(inputs.structures, program.structure.max_children)
    if result.kernels.strategy == "cooperative":
        forward = result.kernels.kernel("forward")
        return forward.groups > 1 and int(lengths.max()) > forward.groups
    crossing = crossing_over(result)
    return 0 < first_fused_batch(crossing.executable, lengths) < len(lengths)


@pytest.mark.parametrize("strength", [2, 3])
def test_the_covering_selection_covers_every_combination(strength: int) -> None:
    """The selection logic itself, on the raw product (one option set per group)."""
    from math import comb

    names = list(COMPILE_TIME)
    groups = [[options] for options in every_subset() if options.dynamic_batching]
    chosen = covering_selection(groups, strength, seeded("selection", strength))
    covered = set().union(*(_tuples(groups[index][0], names, strength) for index in chosen))
    assert len(covered) == 2 ** strength * comb(len(names), strength)
    assert len(chosen) < len(groups) // 8


@pytest.mark.parametrize("strength", [2, 3])
def test_covering_options_cover_every_combination(strength: int) -> None:
    """The covering sets of the default tier hold every `strength` switches in all their
    on/off combinations, start with all on and all off, and change with the seed."""
    from math import comb

    names = list(COMPILE_TIME)
    first = covering_options(strength, random.Random(1), names)
    second = covering_options(strength, random.Random(2), names)
    for sets in (first, second):
        covered = set().union(*(_tuples(options, names, strength) for options in sets))
        assert len(covered) == 2 ** strength * comb(len(names), strength)
        assert sets[0] == Options() and not set(sets[1].enabled()) & set(names)
        assert all(options.dynamic_batching for options in sets)
    assert first != second

"""The exhaustive product of the optimisation switches, for TreeLSTM and child-sum TreeLSTM.

All 2^n subsets of `Options.names()` are compiled (each verified after every step); subsets
that give byte-identical OpenCL share one build and one run per `dynamic_batching` value, the
only switch that acts at run time (in the linearizer). The products use the default node tile,
so the programs they build are the ones the option-set tests of test_differential.py build
for these two models (the runtime's build cache shares them). Building OpenCL dominates the
time: TreeLSTM's product builds about 30 distinct programs (a minute), child-sum TreeLSTM's
about 60 larger ones (several minutes; marked slow, CI runs it).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from compiler_support import (
    SWEEP_STATS,
    compile_program,
    every_subset,
    option_label,
    options_summary,
    small_batch,
    small_example,
)
from differential import Differential, Inputs, group_by_source

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


def compiled_product(name: str, limits: DeviceLimits) -> list[tuple[Options, CompileResult]]:
    """Every subset with dynamic batching on, compiled once per session. Dynamic batching
    does not change the compilation (checked below), so the subsets with it off reuse these
    results with the option flipped."""
    key = (name, limits)
    if key not in _COMPILED:
        program = small_example(name)
        _COMPILED[key] = [(options, compile_program(program, options, limits))
                          for options in every_subset(PRODUCT_TILE)
                          if options.dynamic_batching]
    return _COMPILED[key]


PRODUCT_MODELS = [
    "treelstm",
    pytest.param("childsum_treelstm", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", ["treelstm", "childsum_treelstm"])
def test_every_subset_compiles_and_verifies(name: str, product_limits: DeviceLimits) -> None:
    started = time.perf_counter()
    results = compiled_product(name, product_limits)
    assert len(results) == 2 ** (len(Options.names()) - 1)
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
    groups = group_by_source(
        [(replace(options, dynamic_batching=batching), replace(
            result, options=replace(result.options, dynamic_batching=batching)))
         for options, result in results for batching in (True, False)])
    failures: list[str] = []
    worst = 0.0
    for (_, batching), group in groups.items():
        options, result = group[0]
        try:
            worst = max(worst, differential.check(name, program, options, inputs,
                                                  result=result))
        except AssertionError as error:
            failures.append(f"{options_summary([o for o, _ in group])} "
                            f"(dynamic batching {'on' if batching else 'off'}): {error}")
    SWEEP_STATS.append((f"{name}: run {2 * len(results)} subsets on the device",
                        f"{len({source for source, _ in groups})} builds, {len(groups)} runs, "
                        f"largest error {worst:.1e}", time.perf_counter() - started))
    assert not failures, f"{len(failures)} of {len(groups)} distinct programs disagree:\n" + \
        "\n".join(failures[:5])

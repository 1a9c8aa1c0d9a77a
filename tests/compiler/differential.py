"""The differential runner: compile (cached), run on the device, compare with the interpreter.

Compiling is cheap (milliseconds) but building OpenCL on a CPU driver is not (one to several
seconds per distinct source), so everything is deduplicated: a compiled program per
(program, options, limits), a reference result per (program, inputs), and one run per
(program, OpenCL source, launch plan, inputs): option sets that differ only in passes
that changed nothing produce byte-identical OpenCL, and `dynamic_batching` only changes the
linearizer. The runtime's build cache then shares the driver's work between tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from compiler_support import (
    FLOOR,
    WEIGHT_SCALE,
    assert_close,
    compile_program,
    option_label,
    weights_for,
)

from cortexlang.inputs.structure import Structure
from cortexlang.interp.interpreter import interpret
from cortexlang.ir.checked import CheckedProgram
from cortexlang.outputs import Outputs
from cortexlang.passes.pipeline import CompileResult, Options
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import CompiledModel


@dataclass
class Inputs:
    """A named batch of structures (the name keys the caches: keep it unique per batch)."""

    label: str
    structures: Sequence[Structure]


@dataclass
class Differential:
    """Compiles, runs and compares, remembering everything it has already done."""

    device: Device
    limits: DeviceLimits
    compiled: dict[tuple[int, Options], CompileResult] = field(default_factory=dict)
    references: dict[tuple[int, str, int, float], Outputs] = field(default_factory=dict)
    verified: dict[tuple[int, str, int, bool, str, int, float], float] = field(
        default_factory=dict)
    runs: int = 0

    def compile(self, program: CheckedProgram, options: Options) -> CompileResult:
        key = (id(program), options)
        if key not in self.compiled:
            self.compiled[key] = compile_program(program, options, self.limits)
        return self.compiled[key]

    def reference(self, program: CheckedProgram, inputs: Inputs, seed: int,
                  scale: float = WEIGHT_SCALE) -> Outputs:
        key = (id(program), inputs.label, seed, scale)
        if key not in self.references:
            self.references[key] = interpret(program, inputs.structures,
                                             weights_for(program, seed, scale))
        return self.references[key]

    def check(self, model: str, program: CheckedProgram, options: Options, inputs: Inputs,
              seed: int = 1, result: CompileResult | None = None, label: str | None = None,
              scale: float = WEIGHT_SCALE, floor: float = FLOOR) -> float:
        """The largest error of the compiled program on `inputs`; fails beyond tolerance."""
        result = result or self.compile(program, options)
        # What the run depends on: the source, the runtime's launch plan (fusion threshold,
        # dynamic batching), the inputs and the weights.
        key = (id(program), result.source, result.kernels.fuse_below, options.dynamic_batching,
               inputs.label, seed, scale)
        if key in self.verified:
            return self.verified[key]
        reference = self.reference(program, inputs, seed, scale)
        # The default configuration is built as users build it; every other configuration
        # checks the meaning of its OpenCL with the OpenCL compiler's optimisations off,
        # which halves the cost of a cold build and first launch on PoCL.
        outputs = run_compiled(self.device, result, program, inputs.structures, seed, scale,
                               optimise_build=options == Options())
        self.runs += 1
        error = assert_close(model, f"{label or option_label(options)} on {inputs.label}",
                             outputs, reference, floor)
        self.verified[key] = error
        return error


def crossing_over(result: CompileResult, nodes: int = 8) -> CompileResult:
    """The same compiled program with its hybrid plan's fusion threshold set to `nodes`.

    The threshold is a run-time decision (the runtime picks the first batch narrower than it
    and passes it to the persistent kernel), so this runs the very same kernels, with the
    level kernels launched for the wide batches and the persistent kernel taking over part
    way: at the small test sizes the planner's own threshold (work per launch) exceeds every
    test input, and the crossing would never run."""
    if result.kernels.strategy != "hybrid":
        return result
    return replace(result, kernels=replace(result.kernels, fuse_below=nodes),
                   executable=replace(result.executable, fuse_below=nodes))


def run_compiled(device: Device, result: CompileResult, program: CheckedProgram,
                 structures: Sequence[Structure], seed: int = 1,
                 scale: float = WEIGHT_SCALE, optimise_build: bool = True) -> Outputs:
    model = CompiledModel(result, device, optimise_build=optimise_build)
    model.bind_weights(weights_for(program, seed, scale))
    return model.run(structures)


def group_by_source(results: Sequence[tuple[Options, CompileResult]],
                    ) -> dict[tuple[str, bool], list[tuple[Options, CompileResult]]]:
    """Option sets with the same OpenCL source and dynamic batching, together."""
    groups: dict[tuple[str, bool], list[tuple[Options, CompileResult]]] = {}
    for options, result in results:
        groups.setdefault((result.source, options.dynamic_batching), []).append(
            (options, result))
    return groups


def widest_batches(structures: Sequence[Structure], max_children: int) -> np.ndarray:
    """The linearizer's batch lengths for these structures (dynamic batching on)."""
    from cortexlang.runtime.linearize import linearize

    return np.asarray(linearize(structures, max_children=max_children,
                                dynamic_batching=True).batch_len)

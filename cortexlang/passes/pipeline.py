"""The compiler pipeline: one list of stages and passes, walked by `run_pipeline`.

Read aloud, the pipeline is:

    to_recursive        checked program -> recursive program          (stage 1)
    specialize_leaves   separate leaf code                             [specialize_leaves]
    fold_constants      constant propagation                           [fold_constants]
    refactor_recursion  move W @ child into the child's step           [refactor_recursion]
    hoist_invariants    node-independent work computed once            [hoist_invariants]
    tabulate_leaves     leaf states computed once per token            [tabulate_leaves]
    lower_loops         recursive program -> loop IR, operator fusion  (stage 2) [fuse_operators]
    dense_intermediates temporaries sized by the largest batch         [dense_intermediates]
    plan_kernels        loop IR -> kernel IR: strategy, geometry       (stage 3) [fuse_levels,
                                                                       persist_weights]
    emit_opencl         kernel IR -> OpenCL C              (stage 4) [unroll_dot_products]
    build_executable    everything the runtime runs, typed             (stage 5)

A pass whose option is off is skipped (the IR goes on unchanged); every subset of options is
a valid pipeline. Observability goes through instruments: objects whose `after_pass` sees each
step's name, result, time and whether it changed anything (printing, dumping, pictures,
verification), so a new pass gets all of them without touching any of them. Dynamic batching
is the linearizer's option, applied at run time.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from cortexlang.errors import CortexError, InternalError, UsageError, user_error
from cortexlang.ir import checked, executable, kernels, loops, recursive
from cortexlang.passes.dense_intermediates import dense_intermediates
from cortexlang.passes.fold_constants import fold_constants
from cortexlang.passes.hoist_invariants import hoist_invariants
from cortexlang.passes.lower_loops import lower_loops
from cortexlang.passes.plan_kernels import DeviceLimits, plan_kernels
from cortexlang.passes.refactor_recursion import refactor_recursion
from cortexlang.passes.specialize_leaves import specialize_leaves
from cortexlang.passes.tabulate_leaves import tabulate_leaves
from cortexlang.passes.to_recursive import to_recursive

# The most nodes one work-item computes together. The emitted code holds one copy of a
# phase's statements per tile node (and the halving sub-tiles of a partial tile), so the
# source grows with the tile; past a few dozen nodes the copies only add registers spilled
# and compile time (a tile of 1024 printed 3.3 MB of OpenCL).
MAX_NODE_TILE = 32


def node_tile_problem(tile: object) -> str | None:
    """Why `tile` is not a node tile (a whole number from 1 to MAX_NODE_TILE), or None."""
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral):
        return f"must be a whole number, not {tile!r}"
    if not 1 <= int(tile) <= MAX_NODE_TILE:
        return f"must be from 1 to {MAX_NODE_TILE} nodes, not {tile}"
    return None


@dataclass(frozen=True)
class Options:
    """Which optimisations run. Every one is on by default and can be switched off alone.

    `node_tile` is how many nodes each work-item computes together: a whole number from 1 to
    MAX_NODE_TILE (anything else is a ValueError; the command line reports it as a usage
    error, E0705)."""

    dynamic_batching: bool = True
    specialize_leaves: bool = True
    fold_constants: bool = True
    refactor_recursion: bool = True
    hoist_invariants: bool = True
    tabulate_leaves: bool = True
    fuse_operators: bool = True
    dense_intermediates: bool = True
    fuse_levels: bool = True
    persist_weights: bool = True
    unroll_dot_products: bool = True
    node_tile: int = 4

    def __post_init__(self) -> None:
        problem = node_tile_problem(self.node_tile)
        if problem is not None:
            raise ValueError(f"node_tile {problem}")

    @staticmethod
    def names() -> tuple[str, ...]:
        """The switchable optimisations, in pipeline order."""
        return tuple(f.name for f in fields(Options) if f.type in (bool, "bool"))

    @staticmethod
    def level(number: int) -> Options:
        """-O0 (nothing), -O1 (batching, specialisation, folding), -O2 (+ fusion, refactoring,
        hoisting, dense intermediates), -O3 (everything; the default)."""
        if number not in (0, 1, 2, 3):
            raise UsageError(user_error("E0701", f"-O{number} is not an optimisation level",
                                        hint="use -O0, -O1, -O2 or -O3").diagnostics)
        off = dict.fromkeys(Options.names(), False)
        if number >= 1:
            off.update(dynamic_batching=True, specialize_leaves=True, fold_constants=True)
        if number >= 2:
            off.update(fuse_operators=True, refactor_recursion=True, hoist_invariants=True,
                       tabulate_leaves=True, dense_intermediates=True,
                       unroll_dot_products=True)
        if number >= 3:
            off.update(fuse_levels=True, persist_weights=True)
        return Options(**off)

    def without(self, *names: str) -> Options:
        """These options with the named optimisations switched off."""
        unknown = [name for name in names if name not in Options.names()]
        if unknown:
            raise UsageError(user_error(
                "E0702", f"unknown optimisation `{unknown[0]}`",
                hint="optimisations: " + ", ".join(Options.names())).diagnostics)
        return replace(self, **dict.fromkeys(names, False))

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in Options.names() if getattr(self, name))


@dataclass(frozen=True)
class Step:
    """One entry of the pipeline: a stage (changes the IR's type) or a pass."""

    name: str
    stage: str           # the IR kind it produces: recursive, loops, kernels, opencl
    option: str | None   # the Options field that enables it (None: always runs)
    run: Callable[[Any, Options, DeviceLimits], Any]
    summary: str


PIPELINE: tuple[Step, ...] = (
    Step("to_recursive", "recursive", None, lambda ir, o, d: to_recursive(ir),
         "checked program to node-indexed operators and recursion edges"),
    Step("specialize_leaves", "recursive", "specialize_leaves",
         lambda ir, o, d: specialize_leaves(ir), "separate code for leaves"),
    Step("fold_constants", "recursive", "fold_constants", lambda ir, o, d: fold_constants(ir),
         "fold constants and identities with 0 and 1"),
    Step("refactor_recursion", "recursive", "refactor_recursion",
         lambda ir, o, d: refactor_recursion(ir), "move W @ child states into the child's step"),
    Step("hoist_invariants", "recursive", "hoist_invariants",
         lambda ir, o, d: hoist_invariants(ir), "compute node-independent work once"),
    Step("tabulate_leaves", "recursive", "tabulate_leaves",
         lambda ir, o, d: tabulate_leaves(ir), "leaves read per-token tables computed once"),
    Step("lower_loops", "loops", None, lambda ir, o, d: lower_loops(ir, o.fuse_operators),
         "recursion to loops over batches, nodes and units; phases of fused operators"),
    Step("dense_intermediates", "loops", "dense_intermediates",
         lambda ir, o, d: dense_intermediates(ir), "temporaries sized by the largest batch"),
    Step("plan_kernels", "kernels", None,
         lambda ir, o, d: plan_kernels(ir, d, fuse_levels=o.fuse_levels,
                                       persist_weights=o.persist_weights,
                                       node_tile=o.node_tile),
         "kernels, strategy, geometry, local memory and launch order"),
)
STAGES = ("program", "recursive", "loops", "kernels", "opencl", "executable")
STEP_NAMES = tuple(step.name for step in PIPELINE) + ("emit_opencl", "build_executable")

PRINTERS: dict[str, Callable[[Any], str]] = {
    "recursive": recursive.format_recursive,
    "loops": loops.format_loops,
    "kernels": kernels.format_kernels,
    "executable": executable.format_executable,
}
VERIFIERS: dict[str, Callable[[Any], None]] = {
    "recursive": recursive.verify_recursive,
    "loops": loops.verify_loops,
    "kernels": kernels.verify_kernels,
    "executable": executable.verify_executable,
}


def format_ir(stage: str, ir: Any) -> str:
    """The text form of any stage's IR."""
    if stage == "opencl":
        return str(ir)
    if stage == "program":
        from cortexlang.ir.checked_printer import format_checked
        return format_checked(ir)
    return PRINTERS[stage](ir)


class Instrument(Protocol):
    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool) -> None: ...


@dataclass
class StepRecord:
    step: str
    stage: str
    ir: Any
    seconds: float
    changed: bool
    ran: bool


class Recorder:
    """Keeps every step's IR and time: what `viz` and `--print-after` read."""

    def __init__(self) -> None:
        self.records: list[StepRecord] = []

    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool) -> None:
        self.records.append(StepRecord(step, stage, ir, seconds, changed, True))


class Verify:
    """Run the stage's verifier after every step (tests turn this on). A failure is an
    InternalError of the verifier that names the step whose IR it rejects."""

    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool) -> None:
        verifier = VERIFIERS.get(stage)
        if verifier is None:
            return
        try:
            verifier(ir)
        except InternalError as error:
            raise InternalError(error.step, f"the {stage} IR produced by {step} is invalid: "
                                f"{error.message}", error.dump_path, error.details) from error
        except Exception as error:  # a bug in the verifier itself
            raise InternalError(verifier.__name__, f"verifying the {stage} IR produced by "
                                f"{step}: {type(error).__name__}: {error}") from error


class DumpDirectory:
    """Write each step's text as NN_step.txt (numbered in pipeline order)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.count = 0

    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count += 1
        text = format_ir(stage, ir)
        (self.directory / f"{self.count:02d}_{step}.txt").write_text(text)


@dataclass(frozen=True)
class CompileResult:
    program: checked.CheckedProgram
    recursive: recursive.RecursiveProgram
    loops: loops.LoopProgram
    kernels: kernels.KernelProgram
    source: str
    options: Options
    seconds: float
    executable: executable.Executable


def _changed(before: Any, after: Any) -> bool:
    """Did a step change the IR? A pass that only records why it did not apply has not."""
    if after is before:
        return False
    if type(after) is type(before) and hasattr(after, "notes"):
        return replace(after, notes=()) != replace(before, notes=())
    return True


def run_pipeline(program: checked.CheckedProgram, options: Options | None = None,
                 limits: DeviceLimits | None = None,
                 instruments: Sequence[Instrument] = (),
                 stop_after: str | None = None) -> CompileResult | Any:
    """Walk PIPELINE over `program`; return every stage's product (or the IR after
    `stop_after`). A failure inside a step is an InternalError naming that step."""
    from cortexlang.codegen.opencl import emit_opencl
    from cortexlang.passes.build_executable import build_executable

    options = options if options is not None else Options()
    limits = limits if limits is not None else DeviceLimits()
    started = time.perf_counter()
    ir: Any = program
    products: dict[str, Any] = {"program": program}
    for instrument in instruments:
        instrument.after_pass("parse_and_check", "program", program, 0.0, True)
    steps = list(PIPELINE) + [
        Step("emit_opencl", "opencl", None,
             lambda ir, o, d: emit_opencl(ir, o.unroll_dot_products), "kernel IR to OpenCL C"),
        # The runtime's one input: it reads the stages before it, the runtime none of them.
        Step("build_executable", "executable", None,
             lambda ir, o, d: build_executable(program, products["recursive"],
                                               products["kernels"], ir, o.dynamic_batching),
             "kernels, buffers, weight bindings, host work and launches, typed")]
    for step in steps:
        if step.option is not None and not getattr(options, step.option):
            continue
        begin = time.perf_counter()
        try:
            result = step.run(ir, options, limits)
        except (CortexError, InternalError):
            raise
        except Exception as error:  # a bug in the step, not a user mistake
            raise InternalError(step.name, f"{type(error).__name__}: {error}") from error
        seconds = time.perf_counter() - begin
        changed = _changed(ir, result)
        ir = result
        products[step.stage] = ir
        for instrument in instruments:
            instrument.after_pass(step.name, step.stage, ir, seconds, changed)
        if stop_after == step.name:
            return ir
    return CompileResult(program, products["recursive"], products["loops"],
                         products["kernels"], products["opencl"], options,
                         time.perf_counter() - started, products["executable"])

"""The compiler pipeline: one list of stages and passes, walked by `run_pipeline`.

Read aloud, the pipeline is:

    parse_and_check     source text -> checked program                 (stage 0)
    to_recursive        checked program -> recursive program          (stage 1)
    specialize_leaves   separate leaf code                             [specialize_leaves]
    fold_constants      constant propagation                           [fold_constants]
    refactor_recursion  move W @ child into the child's step           [refactor_recursion]
    hoist_invariants    node-independent work computed once            [hoist_invariants]
    tabulate_leaves     leaf states computed once per token            [tabulate_leaves]
    unroll_recursion    a node with its odd-height children, one step  [unroll_recursion]
    lower_loops         recursive program -> loop IR, operator fusion  (stage 2) [fuse_operators]
    dense_intermediates temporaries sized by the largest batch         [dense_intermediates]
    plan_kernels        loop IR -> kernel IR: strategy, geometry,      (stage 3) [fuse_levels]
                        launch order
    tile_nodes          `node_tile` nodes per work-item; the sub-tiles
                        of a partial tile
    vectorize           units per work-item, from the device's vectors
    tile_rows           rows per work-item of flattened-matrix loops
    persist_weights     products' weights in local memory              [persist_weights]
    block_weights       transposed weights in blocks of the width
    unroll_dot_products dot products along k by 4, vector loads        [unroll_dot_products]
    split_dot_chains    partial sums where accumulators are few
    emit_opencl         kernel IR -> OpenCL C, deciding nothing        (stage 4)
    build_executable    everything the runtime runs, typed             (stage 5) [dynamic_batching]

Each step after plan_kernels records one kernel decision in the kernel IR as typed data, so
that emit_opencl is a printer; those without a [switch] always run. A pass whose option is
off is skipped (the IR goes on unchanged); every subset of options is a valid pipeline. A
pass that runs but does not apply returns the very IR it was given, with its reason beside
it (a `PassResult`), so "changed" is identity, not a comparison of copies.
The pipeline starts from source text (a `Source`) or from a program checked already.
Observability goes through instruments: objects whose `after_pass` sees each step's name,
result, time, whether it changed anything and if not why (printing, dumping, pictures,
verification), so a new pass gets all of them without touching any of them. Dynamic batching
is the linearizer's option, applied at run time.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

from cortexlang.codegen import opencl
from cortexlang.errors import CortexError, InternalError, UsageError, user_error
from cortexlang.ir import checked, executable, kernels, loops, recursive
from cortexlang.passes.block_weights import block_weights
from cortexlang.passes.build_executable import build_executable
from cortexlang.passes.dense_intermediates import dense_intermediates_result
from cortexlang.passes.fold_constants import fold_constants_result
from cortexlang.passes.hoist_invariants import hoist_invariants_result
from cortexlang.passes.lower_loops import lower_loops
from cortexlang.passes.persist_weights import persist_weights
from cortexlang.passes.plan_kernels import DeviceLimits, plan_kernels
from cortexlang.passes.refactor_recursion import refactor_recursion_result
from cortexlang.passes.result import PassResult
from cortexlang.passes.specialize_leaves import specialize_leaves_result
from cortexlang.passes.split_dot_chains import split_dot_chains
from cortexlang.passes.tabulate_leaves import tabulate_leaves_result
from cortexlang.passes.tile_nodes import tile_nodes
from cortexlang.passes.tile_rows import tile_rows
from cortexlang.passes.to_recursive import to_recursive
from cortexlang.passes.unroll_dot_products import unroll_dot_products_result
from cortexlang.passes.unroll_recursion import unroll_recursion_result
from cortexlang.passes.vectorize import vectorize

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
    """Which optimisations run. Every one but `unroll_recursion` is on by default, and each
    can be switched on or off alone.

    `unroll_recursion` is off by default: an unrolled step runs each group of nodes on one
    work-item, every unit, so a step has only as many tasks as groups; on the quick bench
    that costs more than the barriers it saves (README, "Recursive unrolling").

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
    unroll_recursion: bool = False
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
        hoisting, dense intermediates), -O3 (everything but unroll_recursion; the default)."""
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
        return replace(self, **dict.fromkeys(_known(names), False))

    def with_enabled(self, *names: str) -> Options:
        """These options with the named optimisations switched on (`unroll_recursion` is
        the one off by default)."""
        return replace(self, **dict.fromkeys(_known(names), True))

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in Options.names() if getattr(self, name))


def _known(names: Sequence[str]) -> Sequence[str]:
    """`names`, each an optimisation (else the usage error E0702)."""
    unknown = [name for name in names if name not in Options.names()]
    if unknown:
        raise UsageError(user_error(
            "E0702", f"unknown optimisation `{unknown[0]}`",
            hint="optimisations: " + ", ".join(Options.names())).diagnostics)
    return names


@dataclass(frozen=True)
class Source:
    """Model source text, the pipeline's first input: `text` as read from `path` (None: read
    the file at `path`), with `overrides` replacing size values (the command line's -D)."""

    path: str
    text: str | None = None
    overrides: tuple[tuple[str, int], ...] = field(default=())


def parse_and_check(source: Source) -> checked.CheckedProgram:
    """The frontend as a step: parse and check the source (a CortexError lists every problem)."""
    from cortexlang.frontend.check import check_program
    from cortexlang.frontend.parse import parse_file, parse_program

    tree = parse_file(source.path) if source.text is None else \
        parse_program(source.text, source.path)
    return check_program(tree, dict(source.overrides))


@dataclass(frozen=True)
class Step:
    """One entry of the pipeline: a stage (changes the IR's type) or a pass.

    Every step has the one signature `run(ir, options, limits, products)`: `products` holds
    the earlier stages' IR by stage name (build_executable reads several). A stage returns
    its new IR; a pass returns a `PassResult`, the IR it was given itself when it does not
    apply, with why. `option` switches the whole step off (None: it always runs); `applies`
    names the other Options fields the step carries out, so that `--print-after NAME` finds
    the step of every optimisation."""

    name: str
    stage: str           # the IR kind it produces: program, recursive, loops, kernels, ...
    option: str | None   # the Options field that enables it (None: always runs)
    run: Callable[[Any, Options, DeviceLimits, Mapping[str, Any]], Any]
    summary: str
    applies: tuple[str, ...] = ()


FRONTEND = "parse_and_check"

PIPELINE: tuple[Step, ...] = (
    Step(FRONTEND, "program", None, lambda ir, o, d, p: parse_and_check(ir),
         "parse the source, resolve names, check shapes"),
    Step("to_recursive", "recursive", None, lambda ir, o, d, p: to_recursive(ir),
         "checked program to node-indexed operators and recursion edges"),
    Step("specialize_leaves", "recursive", "specialize_leaves",
         lambda ir, o, d, p: specialize_leaves_result(ir), "separate code for leaves"),
    Step("fold_constants", "recursive", "fold_constants",
         lambda ir, o, d, p: fold_constants_result(ir),
         "fold constants and identities with 0 and 1"),
    Step("refactor_recursion", "recursive", "refactor_recursion",
         lambda ir, o, d, p: refactor_recursion_result(ir),
         "move W @ child states into the child's step"),
    Step("hoist_invariants", "recursive", "hoist_invariants",
         lambda ir, o, d, p: hoist_invariants_result(ir), "compute node-independent work once"),
    Step("tabulate_leaves", "recursive", "tabulate_leaves",
         lambda ir, o, d, p: tabulate_leaves_result(ir),
         "leaves read per-token tables computed once"),
    Step("unroll_recursion", "recursive", "unroll_recursion",
         lambda ir, o, d, p: unroll_recursion_result(ir),
         "compute a node of odd height in its parent's step, just before it"),
    Step("lower_loops", "loops", None, lambda ir, o, d, p: lower_loops(ir, o.fuse_operators),
         "recursion to loops over batches, nodes and units; phases of fused operators",
         ("fuse_operators",)),
    Step("dense_intermediates", "loops", "dense_intermediates",
         lambda ir, o, d, p: dense_intermediates_result(ir),
         "temporaries sized by the largest batch"),
    Step("plan_kernels", "kernels", None,
         lambda ir, o, d, p: plan_kernels(ir, d, fuse_levels=o.fuse_levels),
         "kernels, strategy, work-group geometry and launch order", ("fuse_levels",)),
    # Every further kernel decision is a step on the kernel IR, recorded there as typed data.
    Step("tile_nodes", "kernels", None, lambda ir, o, d, p: tile_nodes(ir, o.node_tile),
         "nodes per work-item, and the sub-tiles of a partial tile", ("node_tile",)),
    Step("vectorize", "kernels", None, lambda ir, o, d, p: vectorize(ir),
         "consecutive units per work-item, as wide as the device's vectors"),
    Step("tile_rows", "kernels", None, lambda ir, o, d, p: tile_rows(ir),
         "several rows per work-item of a flattened-matrix loop"),
    Step("persist_weights", "kernels", "persist_weights",
         lambda ir, o, d, p: persist_weights(ir),
         "the products' weights in local memory for a persistent kernel"),
    Step("block_weights", "kernels", None, lambda ir, o, d, p: block_weights(ir),
         "transposed weights stored in column blocks of the vector width"),
    Step("unroll_dot_products", "kernels", "unroll_dot_products",
         lambda ir, o, d, p: unroll_dot_products_result(ir),
         "dot products along k by 4 with vector loads where units are not vectorised"),
    Step("split_dot_chains", "kernels", None, lambda ir, o, d, p: split_dot_chains(ir),
         "partial sums along k where a dot-product loop has few accumulators"),
    Step("emit_opencl", "opencl", None, lambda ir, o, d, p: opencl.emit_opencl(ir),
         "kernel IR to OpenCL C"),
    # The runtime's one input: it reads the stages before it, the runtime none of them.
    Step("build_executable", "executable", None,
         lambda ir, o, d, p: build_executable(p["program"], p["recursive"], p["kernels"], ir,
                                              o.dynamic_batching),
         "kernels, buffers, weight bindings, host work and launches, typed",
         ("dynamic_batching",)),
)
def step_of(name: str) -> Step | None:
    """The step called `name`, or the step that carries out the optimisation `name` (None
    for an unknown name)."""
    for step in PIPELINE:
        if name in (step.name, step.option) or name in step.applies:
            return step
    return None


STAGES = ("program", "recursive", "loops", "kernels", "opencl", "executable")
STEP_NAMES = tuple(step.name for step in PIPELINE)

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
    if stage == "source":
        return ir.text if ir.text is not None else f"(the file {ir.path})\n"
    if stage == "opencl":
        return str(ir)
    if stage == "program":
        from cortexlang.ir.checked_printer import format_checked
        return format_checked(ir)
    return PRINTERS[stage](ir)


class Instrument(Protocol):
    """Sees every step that ran: its IR, time, whether it changed the IR (a pass that did not
    apply returned the IR it was given) and, if not, the pass's reason ("" for a stage)."""

    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool, reason: str = "") -> None: ...


@dataclass
class StepRecord:
    step: str
    stage: str
    ir: Any
    seconds: float
    changed: bool
    ran: bool
    reason: str = ""  # why a step that ran changed nothing (the pass's reason), else ""


class Recorder:
    """Keeps every step's IR and time: what `viz` and `--print-after` read; and the steps
    that did not run, with why (`skipped`: step name, reason)."""

    def __init__(self) -> None:
        self.records: list[StepRecord] = []
        self.skipped: list[tuple[str, str]] = []

    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool, reason: str = "") -> None:
        if not changed and not reason:
            reason = "nothing to change in this program"
        self.records.append(StepRecord(step, stage, ir, seconds, changed, True,
                                       "" if changed else reason))

    def skipped_step(self, step: str, stage: str, reason: str) -> None:
        self.skipped.append((step, reason))


class Verify:
    """Run the stage's verifier after every step (tests turn this on). A failure is an
    InternalError of the verifier that names the step whose IR it rejects."""

    def after_pass(self, step: str, stage: str, ir: Any, seconds: float,
                   changed: bool, reason: str = "") -> None:
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
                   changed: bool, reason: str = "") -> None:
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


def run_pipeline(program: checked.CheckedProgram | Source, options: Options | None = None,
                 limits: DeviceLimits | Callable[[], DeviceLimits] | None = None,
                 instruments: Sequence[Instrument] = (),
                 stop_after: str | None = None) -> CompileResult | Any:
    """Walk PIPELINE over `program` (source text, or a program checked already: the
    frontend step then reports it as its product); return every stage's product (or the IR
    after `stop_after`). A failure inside a step is an InternalError naming that step, with
    the IR it was given dumped to a temporary directory. A step switched off is reported to
    the instruments that have a `skipped_step` method. `limits` may be a function giving
    them: it is called once the frontend has accepted the program, so that a program's
    errors come before any look at the device."""
    options = options if options is not None else Options()
    pending = limits if limits is not None else DeviceLimits()
    resolved = pending if isinstance(pending, DeviceLimits) else None
    started = time.perf_counter()
    ir: Any = program
    stage = "source"
    products: dict[str, Any] = {}
    for step in PIPELINE:
        if step.name == FRONTEND and not isinstance(ir, Source):
            stage = step.stage
            products[step.stage] = ir
            for instrument in instruments:
                instrument.after_pass(step.name, step.stage, ir, 0.0, True, "")
            if stop_after == step.name:
                return ir
            continue
        if resolved is None and step.stage != "program" and callable(pending):
            resolved = pending()
        if step.option is not None and not getattr(options, step.option):
            for instrument in instruments:
                skipped = getattr(instrument, "skipped_step", None)
                if skipped is not None:
                    skipped(step.name, step.stage, f"its optimisation `{step.option}` is off")
            continue
        begin = time.perf_counter()
        try:
            # (the frontend reads no limits: until the device is looked at, generic ones)
            result = step.run(ir, options, resolved or DeviceLimits(), products)
        except CortexError:
            raise
        except InternalError as error:  # a step's own consistency check failed
            if error.dump_path is not None:
                raise
            raise InternalError(error.step, error.message, _dump_input(step.name, stage, ir),
                                error.details) from error
        except Exception as error:  # a bug in the step, not a user mistake
            raise InternalError(step.name, f"{type(error).__name__}: {error}",
                                _dump_input(step.name, stage, ir)) from error
        seconds = time.perf_counter() - begin
        outcome = result if isinstance(result, PassResult) else PassResult(result, "")
        changed = outcome.changed(ir)
        ir, stage = outcome.ir, step.stage
        products[step.stage] = ir
        for instrument in instruments:
            instrument.after_pass(step.name, step.stage, ir, seconds, changed,
                                  "" if changed else outcome.note)
        if stop_after == step.name:
            return ir
    return CompileResult(products["program"], products["recursive"], products["loops"],
                         products["kernels"], products["opencl"], options,
                         time.perf_counter() - started, products["executable"])


def _dump_input(step: str, stage: str, ir: Any) -> str | None:
    """Write the IR a failing step was given (as text) to a fresh temporary directory."""
    import tempfile

    try:
        directory = Path(tempfile.mkdtemp(prefix=f"cortexlang-{step}-failure-"))
        (directory / f"before_{step}.txt").write_text(format_ir(stage, ir))
    except Exception:  # the dump is best effort: the IR may be what broke the step
        return None
    return str(directory)

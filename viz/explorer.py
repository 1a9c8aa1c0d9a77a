"""The pass explorer: every stage, every pass and every input as a picture and a text form.

`explore` compiles a program with a `Recorder` instrument (so it sees exactly what the
pipeline produced, step by step), draws each step with the renderer of the step's *stage*
(a new pass gets a picture without any change here), notes what each pass did (or, for one
that did not apply, the reason it gave beside the IR it returned as it was), then draws
the inputs of one batch, the linearizer's view of them and, where a device is given, a
measured run. The result is a list of `View`s in a fixed order, numbered by their place in
that order whatever the options, so that two explorations line up file by file; a pass
whose option is off is a view with status "skipped" and no picture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cortexlang.errors import CortexError
from cortexlang.inputs.structure import Structure
from cortexlang.ir import checked, kernels, loops
from cortexlang.passes import pipeline
from cortexlang.passes.pipeline import (
    CompileResult,
    Options,
    Recorder,
    StepRecord,
    format_ir,
    run_pipeline,
)
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.linearize import Linearized, linearize

from .dot import Graph
from .inputs import draw_linearized, draw_trees, token_text
from .kernels import draw_kernels
from .loops import draw_loops
from .opencl import draw_opencl, phase_lines
from .program import draw_program, program_lines
from .recursive import draw_recursive, recursive_lines
from .timeline import RunMeasurement, draw_timeline, format_run, measure_run

STAGE_TITLES = {"program": "Checked program", "recursive": "Recursive program",
                "loops": "Loop IR", "kernels": "Kernels", "opencl": "OpenCL"}
FIRST_STEP = pipeline.FRONTEND
LAST_STEP = "emit_opencl"
INPUT_VIEWS = ("inputs", "linearized", "run")


@dataclass(frozen=True)
class View:
    """One entry of the explorer.

    kind: "stage" (the IR changes type), "pass", "input" or "run".
    status: "stage", "changed", "unchanged", "skipped" (option off) or "unavailable".
    note: one line saying what the step did. seconds: compile time of the step.
    text: the text form. dot: the picture as DOT (None where there is none).
    lines: the .cx lines the view refers to. stage: the IR kind ("" for inputs).
    """

    number: int
    name: str
    title: str
    kind: str
    status: str
    note: str
    seconds: float | None
    text: str
    dot: str | None
    lines: tuple[int, ...] = ()
    stage: str = ""

    @property
    def slug(self) -> str:
        """The stem of its files: `01_program`, `05_refactor_recursion`, ..."""
        return f"{self.number:02d}_{self.name}"


@dataclass(frozen=True)
class Exploration:
    """Everything `explore` found: the views in order and the products behind them."""

    program: checked.CheckedProgram
    options: Options
    views: tuple[View, ...]
    result: CompileResult
    linearized: Linearized | None
    measurement: RunMeasurement | None


Renderer = Callable[[Any, Any, Mapping[str, Any]], Graph]


def _render_opencl(source: str, _before: Any, products: Mapping[str, Any]) -> Graph:
    return draw_opencl(source, products["kernels"], products["program"].source,
                       products.get("recursive"))


RENDERERS: dict[str, Renderer] = {
    "program": lambda ir, before, products: draw_program(ir),
    "recursive": lambda ir, before, products: draw_recursive(ir, before),
    "loops": lambda ir, before, products: draw_loops(ir, before),
    "kernels": lambda ir, before, products: draw_kernels(ir, before),
    "opencl": _render_opencl,
}


def _loop_lines(program: loops.LoopProgram,
                recursive: Any = None) -> tuple[int, ...]:
    phases = [stmt for stmt in loops.walk_stmts(program.body) if isinstance(stmt, loops.Phase)]
    return tuple(sorted({line for phase in phases
                         for line in phase_lines(phase, recursive, phases)}))


def _kernel_lines(program: kernels.KernelProgram, recursive: Any = None) -> tuple[int, ...]:
    found = {line for kernel in program.kernels for line in kernel.source_lines}
    found |= {line for kernel in program.kernels for phase in kernel.phases
              for line in phase_lines(phase, recursive, kernel.phases)}
    return tuple(sorted(found))


LINE_FINDERS: dict[str, Callable[[Any, Mapping[str, Any]], tuple[int, ...]]] = {
    "program": lambda ir, products: program_lines(ir),
    "recursive": lambda ir, products: recursive_lines(ir),
    "loops": lambda ir, products: _loop_lines(ir, products.get("recursive")),
    "kernels": lambda ir, products: _kernel_lines(ir, products.get("recursive")),
    "opencl": lambda ir, products: _kernel_lines(products["kernels"],
                                                 products.get("recursive")),
}


def step_names() -> tuple[str, ...]:
    """Every compile step in order, including the first and the last."""
    return tuple(step.name for step in pipeline.PIPELINE)


def view_names() -> tuple[str, ...]:
    """The name of every view in order (a stage step is named by its stage)."""
    names: list[str] = []
    stage = ""
    for name, step_stage in _steps_with_stages():
        names.append(step_stage if step_stage != stage else name)
        stage = step_stage
    return tuple(names) + INPUT_VIEWS


def _steps_with_stages() -> list[tuple[str, str]]:
    # The pipeline list holds every step from parse_and_check to emit_opencl and beyond.
    return [(step.name, step.stage) for step in pipeline.PIPELINE]


def _new_notes(step: str, ir: Any, before: Any) -> list[str]:
    old = set(getattr(before, "notes", ()) or ())
    return [note for pass_name, note in getattr(ir, "notes", ()) or ()
            if pass_name == step and (pass_name, note) not in old]


def _compile_views(records: Sequence[StepRecord], options: Options,
                   wanted: Callable[[str], bool]) -> list[View]:
    recorded = {record.step: record for record in records}
    summaries = {step.name: step.summary for step in pipeline.PIPELINE}
    summaries[LAST_STEP] = "print the kernel IR as OpenCL C"
    options_of = {step.name: step.option for step in pipeline.PIPELINE}
    products: dict[str, Any] = {}
    views: list[View] = []
    previous_stage = ""
    before: Any = None
    for number, (step, stage) in enumerate(_steps_with_stages(), start=1):
        is_stage = stage != previous_stage
        previous_stage = stage
        name = stage if is_stage else step
        title = (f"{STAGE_TITLES.get(stage, stage)} \u2014 {step}" if is_stage
                 else f"pass {step}")
        record = recorded.get(step)
        if record is None:
            option = options_of.get(step)
            views.append(View(number, name, title, "stage" if is_stage else "pass", "skipped",
                              f"skipped (option {option} off)" if option else "did not run",
                              None, "", None, (), stage))
            continue
        products[stage] = record.ir
        if record.step == "emit_opencl":
            products.setdefault("kernels", before)
        same_stage = before is not None and not is_stage
        if is_stage:
            status = "stage"
            notes = _new_notes(step, record.ir, before)
            note = "; ".join(notes) if notes else summaries.get(step, "")
        elif not record.changed:
            status = "unchanged"
            note = "unchanged" + (f": {record.reason}" if record.reason else "")
        else:
            status = "changed"
            notes = _new_notes(step, record.ir, before)
            note = "; ".join(notes) if notes else f"changed: {summaries.get(step, '')}"
        text = format_ir(stage, record.ir)
        dot = None
        if wanted(name) and stage in RENDERERS:
            dot = RENDERERS[stage](record.ir, before if same_stage else None,
                                   products).source()
        finder = LINE_FINDERS.get(stage)
        lines = finder(record.ir, products) if finder is not None else ()
        views.append(View(number, name, title, "stage" if is_stage else "pass", status, note,
                          record.seconds, text, dot, lines, stage))
        before = record.ir
    return views


def format_structures(structures: Sequence[Structure]) -> str:
    """Text form of the input structures: every node with its children and token."""
    lines: list[str] = []
    for index, structure in enumerate(structures):
        meta = structure.meta
        where = f" ({meta['path']}:{meta['line']})" if "path" in meta and "line" in meta else ""
        lines.append(f"structure {index}{where}: {structure.num_nodes} nodes, root "
                     f"{structure.root}, kind {structure.kind}")
        for node in range(structure.num_nodes):
            children = [int(child) for child in structure.children[node]]
            token = token_text(structure, node)
            lines.append(f"  node {node}: children {children}"
                         + (f", token {token}" if token and all(c < 0 for c in children)
                            else ""))
    return "\n".join(lines) + "\n"


def format_linearized(linearized: Linearized) -> str:
    """Text form of the linearizer's result: the summary and every array."""
    def row(values: np.ndarray) -> str:
        return " ".join(str(int(value)) for value in values)

    lines = [linearized.describe(max_batches=linearized.num_batches), "",
             f"batch_start  {row(linearized.batch_start)}",
             f"batch_len    {row(linearized.batch_len)}",
             f"roots        {row(linearized.roots)}", "",
             "node  height  children  structure  old id"]
    for node in range(linearized.num_nodes):
        lines.append(f"{node:>4}  {int(linearized.height[node]):>6}  "
                     f"{row(linearized.children[node]):>8}  {int(linearized.tree_of[node]):>9}"
                     f"  {int(linearized.old_id[node]):>6}")
    return "\n".join(lines) + "\n"


def explore(program: checked.CheckedProgram, options: Options | None = None,
            limits: DeviceLimits | None = None, *,
            structures: Sequence[Structure] = (), hidden_structures: int = 0,
            device: object | None = None, device_problem: str = "",
            weights: Mapping[str, np.ndarray] | None = None,
            wanted: Callable[[str], bool] = lambda name: True,
            parse_seconds: float | None = None, use_cache: bool = True) -> Exploration:
    """Compile `program` with a Recorder and build every view (see the module docstring).

    `structures` is the batch drawn and run; `device` (a runtime Device with a profiling
    queue) and `weights` enable the measured run, else `device_problem` says why not.
    `wanted(name)` says which views need a picture (the others keep their text only).
    `use_cache` lets the run reuse built kernels. `parse_seconds`, the frontend's time, is
    shown as the checked program's (the pipeline starts from a checked program and records
    0 for it).
    """
    options = options if options is not None else Options()
    limits = limits if limits is not None else DeviceLimits()
    recorder = Recorder()
    result = run_pipeline(program, options, limits, instruments=[recorder])
    views = _compile_views(recorder.records, options, wanted)
    if parse_seconds is not None and views and views[0].name == "program":
        views[0] = dataclasses.replace(views[0], seconds=parse_seconds)
    number = len(views)
    linearized: Linearized | None = None
    measurement: RunMeasurement | None = None
    if structures:
        linearized = linearize(structures, max_children=result.recursive.max_children,
                               dynamic_batching=options.dynamic_batching,
                               unroll_depth=result.executable.unroll_depth)
        views.append(View(number + 1, "inputs", "Input structures", "input", "stage",
                          f"{len(structures)} structures, {sum(s.num_nodes for s in structures)}"
                          " nodes as read" + (f" ({hidden_structures} more in the input)"
                                              if hidden_structures else ""), None,
                          format_structures(structures),
                          draw_trees(structures, hidden=hidden_structures).source()
                          if wanted("inputs") else None))
        views.append(View(number + 2, "linearized", "Linearized batch", "input", "stage",
                          f"{linearized.num_batches} batches, leaves are ids 0.."
                          f"{linearized.num_leaves - 1}", linearized.seconds,
                          format_linearized(linearized),
                          draw_linearized(linearized, structures).source()
                          if wanted("linearized") else None))
    else:
        for offset, name in enumerate(("inputs", "linearized"), start=1):
            views.append(View(number + offset, name, name.capitalize(), "input",
                              "unavailable", "no input structures given", None, "", None))
    run_note = device_problem or "no OpenCL device was asked for"
    if structures and device is not None and weights is not None and wanted("run"):
        try:
            measurement = measure_run(result, device, structures, weights,
                                      use_cache=use_cache)
        except CortexError as problem:
            run_note = f"the run failed: {problem.render().splitlines()[0]}"
    if measurement is not None:
        device_seconds = sum(launch.end_ns - launch.start_ns
                             for launch in measurement.launches) / 1e9
        views.append(View(number + 3, "run", "A measured run", "run", "stage",
                          f"{len(measurement.launches)} launch"
                          f"{'' if len(measurement.launches) == 1 else 'es'} on "
                          f"{measurement.device}",
                          device_seconds, format_run(measurement),
                          draw_timeline(measurement, result.kernels).source()))
    else:
        views.append(View(number + 3, "run", "A measured run", "run", "unavailable",
                          f"skipped: {run_note}", None, "", None))
    return Exploration(program, options, tuple(views), result, linearized, measurement)

"""`cortexlang run MODEL.cx`: run a model on trees, sequences or grids and show its outputs.

Inputs are processed in chunks of structures (a progress bar shows on a terminal), with the
chosen backend; the outputs of the chunks are joined as if run in one batch. `--out` saves
every output and state as an .npz archive (written atomically); `--json` prints a
machine-readable summary instead of the table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from cortexlang import atomic
from cortexlang.artifact import is_artifact_path, read_artifact
from cortexlang.backends import (
    DEFAULT_BACKEND,
    BackendOptions,
    backend_names,
    get_backend,
    merge_outputs,
)
from cortexlang.commands import Command, capacity
from cortexlang.commands.common import (
    add_compiler_options,
    add_model_argument,
    add_size_options,
    compiler_settings,
    format_seconds,
    load_model,
    positive_integer,
    setting_pair,
    stderr_console,
    stdout_console,
)
from cortexlang.commands.loading import (
    Inputs,
    RunFacts,
    add_input_options,
    add_weight_options,
    artifact_kernels,
    artifact_settings,
    choose_run_vocab,
    device_description,
    load_inputs,
    load_weights_for,
)
from cortexlang.commands.validate import (
    check_device_argument,
    check_input_arguments,
    chosen_device,
)
from cortexlang.errors import Diagnostic, InputError, UsageError
from cortexlang.inputs.provenance import weights_of_file
from cortexlang.interp import values as value_checks
from cortexlang.ir.checked import CheckedProgram
from cortexlang.outputs import Outputs
from cortexlang.ray.cli import add_ray_options, run_on_ray

PREVIEW_STRUCTURES = 3
PREVIEW_VALUES = 6
DEFAULT_CHUNK = 256


def configure(parser: argparse.ArgumentParser) -> None:
    """The model, sizes, inputs, weights, backend and result options of `run`."""
    add_model_argument(parser)
    add_size_options(parser)
    add_input_options(parser)
    add_weight_options(parser)
    group = parser.add_argument_group("running")
    group.add_argument("--backend", choices=backend_names(), default=None,
                       help=f"how to run the model (default {DEFAULT_BACKEND}; with --float64 "
                            "the interpreter, which alone computes in float64)")
    group.add_argument("--float64", action="store_true",
                       help="compute in float64 instead of float32")
    group.add_argument("--device", metavar="SPEC",
                       help="OpenCL device for backends that use one (see cortexlang devices)")
    group.add_argument("--vector-width", type=int, choices=(1, 2, 4, 8, 16), metavar="W",
                       help="compiled backend: plan kernels as if the device preferred float "
                            "vectors of W (1, 2, 4, 8, 16) instead of its own width")
    group.add_argument("--set", dest="settings", metavar="NAME=VALUE", type=setting_pair,
                       action="append", default=[], help="a backend-specific setting")
    group.add_argument("--verbose", action="store_true",
                       help="compiled backend: show the OpenCL compiler's log of a build")
    group.add_argument("--chunk", metavar="N", type=positive_integer, default=DEFAULT_CHUNK,
                       help=f"structures per backend call (default {DEFAULT_CHUNK})")
    group.add_argument("--allow-nonfinite", action="store_true",
                       help="run weights and features that hold NaN or infinite values "
                            "(refused by default, E0580 and E0581)")
    add_compiler_options(parser)
    group = parser.add_argument_group("results")
    group.add_argument("--out", metavar="OUT.npz",
                       help="save every output and state (keys outputs/NAME, states/NAME, "
                            "node_offset)")
    group.add_argument("--json", action="store_true",
                       help="print a machine-readable summary on stdout")
    add_ray_options(parser)


def execute(args: argparse.Namespace) -> int:
    """Run the model on the inputs; print the summary (or JSON) and save --out. Exit 0."""
    if args.ray is not None:
        return run_on_ray(args)
    started = time.perf_counter()
    check_input_arguments(args)
    artifact = None
    if is_artifact_path(args.model):
        if args.sizes or args.weights is not None:
            raise UsageError(Diagnostic("E0011", "an artifact holds its sizes and weights",
                                        None, "", "leave -D and --weights out, or run the "
                                        ".cx model"))
        artifact = read_artifact(args.model)
        program = artifact.program
    else:
        program = load_model(args.model, args)
    if args.backend is None:
        args.backend = "interp" if args.float64 else DEFAULT_BACKEND
    backend = get_backend(args.backend)
    check_device_argument(args.backend, args.device)
    settings = tuple(args.settings)
    if args.backend == "compiled":
        flags = compiler_settings(args)
        if artifact is not None and not flags:
            flags = artifact_settings(artifact)
        settings = flags + settings
        if args.verbose:
            settings += (("verbose", "on"),)
        if args.vector_width is not None:
            settings += (("vector_width", str(args.vector_width)),)
    elif compiler_settings(args) or args.verbose or args.vector_width is not None:
        raise UsageError(Diagnostic("E0011", "-O, --disable, --no-cache, --node-tile, "
                                    "--verbose and --vector-width apply to the compiled "
                                    "backend", None, "", "drop them, or use --backend compiled"))
    if args.backend == "compiled" and args.float64:
        raise UsageError(Diagnostic("E0011", "the compiled backend computes in float32", None,
                                    "", "use --backend interp for float64"))
    options = BackendOptions(dtype="float64" if args.float64 else "float32",
                             device=args.device, settings=settings)
    dtype = np.dtype(options.dtype)
    if args.backend == "compiled":
        device = chosen_device(args.device)
        capacity.check_device_allocations(program, int(device.max_mem_alloc_size or 0),
                                          device.device_name)
    if artifact is None and args.weights is None:
        # Random weights are drawn before the inputs are read (their vocabulary depends on
        # the weights): refuse a model too large to initialise before drawing them.
        capacity.check_host_memory(program, dtype, initialised=True, num_nodes=0,
                                   num_structures=0)
    weights_started = time.perf_counter()
    if artifact is not None:
        choice = weights_of_file(artifact.weights, program.params, dtype)
    else:
        choice = load_weights_for(args, program, dtype)
    weights = choice.weights
    if not args.allow_nonfinite:
        source = (args.weights or (artifact.path if artifact is not None else None)
                  or f"the weights initialised from --seed {args.seed}")
        _refuse(value_checks.nonfinite_weights(program, weights, source), program.source)
    weights_seconds = time.perf_counter() - weights_started
    vocab_choice = choose_run_vocab(args, program, choice)
    inputs = load_inputs(args, program, vocab_choice)
    _refuse(value_checks.binary_arity(program, inputs.structures))
    if not args.allow_nonfinite:
        _refuse(value_checks.nonfinite_features(inputs.structures))
    capacity.check_host_memory(program, dtype, initialised=False, num_nodes=inputs.num_nodes,
                               num_structures=len(inputs.structures))
    kernels = ""
    if artifact is not None and args.backend == "compiled":
        kernels = artifact_kernels(artifact, args.device)
    facts = RunFacts(choice, vocab_choice, device_description(args.backend, args.device),
                     kernels)

    chunks = [inputs.structures[start:start + args.chunk]
              for start in range(0, len(inputs.structures), args.chunk)] or [()]
    run_started = time.perf_counter()
    parts = []
    with _progress(len(inputs.structures), len(chunks) > 1 and not args.json) as progress:
        task = progress.add_task("running", total=len(inputs.structures))
        for chunk in chunks:
            parts.append(backend(program, chunk, weights, options))
            progress.advance(task, len(chunk))
    outputs = merge_outputs(parts)
    timings = {"input": inputs.seconds, "weights": weights_seconds,
               "run": time.perf_counter() - run_started,
               **{f"backend_{phase}": seconds for phase, seconds in outputs.timings.items()}}
    if args.out is not None:
        atomic.save_npz(args.out, _archive(outputs))
    timings["total"] = time.perf_counter() - started

    if args.json:
        summary = _summary(program, args, options, inputs, outputs, timings, facts)
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(program, args, options, inputs, outputs, timings, facts)
    return 0


def _refuse(diagnostics: Sequence[Diagnostic], source: str | None = None) -> None:
    """Raise the value checks' diagnostics as one `InputError` (exit 1), if there are any."""
    if diagnostics:
        raise InputError(list(diagnostics), source)


def _progress(total: int, visible: bool) -> Progress:
    console = stderr_console()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True,
                    disable=not (visible and console.is_terminal))


def _archive(outputs: Outputs) -> dict[str, np.ndarray]:
    arrays = {f"outputs/{name}": values for name, values in outputs.outputs.items()}
    arrays.update({f"states/{name}": values for name, values in outputs.states.items()})
    arrays["node_offset"] = outputs.node_offset
    return arrays


def _preview(program: CheckedProgram, inputs: Inputs, outputs: Outputs,
             name: str) -> list[list[float]]:
    """The first values of output `name` at the root of each of the first structures."""
    rows = []
    for index in range(min(PREVIEW_STRUCTURES, outputs.num_structures)):
        value = outputs.for_structure(name, index)
        if outputs.selectors.get(name) == "all":
            value = value[inputs.structures[index].root]
        rows.append([float(number) for number in np.ravel(value)[:PREVIEW_VALUES]])
    return rows


def _summary(program: CheckedProgram, args: argparse.Namespace, options: BackendOptions,
             inputs: Inputs, outputs: Outputs, timings: dict[str, float],
             facts: RunFacts) -> dict[str, Any]:
    return {
        **facts.summary(inputs),
        "model": program.name,
        "path": program.path,
        "structure": program.structure.kind,
        "sizes": dict(program.sizes),
        "backend": args.backend,
        "dtype": options.dtype,
        "inputs": {"source": inputs.source, "structures": len(inputs.structures),
                   "nodes": inputs.num_nodes, "vocabulary": inputs.vocabulary_size},
        "timings": timings,
        "outputs": {name: {"selector": outputs.selectors.get(name, "root"),
                           "shape": list(values.shape),
                           "preview": _preview(program, inputs, outputs, name)}
                    for name, values in outputs.outputs.items()},
        "out": args.out,
    }


def _format_values(values: Sequence[float], total: int) -> str:
    text = " ".join(f"{value:9.5f}" for value in values)
    return text + (" ..." if total > len(values) else "")


def _print_summary(program: CheckedProgram, args: argparse.Namespace, options: BackendOptions,
                   inputs: Inputs, outputs: Outputs, timings: dict[str, float],
                   facts: RunFacts) -> None:
    console = stdout_console()

    def fact(label: str, value: str) -> None:
        console.print(Text.assemble((f"{label:<9}", "bold"), value))

    sizes = " ".join(f"{name}={value}" for name, value in program.sizes)
    fact("model", f"{program.name} ({program.path}), {program.structure.kind}, {sizes}")
    fact("weights", facts.weights.description)
    fact("vocab", facts.vocab_description(inputs))
    fact("backend", f"{args.backend}, {options.dtype}, {facts.device}")
    if facts.kernels:
        fact("kernels", facts.kernels)
    fact("inputs", f"{inputs.description}, {inputs.num_nodes} nodes")
    backend_phases = ", ".join(f"{phase.removeprefix('backend_')} {format_seconds(seconds)}"
                               for phase, seconds in timings.items()
                               if phase.startswith("backend_"))
    fact("time", f"run {format_seconds(timings['run'])}"
                 + (f" ({backend_phases})" if backend_phases else "")
                 + f", input {format_seconds(timings['input'])}, "
                   f"total {format_seconds(timings['total'])}")
    if args.out is not None:
        fact("saved", args.out)
    for name, values in outputs.outputs.items():
        selector = outputs.selectors.get(name, "root")
        where = "" if selector == "root" else ", shown at each root"
        console.print(Text.assemble((f"{name}[{selector}]", "bold"),
                                    f" {list(values.shape)}{where}"))
        width = int(np.prod(values.shape[1:], dtype=np.int64))
        for index, row in enumerate(_preview(program, inputs, outputs, name)):
            console.print(Text.assemble((f"  structure {index:<4}", "dim"),
                                        _format_values(row, width)))
        if outputs.num_structures > PREVIEW_STRUCTURES:
            console.print(Text(f"  ... {outputs.num_structures - PREVIEW_STRUCTURES} more",
                               style="dim"))

COMMAND = Command(
    name="run",
    summary="run a model on input trees, sequences or grids",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

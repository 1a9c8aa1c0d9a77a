"""`cortexlang viz MODEL.cx`: draw every lowering stage, every pass and the inputs.

Writes into a folder (default `viz-out/MODEL`) a numbered file per view, in pipeline order:

    01_program   02_recursive   03_specialize_leaves ... NN_loops ... NN_kernels   NN_opencl
    NN_inputs    NN_linearized  NN_run

each as a picture (`--format svg`, the default; `png`; `dot`) and a text form (`.txt`), and
`index.html`, a self-contained page showing the views in order, each picture beside its text
and the .cx source, with the diff from the step before, compile times and a search box. A
view's number is its place in the full pipeline whatever the options, so two folders line up.
A pass whose optimisation is off is listed as skipped.

The inputs are one batch (`--batch N` structures, default 4, fewer if their nodes would pass
`--max-nodes`, default 240, which a warning then says) of
`--trees FILE` or `--synthetic N` (default: N = the batch). The measured run needs a working
OpenCL device (`--device SPEC`); without one it is skipped with a note, or leave it out
with `--no-run`. Without Graphviz the DOT text is written instead and the exit code is 3 only
when `--format` named a rendered format.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from cortexlang.commands import Command
from cortexlang.commands.capacity import check_host_memory
from cortexlang.commands.common import (
    add_compiler_options,
    add_model_argument,
    add_size_options,
    compiler_options,
    load_model,
    stdout_console,
)
from cortexlang.commands.loading import load_inputs
from cortexlang.commands.validate import check_input_arguments, chosen_device
from cortexlang.errors import Diagnostic, EnvironmentProblem, UsageError
from cortexlang.inputs.load import FORMATS as TREE_FORMATS
from cortexlang.inputs.structure import Structure

DEFAULT_BATCH = 4
MAX_BATCH_NODES = 240
PICTURE_FORMATS = ("svg", "png", "dot", "html")
# Names that also select a view: the steps that begin a stage, by their step name.
_ALIASES = {"parse_and_check": "program", "to_recursive": "recursive", "lower_loops": "loops",
            "plan_kernels": "kernels", "emit_opencl": "opencl", "trees": "inputs",
            "timeline": "run"}


def configure(parser: argparse.ArgumentParser) -> None:
    """The model, sizes, compiler options, inputs, which views, and the output."""
    add_model_argument(parser)
    add_size_options(parser)
    add_compiler_options(parser)
    inputs = parser.add_argument_group("inputs")
    source = inputs.add_mutually_exclusive_group()
    source.add_argument("--trees", metavar="FILE", help="input structures (PTB or JSON)")
    source.add_argument("--synthetic", metavar="N", type=_count,
                        help="N generated structures shaped for the model")
    inputs.add_argument("--vocab", metavar="FILE", help="vocabulary of --trees")
    inputs.add_argument("--trees-format", choices=TREE_FORMATS,
                        help="format of --trees (default: from the file)")
    inputs.add_argument("--batch", metavar="N", type=_count, default=DEFAULT_BATCH,
                        help=f"structures drawn and run as one batch (default {DEFAULT_BATCH})")
    inputs.add_argument("--max-nodes", metavar="N", type=_count, default=MAX_BATCH_NODES,
                        help="stop the batch before its nodes pass N, so that the pictures "
                             f"stay readable (default {MAX_BATCH_NODES}; a warning says "
                             "when structures are left out)")
    inputs.add_argument("--seed", type=int, default=0,
                        help="seed of synthetic inputs and initialised weights (default 0)")
    views = parser.add_argument_group("views")
    which = views.add_mutually_exclusive_group()
    which.add_argument("--stage", metavar="NAME", action="append", default=[],
                       help="only this view (repeatable): a stage (program, recursive, loops, "
                            "kernels, opencl), a pass name, inputs, linearized or run")
    which.add_argument("--all", action="store_true", help="every view (the default)")
    run = views.add_mutually_exclusive_group()
    run.add_argument("--device", metavar="SPEC", help="OpenCL device for the measured run")
    run.add_argument("--no-run", action="store_true", help="leave the measured run out")
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", metavar="DIR",
                        help="folder to write (default viz-out/MODEL)")
    output.add_argument("--format", choices=PICTURE_FORMATS, default=None,
                        help="picture files: svg (default), png, dot, or html (index.html "
                             "only); index.html is always written")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


def selected_views(names: Sequence[str]) -> set[str] | None:
    """The view names that `--stage` asked for (None: all); a usage error for unknown ones."""
    from cortexlang.viz.explorer import view_names

    if not names:
        return None
    known = view_names()
    chosen = {_ALIASES.get(name, name) for name in names}
    unknown = sorted(chosen - set(known))
    if unknown:
        raise UsageError(Diagnostic("E0704", f"unknown view `{unknown[0]}`", None, "",
                                    "views: " + ", ".join(known)))
    return chosen


def choose_batch(structures: Sequence[Structure], count: int,
                 max_nodes: int = MAX_BATCH_NODES) -> list[Structure]:
    """The first `count` structures, stopping before the nodes pass `max_nodes` (but at least
    one structure), so that the pictures of the batch stay readable."""
    batch: list[Structure] = []
    nodes = 0
    for structure in structures[:count]:
        if batch and nodes + structure.num_nodes > max_nodes:
            break
        batch.append(structure)
        nodes += structure.num_nodes
    return batch


def execute(args: argparse.Namespace) -> int:
    """Explore the model and write the folder; see the module docstring for exit codes."""
    from pathlib import Path

    from cortexlang.inputs.weights import init_weights
    from cortexlang.passes.plan_kernels import DeviceLimits
    from cortexlang.viz.dot import INSTALL_HINT
    from cortexlang.viz.explorer import explore
    from cortexlang.viz.write import write_exploration

    wanted = selected_views(args.stage)
    started = time.perf_counter()
    program = load_model(args.model, args)
    parse_seconds = time.perf_counter() - started
    options = compiler_options(args)
    loading = argparse.Namespace(trees=args.trees, synthetic=args.synthetic, vocab=args.vocab,
                                 format=args.trees_format, limit=None, seed=args.seed)
    check_input_arguments(loading)
    if args.device is not None and not args.no_run:
        chosen_device(args.device)
    if args.trees is None and args.synthetic is None:
        loading.synthetic = args.batch
    inputs = load_inputs(loading, program)
    batch = choose_batch(inputs.structures, args.batch, args.max_nodes)
    asked = min(args.batch, len(inputs.structures))
    if len(batch) < asked:
        from cortexlang.commands.common import stderr_console

        needed = sum(structure.num_nodes for structure in inputs.structures[:asked])
        stderr_console().print(
            f"warning: drawing {len(batch)} of the {asked} structures --batch {args.batch} "
            f"asks for: the batch stops before {args.max_nodes} nodes (--max-nodes); "
            f"--max-nodes {needed} draws all {asked}", markup=False)
    device, problem, limits = None, "", DeviceLimits()
    if args.no_run:
        problem = "--no-run"
    elif wanted is None or "run" in wanted:
        from cortexlang.runtime.devices import select_device
        from cortexlang.runtime.execute import device_limits

        try:
            device = select_device(args.device, profiling=True)
            limits = device_limits(device)
        except EnvironmentProblem:
            if args.device is not None:
                raise
            problem = "no working OpenCL device (see `cortexlang devices`)"
            device = None
    if device is not None:
        check_host_memory(program, np.dtype(np.float32), initialised=True,
                          num_nodes=sum(structure.num_nodes for structure in batch),
                          num_structures=len(batch))
    weights = init_weights(program.params, args.seed) if device is not None else None
    exploration = explore(program, options, limits, structures=batch,
                          hidden_structures=len(inputs.structures) - len(batch),
                          device=device, device_problem=problem, weights=weights,
                          wanted=(lambda name: True) if wanted is None
                          else (lambda name: name in wanted), parse_seconds=parse_seconds,
                          use_cache=not args.no_cache)
    views = [view for view in exploration.views if wanted is None or view.name in wanted]
    directory = Path(args.output) if args.output else Path("viz-out") / Path(args.model).stem
    disabled = [name for name in options.names() if not getattr(options, name)]
    details = (f"{program.path}; optimisations off: {', '.join(disabled) or 'none'}; inputs: "
               f"{len(batch)} of {inputs.description}")
    written = write_exploration(exploration, directory, args.format or "svg",
                                title=f"cortexlang viz: {program.name}", details=details,
                                views=views)
    console = stdout_console()
    for view in views:
        seconds = "" if view.seconds is None else f"{view.seconds * 1e3:8.2f} ms"
        console.print(f"{view.number:02d} {view.name:<22} {view.status:<11} {seconds:>11}  "
                      f"{view.note}", markup=False)
    console.print(f"wrote {len(written.all_files())} files to {directory}; open "
                  f"{directory / written.index}", markup=False)
    if written.failures:
        for slug, message in written.failures:
            console.print(f"warning: Graphviz failed on {slug} (a bug in cortexlang's "
                          f"renderers; its DOT text was written): {message}", markup=False)
    if written.graphviz_missing:
        if args.format in ("svg", "png", "html"):
            raise EnvironmentProblem(Diagnostic(
                "E0610", f"Graphviz (`dot`) is not installed: wrote the DOT text to "
                f"{directory} instead of {args.format} pictures", None, "", INSTALL_HINT))
        from cortexlang.commands.common import stderr_console

        stderr_console().print(f"note: Graphviz (`dot`) is not installed, so the pictures "
                               f"were written as DOT text; {INSTALL_HINT}", markup=False)
    return 70 if written.failures else 0


COMMAND = Command(
    name="viz",
    summary="draw every stage, pass and input of a model (pictures and an HTML explorer)",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

"""`cortexlang compile MODEL.cx`: print one stage of the lowering, or every step's result.

    --emit STAGE             the stage to print: program, recursive, loops, kernels, opencl
                             (default) or executable (what the runtime runs)
    --print-after STEP       the IR right after one pipeline step, or after the step that
                             carries out an optimisation of Options.names() (repeatable)
    --print-after-all        the IR after every step, each under a header
    --print-changed          like --print-after-all, but only steps that changed the IR;
                             for each other step, one line saying why it did not
    -o FILE                  write the text to FILE instead of stdout
    -o MODEL.cxa             write the compiled artifact instead: the checked source, sizes,
                             options, OpenCL, weights (--weights, or random from --seed) and
                             vocabulary in one file, which `cortexlang run MODEL.cxa` and
                             `cortexlang.load("MODEL.cxa")` run without compiling again

The kernel plan depends on the device's limits: they come from `--device` (or the device
`cortexlang devices` would choose); `--generic` uses fixed, device-independent limits.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cortexlang import atomic
from cortexlang.artifact import is_artifact_path
from cortexlang.commands import Command
from cortexlang.commands.common import (
    add_compiler_options,
    add_model_argument,
    add_size_options,
    compiler_options,
    load_model,
    overrides_of,
    stderr_console,
)
from cortexlang.commands.loading import add_mapping_options, load_weights_for, mapping_of, vocab_of
from cortexlang.commands.validate import chosen_device
from cortexlang.errors import Diagnostic, EnvironmentProblem, UsageError
from cortexlang.passes.pipeline import (
    STAGES,
    STEP_NAMES,
    Options,
    Recorder,
    Source,
    format_ir,
    run_pipeline,
    step_of,
)
from cortexlang.passes.plan_kernels import DeviceLimits

# What `--print-after` accepts: every step, and every optimisation (see `step_of`).
PRINTABLE = STEP_NAMES + tuple(name for name in Options.names() if name not in STEP_NAMES)


def configure(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    add_size_options(parser)
    add_compiler_options(parser)
    parser.add_argument("--emit", choices=STAGES, default="opencl",
                        help="the stage to print (default opencl)")
    parser.add_argument("--print-after", metavar="STEP", action="append", default=[],
                        help="print the IR after this step, or after the step that carries "
                             "out this optimisation: " + ", ".join(PRINTABLE))
    parser.add_argument("--print-after-all", action="store_true",
                        help="print the IR after every step")
    parser.add_argument("--print-changed", action="store_true",
                        help="print the IR after every step that changed it, and why "
                             "each other step did not")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--device", metavar="SPEC", help="plan kernels for this device")
    target.add_argument("--generic", action="store_true",
                        help="plan kernels for fixed, device-independent limits")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to FILE; a name ending in .cxa writes the artifact")
    group = parser.add_argument_group("artifact (-o MODEL.cxa)")
    group.add_argument("--weights", metavar="W",
                       help="the weights to put in the artifact (.npz, .safetensors, .pt)")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of random weights when --weights is left out (default 0)")
    group.add_argument("--vocab", metavar="FILE",
                       help="the vocabulary (default: the one saved with --weights)")
    group.add_argument("--unknown", metavar="TOKEN|ID", default="<unk>",
                       help="the unknown token of --vocab, or its id (default <unk>)")
    add_mapping_options(group)


def device_limits_for(args: argparse.Namespace) -> DeviceLimits:
    """Limits of the chosen device; generic limits with a note when there is no device."""
    if args.generic:
        return DeviceLimits()
    try:
        from cortexlang.runtime.devices import select_device
        from cortexlang.runtime.execute import device_limits

        if args.device is not None:
            chosen_device(args.device)  # a spec that names no device is a usage error
        return device_limits(select_device(args.device))
    except EnvironmentProblem:
        if args.device is not None:
            raise
        stderr_console().print("note: no working OpenCL device; planning kernels for generic "
                               "limits (see `cortexlang devices`)", markup=False)
        return DeviceLimits()


def _header(step: str, stage: str, seconds: float, changed: bool) -> str:
    state = "changed" if changed else "unchanged"
    return f"=== after {step} ({stage}; {state}; {seconds * 1e3:.2f} ms) ==="


def _wanted_steps(names: list[str]) -> set[str]:
    """The steps `--print-after` names (a step, or an optimisation: its step)."""
    steps: set[str] = set()
    for name in names:
        step = step_of(name)
        if step is None:
            raise UsageError(Diagnostic("E0703", f"unknown pipeline step `{name}`", None, "",
                                        "steps and optimisations: " + ", ".join(PRINTABLE)))
        steps.add(step.name)
    return steps


def execute(args: argparse.Namespace) -> int:
    wanted = _wanted_steps(args.print_after)
    if args.output and is_artifact_path(args.output):
        program = load_model(args.model, args)
        return _write_artifact(args, program, compiler_options(args))
    options = compiler_options(args)
    if args.weights is not None or args.vocab is not None:
        raise UsageError(Diagnostic("E0011", "--weights and --vocab go into an artifact",
                                    None, "", "write one with -o MODEL.cxa"))
    recorder = Recorder()
    # The pipeline starts from the source, so the frontend is timed and printable like any
    # other step (`--print-after parse_and_check`).
    source = Source(args.model, overrides=tuple(overrides_of(args).items()))
    result: Any = run_pipeline(source, options, lambda: device_limits_for(args), [recorder])
    program = result.program
    parts: list[str] = []
    if args.print_after or args.print_after_all or args.print_changed:
        # In pipeline order: a step that did not run is listed where it would have run.
        skipped = dict(recorder.skipped)
        records = {record.step: record for record in recorder.records}
        for name in STEP_NAMES:
            if name in skipped:
                if name in wanted or args.print_changed:
                    parts.append(f"=== {name} did not run: {skipped[name]} ===")
                continue
            record = records.get(name)
            if record is None:
                continue
            if args.print_after_all or record.step in wanted or \
                    (args.print_changed and record.changed):
                parts.append(_header(record.step, record.stage, record.seconds, record.changed))
                parts.append(format_ir(record.stage, record.ir).rstrip("\n"))
            elif args.print_changed:
                parts.append(f"=== {record.step} unchanged: {record.reason} ===")
    else:
        product = {"program": program, "recursive": result.recursive, "loops": result.loops,
                   "kernels": result.kernels, "opencl": result.source,
                   "executable": result.executable}[args.emit]
        parts.append(format_ir(args.emit, product).rstrip("\n"))
    text = "\n".join(parts) + "\n"
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _write_artifact(args: argparse.Namespace, program: Any, options: Any) -> int:
    """Compile for the chosen device (building its kernels, so that runs find them in the
    cache), and write the artifact atomically."""
    import numpy as np

    from cortexlang.artifact import write_artifact
    from cortexlang.commands.common import overrides_of
    from cortexlang.inputs.provenance import choose_vocab

    if args.print_after or args.print_after_all or args.print_changed:
        raise UsageError(Diagnostic("E0011", "--print-after* print stages; an artifact is "
                                    "a file", None, "", "write the artifact and print apart"))
    if args.weights is None and not mapping_of(args).is_identity():
        raise UsageError(Diagnostic("E0011", "--strip-prefix, --rename and --transpose apply "
                                    "to --weights", None, "", "name the weights file"))
    args.trees = None
    choice = load_weights_for(args, program, np.dtype("float32"))
    reads = any(item.kind == "token" for item in program.inputs)
    vocab = choose_vocab(choice, vocab_of(args), args.vocab, reads_tokens=reads,
                         from_inputs=True).vocab
    limits = device_limits_for(args)
    result = run_pipeline(program, options, limits)
    built = "planned for generic limits, not built"
    if not args.generic:
        try:
            from cortexlang.runtime.devices import select_device
            from cortexlang.runtime.execute import CompiledModel

            device = select_device(args.device)
            model = CompiledModel(result, device)
            built = (f"built for {device.info.device_name}"
                     + (" (from the cache)" if model.cache_hit else ""))
        except EnvironmentProblem:
            if args.device is not None:
                raise
            built = "not built: no working OpenCL device"
    sizes = overrides_of(args)
    manifest = write_artifact(args.output, program,
                              overrides={**dict(program.sizes), **sizes}, options=options,
                              limits=limits, kernel_source=result.source,
                              weights=choice.weights, vocab=vocab, init_seed=choice.seed)
    stderr_console().print(
        f"wrote {args.output}: {program.name}, weights {choice.description}, "
        f"vocabulary {'none' if vocab is None else vocab.describe()}, kernels {built}; "
        f"{len(manifest['sha256'])} members checked by SHA-256", markup=False)
    return 0


COMMAND = Command(
    name="compile",
    summary="compile a model and print a stage of its lowering",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

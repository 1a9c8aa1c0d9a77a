"""`cortexlang compile MODEL.cx`: print one stage of the lowering, or every step's result.

    --emit STAGE             the stage to print: program, recursive, loops, kernels, opencl
                             (default) or executable (what the runtime runs)
    --print-after STEP       the IR right after one pipeline step (repeatable)
    --print-after-all        the IR after every step, each under a header
    --print-changed          like --print-after-all, but only steps that changed the IR
    -o FILE                  write the text to FILE instead of stdout

The kernel plan depends on the device's limits: they come from `--device` (or the device
`cortexlang devices` would choose); `--generic` uses fixed, device-independent limits.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cortexlang import atomic
from cortexlang.commands import Command
from cortexlang.commands.common import (
    add_compiler_options,
    add_model_argument,
    add_size_options,
    compiler_options,
    load_model,
    stderr_console,
)
from cortexlang.errors import Diagnostic, EnvironmentProblem, UsageError
from cortexlang.passes.pipeline import STAGES, STEP_NAMES, Recorder, format_ir, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits


def configure(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    add_size_options(parser)
    add_compiler_options(parser)
    parser.add_argument("--emit", choices=STAGES, default="opencl",
                        help="the stage to print (default opencl)")
    parser.add_argument("--print-after", metavar="STEP", action="append", default=[],
                        help="print the IR after this step: " + ", ".join(STEP_NAMES))
    parser.add_argument("--print-after-all", action="store_true",
                        help="print the IR after every step")
    parser.add_argument("--print-changed", action="store_true",
                        help="print the IR after every step that changed it")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--device", metavar="SPEC", help="plan kernels for this device")
    target.add_argument("--generic", action="store_true",
                        help="plan kernels for fixed, device-independent limits")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE")


def device_limits_for(args: argparse.Namespace) -> DeviceLimits:
    """Limits of the chosen device; generic limits with a note when there is no device."""
    if args.generic:
        return DeviceLimits()
    try:
        from cortexlang.runtime.devices import select_device
        from cortexlang.runtime.execute import device_limits

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


def execute(args: argparse.Namespace) -> int:
    unknown = [step for step in args.print_after if step not in STEP_NAMES]
    if unknown:
        raise UsageError(Diagnostic("E0703", f"unknown pipeline step `{unknown[0]}`", None, "",
                                    "steps: " + ", ".join(STEP_NAMES)))
    program = load_model(args.model, args)
    options = compiler_options(args)
    recorder = Recorder()
    result: Any = run_pipeline(program, options, device_limits_for(args), [recorder])
    parts: list[str] = []
    if args.print_after or args.print_after_all or args.print_changed:
        for record in recorder.records:
            wanted = (args.print_after_all or record.step in args.print_after
                      or (args.print_changed and record.changed))
            if wanted:
                parts.append(_header(record.step, record.stage, record.seconds, record.changed))
                parts.append(format_ir(record.stage, record.ir).rstrip("\n"))
        skipped = [step for step in args.print_after
                   if step not in {record.step for record in recorder.records}]
        for step in skipped:
            parts.append(f"=== {step} did not run: its optimisation is switched off ===")
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


COMMAND = Command(
    name="compile",
    summary="compile a model and print a stage of its lowering",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

"""`cortexlang bench`: latency of the compiled models against the baselines, measured here.

    --models M [M ...]   treelstm treegru treefc mvrnn dagrnn (default: all five)
    --hidden H [H ...]   hidden sizes (default 256 512; MV-RNN runs at a quarter)
    --batch B [B ...]    structures per batch (default 1 10)
    --quick              seconds: TreeLSTM and DAG-RNN at H=64, interpreter and numpy
                         only, an ablation of two optimisations (what CI runs); the
                         numbers are indicative, and the report says so
    --trees FILE         trees to run on (default: SST test trees beside the checkout, else
                         the bundled SST-shaped sample)
    --json FILE          the host, device limits, every cell, ablation, warnings, skips
    --chart FILE         a PNG of latency per cell (default bench.png beside --json, if any)
    --wide               the table with every implementation (wider than 100 columns)
    --vector-width W     plan kernels and probe the peak as if the device preferred float W
                         (1, 2, 4, 8 or 16): kernels planned for another machine still run
    --max-passes N       timed passes at most while waiting for stable medians (default 10)

It measures the device's own limits first (peak GFLOP/s of a good matrix product, memory
bandwidth, launch latency) so that every cell can be compared with its floor.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cortexlang import atomic
from cortexlang.commands import Command
from cortexlang.commands.common import stderr_console, stdout_console
from cortexlang.commands.validate import chosen_device, existing_file, usage
from cortexlang.errors import Diagnostic, InputError


def configure(parser: argparse.ArgumentParser) -> None:
    from cortexlang.bench.config import MODELS

    parser.add_argument("--models", nargs="+", choices=MODELS, metavar="MODEL")
    parser.add_argument("--hidden", nargs="+", type=int, metavar="H")
    parser.add_argument("--batch", nargs="+", type=int, metavar="B")
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    parser.add_argument("--trees", metavar="FILE", help="trees to run on")
    parser.add_argument("--device", metavar="SPEC", help="OpenCL device")
    parser.add_argument("--passes", type=int, metavar="N", help="timed passes over the batches")
    parser.add_argument("--no-baselines", action="store_true",
                        help="time cortexlang and the interpreter only")
    parser.add_argument("--no-ablation", action="store_true", help="skip the ablation table")
    parser.add_argument("--json", metavar="FILE", help="write one record per cell")
    parser.add_argument("--chart", metavar="FILE", help="write a PNG chart")
    parser.add_argument("--wide", action="store_true", help="every implementation's column")
    parser.add_argument("--vector-width", type=int, choices=(1, 2, 4, 8, 16), metavar="W",
                        help="force the device's preferred float vector width")
    parser.add_argument("--max-passes", type=int, metavar="N",
                        help="timed passes at most while waiting for stable medians")


# Bounds of the measured grid: at H = 4096 a TreeLSTM already holds 0.7 GB of weights, and
# 4096 SST trees are 150,000 nodes a batch; beyond them a bench measures the allocator.
MAX_HIDDEN = 4096
MAX_BATCH = 4096
MAX_PASSES = 1000


def _check_arguments(args: argparse.Namespace) -> None:
    """Usage errors (exit 2) for sizes, counts, files and devices out of range, before any
    measurement starts."""
    for flag, values, limit in (("--hidden", args.hidden, MAX_HIDDEN),
                                ("--batch", args.batch, MAX_BATCH),
                                ("--passes", None if args.passes is None else [args.passes],
                                 MAX_PASSES),
                                ("--max-passes", None if args.max_passes is None
                                 else [args.max_passes], MAX_PASSES)):
        for value in values or ():
            if not 1 <= value <= limit:
                raise usage("E0021", f"{flag} {value}: the bench measures values from 1 to "
                            f"{limit}", f"choose {flag} between 1 and {limit}")
    existing_file("--trees", args.trees)
    if args.device is not None:
        chosen_device(args.device)


def execute(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from cortexlang.bench.config import BenchConfig
    from cortexlang.bench.report import print_report, write_chart
    from cortexlang.bench.suite import run_bench

    _check_arguments(args)
    config = BenchConfig.quick_config() if args.quick else BenchConfig()
    changes = {"models": args.models, "hiddens": args.hidden, "batches": args.batch,
               "passes": args.passes, "max_passes": args.max_passes,
               "vector_width": args.vector_width}
    overrides: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value
                                 for key, value in changes.items() if value}
    config = replace(config, **overrides, trees=args.trees, device=args.device,
                     baselines=not args.no_baselines, ablation=not args.no_ablation)
    errors = stderr_console()
    report = run_bench(config, log=lambda line: errors.print(line, markup=False))
    console = stdout_console()
    # The compact table fits 100 columns; never squeeze the wide one's numbers.
    console.width = max(console.width, 200 if args.wide else 100)
    print_report(report, console, wide=args.wide)
    for target in (args.json, args.chart):
        if target:
            try:
                Path(target).resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise InputError(Diagnostic(
                    "E0570", f"cannot write {target}: {error.strerror or error}", None, "",
                    "check that the directory can be created and written")) from None
    if args.json:
        atomic.write_text(args.json, report.to_json() + "\n")
    chart = args.chart or (str(Path(args.json).with_suffix(".png")) if args.json else None)
    if chart:
        written = write_chart(report, chart)
        errors.print(f"chart: {written}" if written else
                     "chart skipped: matplotlib is not installed (make bench installs it)",
                     markup=False)
    return 0


COMMAND = Command(
    name="bench",
    summary="measure latency against baselines, the machine's limits and an ablation",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

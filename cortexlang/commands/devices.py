"""`cortexlang devices`: every OpenCL device, whether it can build and run a kernel, and which
one a run would choose.

The exit code is 0 when a device can be chosen and 3 (an environment problem) when none can,
so scripts can ask whether the compiled backend will work here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from cortexlang.commands import Command
from cortexlang.errors import EnvironmentProblem


def configure(parser: argparse.ArgumentParser) -> None:
    """--device, --cpu-first and --json."""
    parser.add_argument("--device", metavar="SPEC",
                        help="the device spec to try: \"P:D\", \"P\", or part of a name")
    parser.add_argument("--cpu-first", action="store_true",
                        help="prefer a CPU device when no spec is given")
    parser.add_argument("--json", action="store_true",
                        help="print the devices and the choice as JSON")


def execute(args: argparse.Namespace) -> int:
    """Print the device report; exit 0 when a device can be chosen, else 3."""
    # Imported here: pyopencl loads the OpenCL driver, which no other command needs.
    from cortexlang.runtime.devices import devices_report, probe_devices, select_device

    prefer_gpu = not args.cpu_first
    if not args.json:
        print(devices_report(args.device, prefer_gpu=prefer_gpu), end="")
    try:
        chosen: str | None = select_device(args.device, prefer_gpu=prefer_gpu).info.spec
    except EnvironmentProblem:
        chosen = None  # the report above already says why
    if args.json:
        print(json.dumps({"devices": [dataclasses.asdict(info) for info in probe_devices()],
                          "selected": chosen}, indent=2))
    return 0 if chosen is not None else EnvironmentProblem.exit_code

COMMAND = Command(
    name="devices",
    summary="list OpenCL devices and whether each works",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

"""Usage checks of the command line of a run: ranges, files that must exist, combinations.

Everything here is a usage error (`UsageError`, exit 2) found before any work starts:

    E0020  a file named by a flag does not exist, or is a directory
    E0021  a count or seed out of range (--synthetic, --limit, --seed)
    E0022  a flag that does not apply to the chosen backend (--device with the interpreter)
    E0601  --device names no OpenCL device (the runtime's code, as a usage error here: the
           spec is what is wrong, not the machine)
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from cortexlang.errors import Diagnostic, EnvironmentProblem, UsageError

if TYPE_CHECKING:
    from cortexlang.runtime.devices import DeviceInfo

# The most synthetic structures one run makes: a million SST-shaped trees are about 37 million
# nodes, far beyond what one run needs; larger counts would spend minutes and gigabytes on
# generating inputs before the first node is computed.
MAX_SYNTHETIC = 1_000_000
STANDARD_INPUT = "-"


def usage(code: str, message: str, hint: str = "") -> UsageError:
    """A usage error (exit 2) with one diagnostic."""
    return UsageError(Diagnostic(code, message, None, "", hint))


def existing_file(flag: str, path: str | None) -> None:
    """E0020 unless `path` (given with `flag`) is an existing file; None and "-" pass."""
    if path is None or path == STANDARD_INPUT:
        return
    if os.path.isdir(path):
        raise usage("E0020", f"{flag} {path}: is a directory, not a file",
                    f"name the file inside it with {flag}")
    if not os.path.exists(path):
        raise usage("E0020", f"{flag} {path}: no such file",
                    "check the path (relative paths start at the current directory)")


def check_input_arguments(args: argparse.Namespace) -> None:
    """--synthetic, --limit and --seed in range; --trees and --vocab files that exist."""
    synthetic = getattr(args, "synthetic", None)
    if synthetic is not None and not 1 <= synthetic <= MAX_SYNTHETIC:
        raise usage("E0021", f"--synthetic {synthetic}: the count of synthetic inputs runs "
                    f"from 1 to {MAX_SYNTHETIC}",
                    "run several smaller batches (with different --seed values) for more")
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise usage("E0021", f"--limit {limit}: a run uses at least 1 structure",
                    "leave --limit out to use every structure")
    seed = getattr(args, "seed", 0)
    if seed is not None and seed < 0:
        raise usage("E0021", f"--seed {seed}: a seed is a whole number >= 0",
                    "use --seed 0 (the default) or any positive number")
    existing_file("--trees", getattr(args, "trees", None))
    existing_file("--vocab", getattr(args, "vocab", None))
    existing_file("--weights", getattr(args, "weights", None))


def synthetic_count(args: argparse.Namespace) -> int | None:
    """How many synthetic structures to make: --synthetic, or fewer when --limit is smaller
    (the rest would be dropped unseen, so they are never generated)."""
    if args.synthetic is None:
        return None
    return args.synthetic if args.limit is None else min(args.synthetic, args.limit)


def check_device_argument(backend: str, device: str | None) -> None:
    """E0022 for --device with a backend that uses no device."""
    if device is not None and backend != "compiled":
        raise usage("E0022", f"--device applies to the compiled backend, not to {backend}",
                    "leave --device out, or use --backend compiled")


def chosen_device(spec: str | None) -> DeviceInfo:
    """The device `spec` selects, as `select_device` chooses it. A spec that names no
    device is a usage error (E0601, exit 2); no working device at all stays an environment
    problem (exit 3)."""
    from cortexlang.runtime.devices import select_device

    try:
        return select_device(spec).info
    except EnvironmentProblem as problem:
        if spec is not None and problem.codes == ["E0601"]:
            raise UsageError(problem.diagnostics) from None
        raise

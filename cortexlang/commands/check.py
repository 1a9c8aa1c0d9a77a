"""`cortexlang check MODEL.cx`: report every error in a model, or say in one line that it is OK.

Errors go to stderr, each with its code, location and a caret under the source (exit 1).
On success one line names the model and its parameters, or nothing at all with --quiet.
"""

from __future__ import annotations

import argparse

import numpy as np

from cortexlang.commands import Command
from cortexlang.commands.common import (
    add_model_argument,
    add_size_options,
    load_model,
    stdout_console,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """The model, -D sizes and --quiet."""
    add_model_argument(parser)
    add_size_options(parser)
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing on success (the exit code tells)")


def execute(args: argparse.Namespace) -> int:
    """Check the model; raises CortexError with every problem, else prints one line."""
    program = load_model(args.model, args)
    if not args.quiet:
        values = sum(int(np.prod(param.shape, dtype=np.int64)) for param in program.params)
        leaf = "" if program.leaf_explicit else ", leaves run the internal rule"
        stdout_console().print(
            f"ok: {program.name} ({program.path}): {program.structure.kind}, "
            f"{len(program.params)} parameters ({values} values){leaf}", markup=False)
    return 0


COMMAND = Command(
    name="check",
    summary="check a model and report all its errors",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

"""The subcommands of `cortexlang`, one module each.

Every command module defines `COMMAND`, a `Command`: its name, a one-line summary, a function
that adds its arguments to an argparse parser, and a function that runs it and returns the
exit code. `cortexlang.cli` builds the parser from `COMMAND_MODULES` and dispatches; to add a
command, write `cortexlang/commands/NAME.py` and add "NAME" below.

Commands raise `CortexError`s for the user's mistakes; the CLI renders them and picks the
exit code. Shared option groups (sizes, inputs, weights) live in `common` and `loading`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "check",
    "weights",
    "devices",
    "compile",
    "bench",
    "viz",
    "serve",
)


@dataclass(frozen=True)
class Command:
    """name: the subcommand; summary: one line for `cortexlang --help`; description: the
    longer text of `cortexlang NAME --help`; configure adds the arguments; execute runs the
    parsed arguments and returns the exit code (0 on success)."""

    name: str
    summary: str
    configure: Callable[[argparse.ArgumentParser], None]
    execute: Callable[[argparse.Namespace], int]
    description: str = ""

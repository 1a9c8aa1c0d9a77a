"""Helpers every command shares: size overrides (-D), consoles, and reading a model."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from cortexlang.passes.pipeline import Options
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.frontend.check import load_program
from cortexlang.ir import checked as ir

_OVERRIDE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9]+)")


def size_override(text: str) -> tuple[str, int]:
    """argparse type of `-D NAME=VALUE`; a malformed one is a usage error (exit 2)."""
    match = _OVERRIDE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with a whole number, such as H=64, not {text!r}")
    return match.group(1), int(match.group(2))


def positive_integer(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(text)


def setting_pair(text: str) -> tuple[str, str]:
    """argparse type: a backend setting NAME=VALUE."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name.strip(), value


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """`-D NAME=VALUE`, repeatable, into `args.sizes` as (name, value) pairs."""
    parser.add_argument("-D", dest="sizes", metavar="NAME=VALUE", type=size_override,
                        action="append", default=[],
                        help="override a size of the model, e.g. -D H=64 (repeatable)")


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional model path, into `args.model`."""
    parser.add_argument("model", metavar="MODEL.cx", help="the model source file")


def overrides_of(args: argparse.Namespace) -> dict[str, int]:
    """The -D overrides, the last one winning when a name repeats."""
    return dict(args.sizes)


def load_model(path: str, args: argparse.Namespace) -> ir.CheckedProgram:
    """Parse and check a model with the command line's size overrides.

    Raises `CortexError` with every problem in the program, `UsageError` for an unknown -D.
    """
    return load_program(path, overrides_of(args))


class _Console(Console):
    """A rich console that leaves a closed pipe (`cortexlang run ... | head`) to the CLI,
    which ends quietly with exit 0, instead of exiting 1 from inside rich."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def stdout_console() -> Console:
    """A console on the current stdout (tests replace sys.stdout; rich follows it)."""
    return _Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    """A console on the current stderr, for progress bars."""
    return _Console(stderr=True, highlight=False, soft_wrap=True)


def expressions(expression: ir.TypedExpr) -> Iterator[ir.TypedExpr]:
    """`expression` and every expression inside it, outermost first (iteratively)."""
    pending: list[ir.TypedExpr] = [expression]
    while pending:
        current = pending.pop()
        yield current
        for field in dataclasses.fields(current):
            value = getattr(current, field.name)
            if isinstance(value, tuple):
                pending.extend(part for part in value if _is_expression(part))
            elif _is_expression(value):
                pending.append(value)


def _is_expression(value: object) -> bool:
    return isinstance(value, (ir.Const, ir.Param, ir.Lookup, ir.NodeInput, ir.NumChildren,
                              ir.State, ir.Local, ir.Unary, ir.Binary, ir.MatMul, ir.Concat,
                              ir.Slice, ir.ChildReduce, ir.Select))


def program_expressions(program: ir.CheckedProgram) -> Iterator[ir.TypedExpr]:
    """Every expression of both rules and every output."""
    for rule in (program.leaf, program.internal):
        for statement in rule.statements:
            yield from expressions(statement.value)
    for output in program.outputs:
        yield from expressions(output.value)


def vocabulary_capacity(program: ir.CheckedProgram) -> int | None:
    """How many word ids the model can look up: the rows of the smallest table indexed by a
    token directly (`Emb[word(n)]`), or None when no table is (`EmbM[word(n) % M]` takes any
    id). This is the model's vocabulary size, whatever the size is called."""
    rows = [program.param(expression.param).shape[0]
            for expression in program_expressions(program)
            if isinstance(expression, ir.Lookup)
            and isinstance(expression.index, ir.TokenIndex)]
    return min(rows) if rows else None


def vector_inputs(program: ir.CheckedProgram) -> Sequence[ir.InputInfo]:
    """The model's per-node vector inputs (grid features), in declaration order."""
    return [item for item in program.inputs if item.kind == "vector"]


def format_seconds(seconds: float) -> str:
    """A duration for people: 850 us, 12.3 ms, 4.56 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def add_compiler_options(parser: argparse.ArgumentParser) -> None:
    """-O N, --disable NAME, --enable NAME (repeatable) and --no-cache: which optimisations
    run."""
    from cortexlang.passes.pipeline import MAX_NODE_TILE, Options

    group = parser.add_argument_group("compiler")
    group.add_argument("-O", dest="opt_level", metavar="N", type=int, choices=(0, 1, 2, 3),
                       help="optimisation level 0-3 (default 3: everything)")
    group.add_argument("--disable", metavar="NAME", action="append", default=[],
                       help="switch one optimisation off (repeatable); names: "
                            + ", ".join(Options.names()))
    group.add_argument("--enable", metavar="NAME", action="append", default=[],
                       help="switch one optimisation on (repeatable; unroll_recursion is the "
                            "one off by default)")
    group.add_argument("--no-cache", action="store_true",
                       help="rebuild the OpenCL kernels instead of using the build cache")
    group.add_argument("--node-tile", metavar="N", type=int,
                       help=f"nodes each work-item computes together, 1 to {MAX_NODE_TILE} "
                            f"(default {Options().node_tile})")


def compiler_settings(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The compiled backend's settings for the options of `add_compiler_options`."""
    settings: list[tuple[str, str]] = []
    if args.opt_level is not None:
        settings.append(("level", str(args.opt_level)))
    settings += [("disable", name) for name in args.disable]
    settings += [("enable", name) for name in args.enable]
    if args.no_cache:
        settings.append(("cache", "off"))
    tile = node_tile(args)
    if tile is not None:
        settings.append(("node_tile", str(tile)))
    return tuple(settings)


def node_tile(args: argparse.Namespace) -> int | None:
    """`--node-tile`, or None when not given; outside 1..MAX_NODE_TILE it is a usage error
    (E0705, exit 2)."""
    from cortexlang.passes.pipeline import MAX_NODE_TILE, node_tile_problem

    tile: int | None = args.node_tile
    problem = None if tile is None else node_tile_problem(tile)
    if problem is not None:
        raise UsageError(Diagnostic(
            "E0705", f"--node-tile {tile}: a node tile {problem}", None,
            "", f"use a --node-tile from 1 (one node per work-item) to {MAX_NODE_TILE}; "
            "the default is 4"))
    return tile


def compiler_options(args: argparse.Namespace) -> Options:
    """The compiler Options for the options of `add_compiler_options` (usage errors for
    unknown optimisation names and a node tile below 1)."""
    from dataclasses import replace

    from cortexlang.passes.pipeline import Options

    options = Options.level(args.opt_level) if args.opt_level is not None else Options()
    options = options.without(*args.disable).with_enabled(*args.enable)
    tile = node_tile(args)
    if tile is not None:
        options = replace(options, node_tile=tile)
    return options

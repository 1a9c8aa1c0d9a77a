"""`cortexlang weights`: make a model's weights, or inspect and validate a weights file.

    cortexlang weights MODEL.cx --init [--seed S] -o W.npz [-D NAME=VALUE ...]
        initialise every parameter with its declared initialiser, deterministically in the
        seed, and save them (atomically) as an .npz archive;

    cortexlang weights W.npz [--model MODEL.cx [-D ...]] [--json]
        list the parameters of a weights file (shape, dtype, mean, std, min, max) and, with
        a model, check that they are exactly the model's parameters (exit 1 if not).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

import numpy as np

from cortexlang import atomic
from cortexlang.commands import Command
from cortexlang.commands.capacity import check_host_memory
from cortexlang.commands.common import add_size_options, load_model, stdout_console
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs import input_error
from cortexlang.inputs.weights import (
    describe_weights,
    init_weights,
    load_weights,
    read_weights_file,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """PATH, --init, --seed, -o, --model, --json and -D sizes."""
    parser.add_argument("path", metavar="MODEL.cx|W.npz",
                        help="a model (with --init) or a weights file (to inspect)")
    parser.add_argument("--init", action="store_true",
                        help="initialise the weights of the model PATH")
    parser.add_argument("--seed", type=int, default=0, help="seed for --init (default 0)")
    parser.add_argument("-o", "--output", metavar="W.npz", help="where --init saves")
    parser.add_argument("--model", metavar="MODEL.cx",
                        help="validate the weights file against this model")
    parser.add_argument("--json", action="store_true",
                        help="print the parameters as JSON")
    add_size_options(parser)


def execute(args: argparse.Namespace) -> int:
    """Initialise and save (--init), or list and optionally validate a weights file."""
    if args.init:
        return _initialise(args)
    return _inspect(args)


def _usage(message: str, hint: str) -> UsageError:
    return UsageError(Diagnostic("E0011", message, None, "", hint))


def _initialise(args: argparse.Namespace) -> int:
    if args.output is None:
        raise _usage("--init needs -o W.npz", "name the file to save the weights in")
    if args.model is not None:
        raise _usage("--model is for inspecting a weights file",
                     "with --init, the model is the first argument")
    program = load_model(args.path, args)
    check_host_memory(program, np.dtype(np.float32), initialised=True, num_nodes=0,
                      num_structures=0)
    weights = init_weights(program.params, args.seed, dtype=np.float32)
    atomic.save_npz(args.output, weights)
    if args.json:
        print(json.dumps({"saved": args.output, "model": program.name, "seed": args.seed,
                          "parameters": _statistics(weights)}, indent=2))
    else:
        count = sum(int(value.size) for value in weights.values())
        stdout_console().print(f"saved {len(weights)} parameters ({count} values) of "
                               f"{program.name}, seed {args.seed}, to {args.output}",
                               markup=False)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    if args.output is not None:
        raise _usage("-o is for --init", "to initialise weights: cortexlang weights MODEL.cx "
                     "--init -o W.npz")
    if args.sizes and args.model is None:
        raise _usage("-D needs --model", "sizes belong to the model the weights are checked "
                     "against")
    weights = read_weights_file(args.path)
    for name, array in weights.items():
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise input_error("E0535", f"parameter {name!r} in {args.path} holds "
                              f"{array.dtype} values, not numbers",
                              hint="a weights file holds one float array per parameter")
    verdict = None
    if args.model is not None:
        program = load_model(args.model, args)
        load_weights(args.path, program.params)
        verdict = f"valid for {program.name} ({program.path})"
    if args.json:
        print(json.dumps({"path": args.path, "parameters": _statistics(weights),
                          "valid_for": None if args.model is None else args.model}, indent=2))
        return 0
    console = stdout_console()
    console.print(describe_weights(weights), markup=False)
    if verdict is not None:
        console.print(verdict, markup=False)
    return 0


def _statistics(weights: Mapping[str, np.ndarray]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, array in weights.items():
        values = np.asarray(array, dtype=np.float64)
        row: dict[str, object] = {"name": name, "shape": list(array.shape),
                                  "dtype": str(array.dtype)}
        if values.size:
            row.update(mean=float(values.mean()), std=float(values.std()),
                       min=float(values.min()), max=float(values.max()))
        rows.append(row)
    return rows


COMMAND = Command(
    name="weights",
    summary="initialise a model's weights, or inspect and validate a weights file",
    configure=configure,
    execute=execute,
    description=__doc__ or "",
)

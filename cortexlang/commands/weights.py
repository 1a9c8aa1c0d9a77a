"""`cortexlang weights`: make a model's weights, or inspect and validate a weights file.

    cortexlang weights MODEL.cx --init [--seed S] -o W.npz|W.safetensors [--vocab FILE]
        initialise every parameter with its declared initialiser, deterministically in the
        seed, and save them (atomically), marked as random (seed S), with the vocabulary;

    cortexlang weights W [--model MODEL.cx [-D ...]] [--json]
        list the arrays of a weights file (.npz, .safetensors or a PyTorch state_dict: shape,
        dtype, mean, std, min, max) and its vocabulary; with a model, check that they are
        exactly the model's parameters, after --strip-prefix, --rename and --transpose
        (exit 1 listing every missing, extra and mis-shaped array if not);

    cortexlang weights W --model MODEL.cx [mapping] [--vocab FILE] -o OUT.safetensors
        export: the model's parameters under their own names, with the vocabulary (--vocab,
        else the one saved in W) in the file, ready for `run --weights OUT`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

import numpy as np

from cortexlang.commands import Command
from cortexlang.commands.capacity import check_host_memory
from cortexlang.commands.common import add_size_options, load_model, stdout_console
from cortexlang.commands.loading import add_mapping_options, mapping_of, vocab_of
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs import input_error
from cortexlang.inputs.provenance import choose_vocab, weights_of_file
from cortexlang.inputs.vocab import UNKNOWN
from cortexlang.inputs.weightfiles import make_meta, open_weights, save_weights_file
from cortexlang.inputs.weights import describe_weights, init_weights


def configure(parser: argparse.ArgumentParser) -> None:
    """PATH, --init, --seed, -o, --model, --json and -D sizes."""
    parser.add_argument("path", metavar="MODEL.cx|W",
                        help="a model (with --init) or a weights file (.npz, .safetensors, "
                             ".pt) to inspect, validate or export")
    parser.add_argument("--init", action="store_true",
                        help="initialise the weights of the model PATH")
    parser.add_argument("--seed", type=int, default=0, help="seed for --init (default 0)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="where --init or an export saves (.safetensors or .npz)")
    parser.add_argument("--model", metavar="MODEL.cx",
                        help="validate the weights file against this model")
    parser.add_argument("--vocab", metavar="FILE",
                        help="the vocabulary to save with the weights (one token per line)")
    parser.add_argument("--unknown", metavar="TOKEN|ID", default=UNKNOWN,
                        help=f"the unknown token of --vocab, or its id (default {UNKNOWN})")
    add_mapping_options(parser.add_argument_group("names"))
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
    if not mapping_of(args).is_identity():
        raise _usage("--strip-prefix, --rename and --transpose apply to a weights file",
                     "with --init, the weights get the model's own names")
    program = load_model(args.path, args)
    check_host_memory(program, np.dtype(np.float32), initialised=True, num_nodes=0,
                      num_structures=0)
    weights = init_weights(program.params, args.seed, dtype=np.float32)
    vocab = vocab_of(args)
    written = save_weights_file(args.output, weights, make_meta(
        model=program.name, vocab=vocab, init_seed=args.seed))
    if args.json:
        print(json.dumps({"saved": args.output, "format": written, "model": program.name,
                          "seed": args.seed, "vocabulary": None if vocab is None else len(vocab),
                          "parameters": _statistics(weights)}, indent=2))
    else:
        count = sum(int(value.size) for value in weights.values())
        with_vocab = "" if vocab is None else f" with its vocabulary ({vocab.describe()})"
        stdout_console().print(f"saved {len(weights)} parameters ({count} values) of "
                               f"{program.name}, random from seed {args.seed}, to "
                               f"{args.output} ({written}){with_vocab}", markup=False)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    if args.sizes and args.model is None:
        raise _usage("-D needs --model", "sizes belong to the model the weights are checked "
                     "against")
    if args.model is None and (args.output is not None or not mapping_of(args).is_identity()):
        raise _usage("an export and --strip-prefix, --rename, --transpose need --model",
                     "cortexlang weights W --model MODEL.cx -o OUT.safetensors")
    stored = open_weights(args.path)
    for name, array in stored.arrays.items():
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise input_error("E0535", f"parameter {name!r} in {args.path} holds "
                              f"{array.dtype} values, not numbers",
                              hint="a weights file holds one float array per parameter")
    verdict = None
    saved_vocab = stored.vocab
    if args.model is not None:
        program = load_model(args.model, args)
        choice = weights_of_file(stored, program.params, np.float32, mapping_of(args))
        verdict = f"valid for {program.name} ({program.path})"
        if args.output is not None:
            reads = any(item.kind == "token" for item in program.inputs)
            vocab = choose_vocab(choice, vocab_of(args), args.vocab, reads_tokens=reads,
                                 from_inputs=True).vocab
            written = save_weights_file(args.output, choice.weights, make_meta(
                model=program.name, vocab=vocab, init_seed=stored.init_seed))
            with_vocab = "" if vocab is None else f" with its vocabulary ({vocab.describe()})"
            verdict += (f"; saved its {len(choice.weights)} parameters to {args.output} "
                        f"({written}){with_vocab}")
    if args.json:
        print(json.dumps({"path": args.path, "format": stored.format,
                          "parameters": _statistics(stored.arrays),
                          "vocabulary": None if saved_vocab is None else len(saved_vocab),
                          "init_seed": stored.init_seed,
                          "valid_for": None if args.model is None else args.model,
                          "saved": args.output}, indent=2))
        return 0
    console = stdout_console()
    console.print(describe_weights(stored.arrays), markup=False)
    origin = (f"random, seed {stored.init_seed}" if stored.init_seed is not None
              else "trained (no seed recorded)")
    vocab_text = ("no vocabulary" if saved_vocab is None
                  else f"vocabulary: {saved_vocab.describe()}")
    console.print(f"{stored.format}; {origin}; {vocab_text}", markup=False)
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

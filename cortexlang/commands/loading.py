"""The inputs and weights of a run, from the command line: shared by every command that runs a
model (run now; compile, viz and bench later).

    add_input_options(parser)   --trees FILE | --synthetic N, --vocab, --format, --limit
    load_inputs(args, program)  -> Inputs (structures, their vocabulary, where they came from)
    add_weight_options(parser)  --weights FILE, --seed S
    load_weights_for(args, program, dtype) -> dict of arrays

Synthetic inputs follow the model's structure: SST-shaped trees for binary and n-ary trees,
sequences of SST sentence lengths for sequences, 10 x 10 grids with features of the model's
input width for DAGs. They are deterministic in --seed.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass, replace

import numpy as np

from cortexlang.commands.common import vector_inputs, vocabulary_capacity
from cortexlang.errors import Diagnostic, InputError, UsageError
from cortexlang.inputs import generators
from cortexlang.inputs.load import FORMATS, load_structures
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import Vocab
from cortexlang.inputs.weights import init_weights, load_weights
from cortexlang.ir.checked import CheckedProgram

GRID_ROWS = GRID_COLS = 10


@dataclass(frozen=True)
class Inputs:
    """The structures to run and how they were obtained, for summaries."""

    structures: tuple[Structure, ...]
    description: str
    source: str                  # "synthetic" or the input file's path
    vocabulary_size: int | None  # tokens in the vocabulary read or built, if any
    seconds: float

    @property
    def num_nodes(self) -> int:
        return sum(structure.num_nodes for structure in self.structures)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """--trees | --synthetic (one required), --vocab, --format, --limit."""
    group = parser.add_argument_group("inputs")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--trees", metavar="FILE",
                        help="input structures: PTB trees (one per line) or JSON")
    source.add_argument("--synthetic", metavar="N", type=_count,
                        help="N generated inputs shaped for the model's structure")
    group.add_argument("--vocab", metavar="FILE",
                       help="vocabulary file (one token per line); default: built from --trees")
    group.add_argument("--format", choices=FORMATS,
                       help="format of --trees (default: from the extension or the content)")
    group.add_argument("--limit", metavar="N", type=_count,
                       help="use only the first N structures")


def add_weight_options(parser: argparse.ArgumentParser) -> None:
    """--weights FILE and --seed S (default 0)."""
    group = parser.add_argument_group("weights")
    group.add_argument("--weights", metavar="W.npz",
                       help="weights saved for this model (default: initialised from --seed)")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of initialised weights and synthetic inputs (default 0)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return value


def load_inputs(args: argparse.Namespace, program: CheckedProgram) -> Inputs:
    """The structures named by the command line. Raises `InputError` for unreadable or
    malformed inputs, or a vocabulary larger than the model's tables; `UsageError` for
    options that do not go together."""
    started = time.perf_counter()
    if args.trees is None:
        if args.vocab is not None or args.format is not None:
            raise UsageError(Diagnostic("E0011", "--vocab and --format apply to --trees only",
                                        None, "", "leave them out with --synthetic"))
        # --limit first: structures past it would be generated only to be dropped.
        count = args.synthetic if args.limit is None else min(args.synthetic, args.limit)
        structures = synthetic_structures(program, count, args.seed)
        kind = {"sequence": "sequences", "dag": f"{GRID_ROWS}x{GRID_COLS} grids"}.get(
            program.structure.kind, "SST-shaped trees")
        return Inputs(tuple(structures), f"{len(structures)} synthetic {kind}", "synthetic",
                      None, time.perf_counter() - started)
    vocab = Vocab.read(args.vocab) if args.vocab is not None else None
    has_tokens = any(item.kind == "token" for item in program.inputs)
    loaded = load_structures(args.trees, vocab, input_format=args.format,
                             max_children=program.structure.max_children,
                             model_vocab_size=vocabulary_capacity(program) if has_tokens
                             else None)
    structures = list(loaded.structures)
    if args.limit is not None:
        structures = structures[:args.limit]
    _check_feature_width(program, structures, args.trees)
    return Inputs(tuple(structures), f"{len(structures)} from {loaded.path} ({loaded.format})",
                  loaded.path, len(loaded.vocab), time.perf_counter() - started)


def _check_feature_width(program: CheckedProgram, structures: list[Structure],
                         path: str) -> None:
    """Per-node feature vectors as wide as the model's vector input, or E0556 with the size
    to set on the command line (a grid of 4 features for a model declared with X = 256)."""
    vectors = vector_inputs(program)
    widths = {int(structure.features.shape[1]) for structure in structures
              if structure.features is not None}
    if not vectors or not widths or widths == {vectors[0].shape[0]}:
        return
    item, got = vectors[0], min(widths - {vectors[0].shape[0]})
    names = [name for name, value in program.sizes if value == item.shape[0]]
    if item.span is not None and len(names) > 1:
        # Several sizes have this value: the one the declaration names (`input x[X]`).
        declaration = program.source.splitlines()[item.span.line - 1]
        written = re.search(rf"\b{re.escape(item.name)}\s*\[\s*(\w+)\s*\]", declaration)
        names = [written.group(1)] if written and written.group(1) in names else names
    hint = (f"set the size to the data's: -D {names[0]}={got}" if len(names) == 1 else
            f"set the size of `{item.name}` to the data's ({got}) with -D SIZE={got}")
    raise InputError(Diagnostic(
        "E0556", f"{path} gives each node {got} features, but the model reads "
        f"`{item.name}` with {item.shape[0]}", None, "", hint))


def synthetic_structures(program: CheckedProgram, count: int, seed: int) -> list[Structure]:
    """`count` generated structures for the model's structure kind, deterministic in `seed`."""
    generator = np.random.default_rng(seed)
    vocabulary = max(2, vocabulary_capacity(program) or generators.DEFAULT_VOCABULARY_SIZE)
    kind = program.structure.kind
    vectors = vector_inputs(program)
    width = vectors[0].shape[0] if vectors else 0
    if kind == "dag":
        return [generators.grid(GRID_ROWS, GRID_COLS, width, rng=generator)
                for _ in range(count)]
    if kind == "sequence":
        lengths = generators.sst_leaf_counts(count, generator)
        structures = [generators.sequence(int(length), rng=generator, vocab_size=vocabulary)
                      for length in lengths]
    elif program.structure.max_children >= 2:
        structures = generators.sst_like_trees(count, rng=generator, vocab_size=vocabulary)
    else:
        lengths = generators.sst_leaf_counts(count, generator)
        structures = [generators.chain(int(length), rng=generator, vocab_size=vocabulary)
                      for length in lengths]
    if width:
        # A tree model that reads a vector per node gets random features of that width.
        # Drawn and kept in float64: each backend converts them to the dtype it computes in.
        structures = [replace(structure, features=generator.uniform(
            -1.0, 1.0, (structure.num_nodes, width)))
            for structure in structures]
    return structures


def load_weights_for(args: argparse.Namespace, program: CheckedProgram,
                     dtype: np.dtype) -> dict[str, np.ndarray]:
    """--weights checked against the model (E0530-E0535), or weights initialised from --seed
    with each parameter's declared initialiser."""
    if args.weights is not None:
        return load_weights(args.weights, program.params, dtype=dtype)
    return init_weights(program.params, args.seed, dtype=dtype)

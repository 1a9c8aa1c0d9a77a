"""The inputs and weights of a run, from the command line: shared by every command that runs a
model (run now; compile, viz and bench later).

    add_input_options(parser)   --trees FILE|- | --synthetic N, --vocab, --unknown, --format,
                                --limit, --binarize, --collapse-unary
    add_weight_options(parser)  --weights FILE, --seed S, --strip-prefix, --rename, --transpose
    load_weights_for(args, program, dtype) -> WeightChoice (the arrays and where they came from)
    choose_run_vocab(args, program, weights) -> VocabChoice (the rules of inputs.provenance)
    load_inputs(args, program, vocab) -> Inputs (structures, their vocabulary, where they came
                                from)

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

from cortexlang.artifact import Artifact
from cortexlang.commands.common import vector_inputs, vocabulary_capacity
from cortexlang.errors import Diagnostic, InputError, UsageError
from cortexlang.inputs import generators
from cortexlang.inputs.load import FORMATS, load_structures
from cortexlang.inputs.provenance import (
    VocabChoice,
    WeightChoice,
    choose_vocab,
    file_weights,
    random_weights,
)
from cortexlang.inputs.reshape import BINARIZE_SIDES, TreeShape
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import UNKNOWN, Vocab
from cortexlang.inputs.weightmap import WeightMapping
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
                        help="input structures: PTB trees (one per line) or JSON; - reads "
                             "standard input")
    source.add_argument("--synthetic", metavar="N", type=_count,
                        help="N generated inputs shaped for the model's structure")
    group.add_argument("--vocab", metavar="FILE",
                       help="vocabulary file (one token per line, id = line - 1); default: "
                            "the one saved with --weights, else (random weights only) built "
                            "from --trees")
    group.add_argument("--unknown", metavar="TOKEN|ID", default=UNKNOWN,
                       help=f"the unknown token of --vocab, or its id (default {UNKNOWN})")
    group.add_argument("--format", choices=FORMATS,
                       help="format of --trees (default: from the extension or the content)")
    group.add_argument("--limit", metavar="N", type=_count,
                       help="use only the first N structures")
    group.add_argument("--binarize", choices=BINARIZE_SIDES,
                       help="split nodes with more children than the model takes: left "
                            "gives ((a b) c), right (a (b c))")
    group.add_argument("--collapse-unary", action="store_true",
                       help="replace a node with one child by its child (a binary_tree model "
                            "refuses such nodes otherwise)")


def add_weight_options(parser: argparse.ArgumentParser) -> None:
    """--weights FILE and --seed S (default 0)."""
    group = parser.add_argument_group("weights")
    group.add_argument("--weights", metavar="W",
                       help="weights for this model: .npz, .safetensors or a PyTorch "
                            "state_dict (.pt); default: random, from --seed")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of random weights and synthetic inputs (default 0)")
    add_mapping_options(group)


def add_mapping_options(group: argparse._ActionsContainer) -> None:
    """--strip-prefix, --rename STORED=PARAM, --transpose PARAM (all repeatable)."""
    group.add_argument("--strip-prefix", metavar="PREFIX", action="append", default=[],
                       help="remove this prefix from stored names, e.g. cell. (repeatable)")
    group.add_argument("--rename", metavar="STORED=PARAM", type=_rename, action="append",
                       default=[], help="the stored array STORED fills parameter PARAM "
                                        "(repeatable)")
    group.add_argument("--transpose", metavar="PARAM", action="append", default=[],
                       help="transpose this parameter's stored matrix (repeatable)")


def _rename(text: str) -> tuple[str, str]:
    stored, equals, name = text.partition("=")
    if not equals or not stored or not name:
        raise argparse.ArgumentTypeError(f"expected STORED=PARAM, such as "
                                         f"cell.U_f.bias=b_f, not {text!r}")
    return stored, name


def mapping_of(args: argparse.Namespace) -> WeightMapping:
    """The name mapping of the command line's --strip-prefix, --rename and --transpose."""
    return WeightMapping(tuple(getattr(args, "strip_prefix", ())),
                         tuple(getattr(args, "rename", ())), tuple(getattr(args, "transpose", ())))


def vocab_of(args: argparse.Namespace) -> Vocab | None:
    """--vocab read with --unknown (a number is an id), or None."""
    if args.vocab is None:
        return None
    unknown: str | int = getattr(args, "unknown", UNKNOWN)
    if isinstance(unknown, str) and unknown.isdigit():
        unknown = int(unknown)
    return Vocab.read(args.vocab, unknown=unknown)


def reads_tokens(program: CheckedProgram) -> bool:
    return any(item.kind == "token" for item in program.inputs)


def tree_shape(program: CheckedProgram, binarize: str | None = None,
               collapse_unary: bool = False) -> TreeShape:
    """What the model's structure takes, with the fitting the user asked for."""
    kind = program.structure.kind
    if kind not in ("binary_tree", "tree"):
        return TreeShape()
    return TreeShape(max_children=program.structure.max_children,
                     binary=kind == "binary_tree", binarize=binarize,
                     collapse_unary=collapse_unary)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return value


def load_inputs(args: argparse.Namespace, program: CheckedProgram,
                vocab_choice: VocabChoice | None = None) -> Inputs:
    """The structures named by the command line, their words read with `vocab_choice`'s
    vocabulary (default: --vocab, else built from the inputs). Raises `InputError` for
    unreadable or malformed inputs, or a vocabulary larger than the model's tables;
    `UsageError` for options that do not go together."""
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
    vocab = vocab_choice.vocab if vocab_choice is not None else vocab_of(args)
    has_tokens = reads_tokens(program)
    shape = tree_shape(program, getattr(args, "binarize", None),
                       getattr(args, "collapse_unary", False))
    loaded = load_structures(args.trees, vocab, input_format=args.format,
                             max_children=program.structure.max_children,
                             model_vocab_size=vocabulary_capacity(program) if has_tokens
                             else None, shape=shape)
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
                     dtype: np.dtype) -> WeightChoice:
    """--weights mapped (--strip-prefix, --rename, --transpose) and checked against the model
    (one error listing every E0530-E0537), or random weights from --seed with each
    parameter's declared initialiser."""
    mapping = mapping_of(args)
    if args.weights is not None:
        return file_weights(args.weights, program.params, dtype, mapping)
    if not mapping.is_identity():
        raise UsageError(Diagnostic("E0011", "--strip-prefix, --rename and --transpose apply "
                                    "to --weights", None, "", "name the weights file"))
    return random_weights(program.params, args.seed, dtype)


def choose_run_vocab(args: argparse.Namespace, program: CheckedProgram,
                     weights: WeightChoice) -> VocabChoice:
    """The run's vocabulary by the rules of `cortexlang.inputs.provenance` (E0524, E0525)."""
    given = vocab_of(args) if args.trees is not None else None
    name = args.vocab
    return choose_vocab(weights, given, name, reads_tokens=reads_tokens(program),
                        from_inputs=args.trees is not None)


@dataclass(frozen=True)
class RunFacts:
    """What a run ran, for the header and --json: weights, vocabulary, device, kernels."""

    weights: WeightChoice
    vocab: VocabChoice
    device: str
    kernels: str = ""

    def vocab_description(self, inputs: Inputs) -> str:
        if self.vocab.source == "inputs":
            return (f"built from {inputs.source} ({inputs.vocabulary_size} tokens; random "
                    "weights, so any ids do)")
        return self.vocab.description

    def summary(self, inputs: Inputs) -> dict[str, object]:
        vocab = self.vocab.summary()
        vocab["description"] = self.vocab_description(inputs)
        if self.vocab.source == "inputs":
            vocab["tokens"] = inputs.vocabulary_size
        facts: dict[str, object] = {"weights": self.weights.summary(), "vocab": vocab,
                                    "device": self.device}
        if self.kernels:
            facts["kernels"] = self.kernels
        return facts


def device_description(backend: str, spec: str | None) -> str:
    """The device a backend runs on, in words (the compiled backend's OpenCL device)."""
    if backend != "compiled":
        return "the host (numpy)"
    from cortexlang.runtime.devices import select_device

    device = select_device(spec)
    return f"{device.info.device_name} ({device.info.spec})"


def artifact_settings(artifact: Artifact) -> tuple[tuple[str, str], ...]:
    """The compiled backend's settings that reproduce an artifact's compiler options."""
    options = artifact.options
    disabled = [name for name in options.names() if not getattr(options, name)]
    settings = [("disable", ",".join(disabled))] if disabled else []
    default = type(options)()
    enabled = [name for name in options.names()
               if getattr(options, name) and not getattr(default, name)]
    settings += [("enable", ",".join(enabled))] if enabled else []
    return tuple(settings) + (("node_tile", str(options.node_tile)),)


def artifact_kernels(artifact: Artifact, spec: str | None) -> str:
    """Whether the kernels the compiled backend will build are the artifact's own."""
    from cortexlang.passes.pipeline import run_pipeline
    from cortexlang.runtime.devices import select_device
    from cortexlang.runtime.execute import device_limits

    limits = device_limits(select_device(spec))
    source = run_pipeline(artifact.program, artifact.options, limits).source
    if source == artifact.kernel_source:
        return f"the kernels of {artifact.path}"
    if limits != artifact.limits:
        return f"re-planned for this device ({artifact.path} was planned for other limits)"
    return "re-emitted: this cortexlang emits other OpenCL than the one that wrote it"

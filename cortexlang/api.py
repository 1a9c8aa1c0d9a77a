"""The Python API: load a model, give it weights, compile it, run it on structures.

    import cortexlang as cx
    model = cx.load("examples/treelstm.cx", sizes={"H": 64})
    model.load_weights("w.safetensors", vocab="vocab.txt")   # or a dict of arrays
    compiled = model.compile()                    # device and options as the CLI chooses
    out = compiled.run(["(3 (2 good) (2 film))"])  # PTB text, Structures, nltk Trees, tuples
    out["h"]                                      # numpy, one row per structure

Every error is a `cortexlang.errors.CortexError` with a code and, where there is one, a
location (`InputError` for inputs and weights, `UsageError` for wrong arguments). The same
rules as the command line decide the vocabulary (`cortexlang.inputs.provenance`), and every
result says what ran (`Result.provenance`). `docs/api.md` is the guide; its examples run in CI.

`Compiled`: a model ready to run on one backend, from `cortexlang.Model.compile`.

The compiled backend walks `run_pipeline` for the chosen device (the same choice as the
command line: `--device`, else PYOPENCL_CTX, else the first working device) and builds the
kernels once (from the build cache when they were built before); weights are bound once.
For a model loaded from a `.cxa`, the OpenCL emitted is compared with the artifact's: the
same text on a device with the limits it was planned for (so the cached binary is reused),
and re-planned, as the provenance says, on a device with other limits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from cortexlang.api_result import Result, api_usage
from cortexlang.artifact import Artifact, is_artifact_path, read_artifact, write_artifact
from cortexlang.backends import BackendOptions, get_backend
from cortexlang.commands.common import vocabulary_capacity
from cortexlang.inputs.provenance import (
    VocabChoice,
    WeightChoice,
    choose_vocab,
    given_weights,
    random_weights,
    weights_of_file,
)
from cortexlang.inputs.python import to_structures
from cortexlang.inputs.reshape import TreeShape
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import UNKNOWN, Vocab, VocabBuilder, remap_words
from cortexlang.inputs.weightfiles import open_weights
from cortexlang.inputs.weightmap import WeightMapping
from cortexlang.ir.checked import CheckedProgram

BACKENDS = ("compiled", "interp")


def load(path: str | os.PathLike[str], sizes: Mapping[str, int] | None = None) -> Model:
    """Parse and check a `.cx` model (every error located), or load a `.cxa` artifact with
    its weights and vocabulary. `sizes` overrides the model's sizes (not for an artifact)."""
    from cortexlang.frontend.check import load_program

    path_text = os.fspath(path)
    if is_artifact_path(path_text):
        if sizes:
            raise api_usage("an artifact's sizes are fixed when it is compiled",
                         "leave sizes out, or compile the .cx again with other sizes")
        artifact = read_artifact(path_text)
        model = Model(artifact.program, artifact=artifact)
        model._weights = weights_of_file(artifact.weights, artifact.program.params, np.float32)
        model._vocab = _vocab_choice(model.program, model._weights, None, None)
        return model
    return Model(load_program(path_text, dict(sizes or {})))


class Model:
    """A checked model, and the weights and vocabulary it runs with (none until given)."""

    def __init__(self, program: CheckedProgram, *, artifact: Artifact | None = None) -> None:
        self.program = program
        self.artifact = artifact
        self._weights: WeightChoice | None = None
        self._vocab: VocabChoice | None = None

    @property
    def name(self) -> str:
        return self.program.name

    @property
    def sizes(self) -> dict[str, int]:
        return dict(self.program.sizes)

    @property
    def parameters(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's name and shape, in declaration order."""
        return {param.name: tuple(param.shape) for param in self.program.params}

    @property
    def weights(self) -> dict[str, np.ndarray] | None:
        return None if self._weights is None else self._weights.weights

    @property
    def vocab(self) -> Vocab | None:
        return None if self._vocab is None else self._vocab.vocab

    def __repr__(self) -> str:
        sizes = " ".join(f"{name}={value}" for name, value in self.program.sizes)
        return f"<cortexlang.Model {self.name} ({self.program.path}) {sizes}>"

    def load_weights(self, source: str | os.PathLike[str] | Mapping[str, Any], *,
                     vocab: str | os.PathLike[str] | Vocab | Sequence[str] | None = None,
                     unknown: str | int = UNKNOWN, strip_prefix: str | Sequence[str] = (),
                     rename: Mapping[str, str] | None = None,
                     transpose: Sequence[str] = ()) -> Model:
        """Use trained weights: a file (.npz, .safetensors, PyTorch .pt) or a mapping of names
        to arrays (a state_dict works: tensors are converted). Stored names map to parameters
        by `strip_prefix`, `rename` and `transpose` (`cortexlang.inputs.weightmap`); one
        error lists every missing, extra and mis-shaped array.

        `vocab` is a vocabulary file, a `Vocab` or a list of tokens (id = position), with
        `unknown` the unknown token or its id; a vocabulary saved in the weights file is used
        when none is given, and a different one is an error (E0524). Returns the model."""
        mapping = WeightMapping.of(strip_prefix, rename, transpose)
        if isinstance(source, Mapping):
            choice = given_weights(source, self.program.params, np.float32, mapping)
        else:
            choice = weights_of_file(open_weights(source), self.program.params, np.float32,
                                     mapping)
        given, given_name = _vocab_argument(vocab, unknown)
        self._vocab = _vocab_choice(self.program, choice, given, given_name)
        self._weights = choice
        return self

    def init_weights(self, seed: int = 0) -> Model:
        """Random weights from `seed` (each parameter's initialiser), as the CLI's default;
        results say they are not trained. Returns the model."""
        self._weights = random_weights(self.program.params, seed, np.float32)
        self._vocab = _vocab_choice(self.program, self._weights, None, None)
        return self

    def save_weights(self, path: str | os.PathLike[str]) -> str:
        """Save the weights with the vocabulary (and seed, if random) as `.safetensors` or
        `.npz` (by the extension). Returns the format written."""
        from cortexlang.inputs.weightfiles import make_meta, save_weights_file

        choice = self._require_weights()
        meta = make_meta(model=self.name, vocab=self.vocab, init_seed=choice.seed)
        return save_weights_file(path, choice.weights, meta)

    def compile(self, device: str | None = None, options: Any = None, *,
                backend: str = "compiled", dtype: str = "float32",
                cache: bool = True) -> Compiled:
        """Ready the model to run. `backend` "compiled" (OpenCL kernels; `device` is a spec
        as for `--device`, default the one the CLI picks) or "interp" (the reference
        interpreter, which also computes in float64). `options` are the compiler's: an
        `Options`, or a mapping of optimisation names to booleans and `node_tile`.
        Without weights, random ones from seed 0 are used, and results say so."""
        if backend not in BACKENDS:
            raise api_usage(f"unknown backend `{backend}`", f"backends: {', '.join(BACKENDS)}")
        if dtype not in ("float32", "float64"):
            raise api_usage(f"dtype {dtype!r} is not float32 or float64", "")
        if backend == "compiled" and dtype != "float32":
            raise api_usage("the compiled backend computes in float32",
                         "use backend=\"interp\" for float64")
        if self._weights is None:
            self.init_weights(0)
        return Compiled(self, backend=backend, device=device,
                             options=compiler_options(options, self.artifact), dtype=dtype,
                             cache=cache)

    def _require_weights(self) -> WeightChoice:
        if self._weights is None:
            raise api_usage("the model has no weights yet",
                         "call load_weights(...) or init_weights(seed) first")
        return self._weights

    def _structures(self, items: Iterable[Any], binarize: str | None,
                    collapse_unary: bool) -> tuple[list[Structure], VocabChoice]:
        """The items as structures read with the model's vocabulary (built from them for
        random weights with none), and the vocabulary choice that applied."""
        vocab_choice = self._vocab
        assert vocab_choice is not None
        shape = _tree_shape(self.program, binarize, collapse_unary)
        capacity = vocabulary_capacity(self.program)
        if vocab_choice.vocab is not None or vocab_choice.source == "none":
            vocab = vocab_choice.vocab
            lookup = vocab.lookup if vocab is not None else VocabBuilder().add
            structures = to_structures(items, lookup, shape)
            if vocab is not None and capacity is not None:
                vocab.check_fits(capacity, source="the vocabulary")
            return structures, vocab_choice
        builder = VocabBuilder()
        structures = to_structures(items, builder.add, shape)
        built, remap = builder.freeze()
        if capacity is not None:
            built.check_fits(capacity, source="the inputs")
        return remap_words(structures, remap), VocabChoice(
            built, f"built from the inputs of this run ({built.describe()}; random weights)",
            "inputs")


def _vocab_argument(vocab: Any, unknown: str | int) -> tuple[Vocab | None, str | None]:
    if vocab is None:
        return None, None
    if isinstance(vocab, Vocab):
        return vocab, "the vocabulary given"
    if isinstance(vocab, (str, os.PathLike)):
        return Vocab.read(vocab, unknown=unknown), os.fspath(vocab)
    if isinstance(vocab, Sequence):
        return Vocab.of_tokens([str(token) for token in vocab], unknown=unknown,
                               source="the vocabulary given"), "the vocabulary given"
    raise api_usage(f"vocab is a {type(vocab).__name__}",
                 "give a vocabulary file, a cortexlang Vocab, or a list of tokens")


def _vocab_choice(program: CheckedProgram, weights: WeightChoice, given: Vocab | None,
                  given_name: str | None) -> VocabChoice:
    reads = any(item.kind == "token" for item in program.inputs)
    return choose_vocab(weights, given, given_name, reads_tokens=reads, from_inputs=True)


def _tree_shape(program: CheckedProgram, binarize: str | None,
                collapse_unary: bool) -> TreeShape:
    kind = program.structure.kind
    if kind not in ("binary_tree", "tree"):
        return TreeShape()
    try:
        return TreeShape(program.structure.max_children, kind == "binary_tree", binarize,
                         collapse_unary)
    except ValueError as error:
        raise api_usage(str(error), "binarize is \"left\", \"right\" or None") from None


def compiler_options(options: Any, artifact: Artifact | None = None) -> Any:
    """The compiler `Options` of `options` (None: the artifact's, else the defaults)."""
    from cortexlang.passes.pipeline import Options

    if options is None:
        return artifact.options if artifact is not None else Options()
    if isinstance(options, Options):
        return options
    if isinstance(options, Mapping):
        known = {field.name for field in fields(Options)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise api_usage(f"unknown compiler option `{unknown[0]}`",
                         "options: " + ", ".join(sorted(known)))
        try:
            return Options(**options)
        except ValueError as error:
            raise api_usage(str(error), "node_tile is a whole number >= 1") from None
    raise api_usage(f"options is a {type(options).__name__}",
                 "give cortexlang Options or a mapping such as {\"fuse_levels\": False}")


class Compiled:
    """A model bound to a backend (and device), its weights and its vocabulary."""

    def __init__(self, model: Model, *, backend: str, device: str | None, options: Any,
                 dtype: str, cache: bool) -> None:
        self.model = model
        self.backend = backend
        self.options = options
        self.dtype = dtype
        self.kernels_note = ""
        self.device_name = "the host (numpy)"
        self._result: Any = None
        self._runner: Any = None
        self.limits: Any = None
        if backend == "compiled":
            self._compile(device, cache)
        else:
            self._interpreter = get_backend("interp")

    def _compile(self, device_spec: str | None, cache: bool) -> None:
        from cortexlang.passes.pipeline import run_pipeline
        from cortexlang.runtime.devices import select_device
        from cortexlang.runtime.execute import CompiledModel, device_limits

        device = select_device(device_spec)
        self.device_name = f"{device.info.device_name} ({device.info.spec})"
        self.limits = device_limits(device)
        self._result = run_pipeline(self.model.program, self.options, self.limits)
        artifact = self.model.artifact
        if artifact is not None:
            if self._result.source == artifact.kernel_source:
                self.kernels_note = f"the kernels of {artifact.path}"
            elif self.limits != artifact.limits or self.options != artifact.options:
                self.kernels_note = (f"re-planned for this device (the kernels of "
                                     f"{artifact.path} were planned for other limits)")
            else:
                self.kernels_note = (f"re-emitted: this cortexlang emits other OpenCL than "
                                     f"the one that wrote {artifact.path}")
        self._runner = CompiledModel(self._result, device, use_cache=cache)
        self._runner.bind_weights(self.model._require_weights().weights)
        if self._runner.cache_hit and not self.kernels_note:
            self.kernels_note = "built from the cache"
        elif self._runner.cache_hit:
            self.kernels_note += ", built from the cache"

    def compile_result(self) -> Any:
        """The pipeline's `CompileResult` (compiled backend only)."""
        if self._result is None:
            raise api_usage("only the compiled backend has kernels to save",
                         "compile with backend=\"compiled\"")
        return self._result

    def provenance(self, vocab_choice: Any = None) -> dict[str, Any]:
        """Model, weights, vocabulary, backend and device, as `cortexlang run --json`."""
        model = self.model
        weights = model._require_weights()
        vocab = vocab_choice if vocab_choice is not None else model._vocab
        facts: dict[str, Any] = {
            "model": model.name, "path": model.program.path, "sizes": model.sizes,
            "weights": weights.summary(), "vocab": None if vocab is None else vocab.summary(),
            "backend": self.backend, "dtype": self.dtype, "device": self.device_name}
        if self.kernels_note:
            facts["kernels"] = self.kernels_note
        return facts

    def run(self, structures: Iterable[Any], *, binarize: str | None = None,
            collapse_unary: bool = False) -> Result:
        """Run on structures: PTB strings, `Structure`s, nltk Trees, nested tuples or JSON
        records (`cortexlang.inputs.python`). `binarize` ("left", "right") splits wider
        nodes; `collapse_unary` replaces one-child nodes by their child. Returns a `Result`."""
        items, vocab_choice = self.model._structures(structures, binarize, collapse_unary)
        if self._runner is not None:
            outputs = self._runner.run(items)
        else:
            weights = self.model._require_weights().weights
            if self.dtype != "float32":
                weights = {name: value.astype(self.dtype) for name, value in weights.items()}
            outputs = self._interpreter(self.model.program, items, weights,
                                        BackendOptions(dtype=self.dtype))
        return Result(outputs, self.provenance(vocab_choice), items)

    def save(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Write a `.cxa` artifact: source, sizes, options, OpenCL, weights, vocabulary."""
        model = self.model
        weights = model._require_weights()
        result = self.compile_result()
        # The sizes to pass when the saved source is checked again: the final sizes of
        # those the source declares, which reproduce the program whatever overrides made it.
        overrides = (dict(model.artifact.manifest["overrides"]) if model.artifact
                     else dict(model.program.sizes))
        return write_artifact(path, model.program, overrides=overrides,
                              options=result.options, limits=self.limits,
                              kernel_source=result.source, weights=weights.weights,
                              vocab=model.vocab, init_seed=weights.seed)

    def __repr__(self) -> str:
        return f"<cortexlang.Compiled {self.model.name} on {self.backend}, {self.device_name}>"

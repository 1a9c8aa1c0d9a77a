"""Which weights and which vocabulary a run uses, decided once for the CLI and the Python API.

A model that reads tokens (`Emb[word(n)]`) gives a trained model's answer only when its
inputs' word ids are the ids it was trained with. So the vocabulary travels with the
weights, and the rules are:

- weights saved with a vocabulary use it; a vocabulary given as well (`--vocab`) must be
  the same one (E0524, naming the first difference);
- trained weights with no vocabulary anywhere are an error (E0525) that says how to attach
  one, never ids built from the input file, which would silently be other words' rows;
- random weights (drawn from a seed, or saved by `cortexlang weights --init`) may build the
  vocabulary from the inputs, and the run says so.

`WeightChoice` records what was chosen, in words, for the run header and `--json`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cortexlang.inputs import input_error
from cortexlang.inputs.vocab import Vocab
from cortexlang.inputs.weightfiles import WeightsFile, open_weights
from cortexlang.inputs.weightmap import ParameterSpec, WeightMapping, map_weights
from cortexlang.inputs.weights import init_weights


@dataclass(frozen=True, eq=False)
class WeightChoice:
    """The weights of a run and where they came from.

    path: the weights file, or None (random, or a dict given in Python).
    seed: the seed of random weights, else None. trained: False for random weights.
    vocab: the vocabulary saved with the weights, if any."""

    weights: dict[str, np.ndarray]
    description: str
    path: str | None
    seed: int | None
    trained: bool
    vocab: Vocab | None

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "seed": self.seed, "trained": self.trained,
                "description": self.description}


@dataclass(frozen=True, eq=False)
class VocabChoice:
    """The vocabulary of a run: `vocab` (None: built from the inputs, or none needed), and
    how it was chosen, in words."""

    vocab: Vocab | None
    description: str
    source: str  # "weights", "file", "inputs", "given" or "none"

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "description": self.description,
                "tokens": None if self.vocab is None else len(self.vocab),
                "unknown_id": None if self.vocab is None else self.vocab.unknown_id}


def random_weights(specs: Sequence[ParameterSpec], seed: int, dtype: Any) -> WeightChoice:
    """Weights drawn from `seed` with each parameter's initialiser: not a trained model."""
    return WeightChoice(init_weights(specs, seed, dtype=dtype),
                        f"random, seed {seed} (not trained)", None, seed, False, None)


def file_weights(path: str | os.PathLike[str], specs: Sequence[ParameterSpec], dtype: Any,
                 mapping: WeightMapping | None = None) -> WeightChoice:
    """The weights of a file, mapped and checked against `specs` (every mismatch listed)."""
    stored = open_weights(path)
    return weights_of_file(stored, specs, dtype, mapping)


def weights_of_file(stored: WeightsFile, specs: Sequence[ParameterSpec], dtype: Any,
                    mapping: WeightMapping | None = None) -> WeightChoice:
    """`file_weights` for a file already opened."""
    weights = map_weights(stored.arrays, specs, mapping=mapping,
                          source=f"weights file {stored.path}", dtype=dtype)
    seed = stored.init_seed
    vocab = stored.vocab
    facts = [stored.format]
    if seed is not None:
        facts.append(f"random, seed {seed}, not trained")
    if vocab is not None:
        facts.append("with its vocabulary")
    return WeightChoice(weights, f"{stored.path} ({', '.join(facts)})", stored.path, seed,
                        seed is None, vocab)


def given_weights(arrays: Mapping[str, Any], specs: Sequence[ParameterSpec], dtype: Any,
                  mapping: WeightMapping | None = None, *,
                  source: str = "the weights given") -> WeightChoice:
    """Weights from a mapping of names to arrays (numpy, or anything with `__array__`, such
    as a PyTorch state_dict's tensors), mapped and checked like a file's."""
    stored = {str(name): _as_array(value) for name, value in arrays.items()}
    weights = map_weights(stored, specs, mapping=mapping, source=source, dtype=dtype)
    return WeightChoice(weights, source, None, None, True, None)


def _as_array(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    if callable(detach):  # a torch tensor: off the autograd graph and onto the CPU
        value = detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def choose_vocab(weights: WeightChoice, given: Vocab | None, given_name: str | None, *,
                 reads_tokens: bool, from_inputs: bool) -> VocabChoice:
    """The vocabulary of a run (module docstring). `given` is the vocabulary passed by the
    user (`--vocab`), `given_name` where it came from; `from_inputs` says whether the inputs
    are files whose tokens would build one (False for synthetic inputs, which hold ids).

    Raises `InputError` E0524 (the given vocabulary differs from the weights') and E0525
    (trained weights, tokens to read, and no vocabulary)."""
    saved = weights.vocab
    if not reads_tokens:
        return VocabChoice(given or saved, "none (the model reads no tokens)", "none")
    if saved is not None and given is not None and saved != given:
        raise input_error(
            "E0524", f"the vocabulary {given_name} differs from the one saved with "
            f"{weights.path}: {_difference(saved, given)}",
            hint="leave --vocab out to use the weights' own vocabulary, or save the weights "
                 "again with this one: cortexlang weights W --model MODEL.cx --vocab FILE "
                 "-o W.safetensors")
    if saved is not None:
        return VocabChoice(saved, f"saved with the weights ({saved.describe()})", "weights")
    if given is not None:
        return VocabChoice(given, f"{given_name} ({given.describe()})", "file")
    if not from_inputs:
        return VocabChoice(None, "none (synthetic inputs hold word ids)", "none")
    if weights.trained:
        where = weights.path or "the weights given"
        raise input_error(
            "E0525", f"{where} holds trained weights but no vocabulary, and none was given",
            hint="word ids built from the input file would read other words' embedding rows; "
                 "pass the vocabulary the model was trained with (--vocab FILE, Python: "
                 "vocab=...), or save it into the weights once: cortexlang weights W "
                 "--model MODEL.cx --vocab FILE -o W.safetensors")
    return VocabChoice(None, "built from the inputs (random weights; ids in order of first "
                       "appearance)", "inputs")


def _difference(saved: Vocab, given: Vocab) -> str:
    if len(saved) != len(given):
        return f"{len(given)} tokens, not {len(saved)}"
    if saved.unknown_id != given.unknown_id:
        return f"the unknown id is {given.unknown_id}, not {saved.unknown_id}"
    for word, (left, right) in enumerate(zip(saved.tokens, given.tokens, strict=True)):
        if left != right:
            return f"id {word} is {right!r}, not {left!r}"
    return "they differ"

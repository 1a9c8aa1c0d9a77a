"""A model's named parameters: initialise, save, load and describe them.

A parameter spec is any object with `.name: str`, `.shape: tuple[int, ...]` and
`.init: tuple[str, tuple[float, ...]]` (a missing or None `init` means the default,
uniform in [-0.1, 0.1)). Initialisers:

    ("uniform", (low, high))   uniform in [low, high)
    ("normal", (mean, std))    normal
    ("zeros", ())  ("ones", ())

Each parameter draws from its own generator, seeded by the run's seed together with a stable
hash (SHA-256) of its name, so adding, removing or reordering parameters leaves the values of
the others unchanged, on every machine and Python version.

Weights files are NumPy `.npz` archives or `.safetensors` files (written atomically through
`cortexlang.atomic`), or PyTorch state_dicts (read only); see `cortexlang.inputs.weightfiles`
for the formats and the metadata saved with them, and `cortexlang.inputs.weightmap` for how
stored names become parameter names. Errors are `InputError`s E0530..E0537 naming the file's
and the model's view of each parameter.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cortexlang.inputs import input_error
from cortexlang.inputs.weightfiles import open_weights, save_weights_file
from cortexlang.inputs.weightmap import ParameterSpec, WeightMapping, map_weights

DEFAULT_INIT: tuple[str, tuple[float, ...]] = ("uniform", (-0.1, 0.1))
_INIT_ARITY = {"uniform": 2, "normal": 2, "zeros": 0, "ones": 0, "constant": 1}


@dataclass(frozen=True)
class WeightSpec:
    """A plain parameter spec, for tests and tools that have no compiled model at hand."""

    name: str
    shape: tuple[int, ...]
    init: tuple[str, tuple[float, ...]] = DEFAULT_INIT


def name_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The seed sequence of parameter `name` under run seed `seed` (any integer)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return np.random.SeedSequence([seed & (2**64 - 1), int.from_bytes(digest[:8], "little")])


def _init_of(spec: ParameterSpec) -> tuple[str, tuple[float, ...]]:
    init = getattr(spec, "init", None)
    if init is None:
        return DEFAULT_INIT
    try:
        kind, arguments = init
        arguments = tuple(float(argument) for argument in arguments)
    except (TypeError, ValueError):
        raise input_error("E0534", f"parameter {spec.name!r} has a malformed initialiser "
                          f"{init!r}", hint="an initialiser is (kind, (arguments...))") from None
    if kind not in _INIT_ARITY:
        raise input_error("E0534", f"parameter {spec.name!r} has unknown initialiser {kind!r}",
                          hint=f"choose one of: {', '.join(_INIT_ARITY)}")
    if len(arguments) != _INIT_ARITY[kind]:
        raise input_error("E0534", f"initialiser {kind!r} of parameter {spec.name!r} takes "
                          f"{_INIT_ARITY[kind]} arguments, not {len(arguments)}",
                          hint="uniform (low, high), normal (mean, std), zeros (), ones (), "
                               "constant (value)")
    if kind == "normal" and arguments[1] < 0:
        raise input_error("E0534", f"normal initialiser of {spec.name!r} has std < 0")
    if kind == "uniform" and arguments[0] > arguments[1]:
        raise input_error("E0534", f"uniform initialiser of {spec.name!r} has low > high")
    return kind, arguments


def init_weights(specs: Iterable[ParameterSpec], seed: int = 0, *,
                 dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Fresh values for every parameter, in spec order, deterministic per (seed, name).

    Values are drawn in float64 and then cast, so every dtype sees the same numbers.
    Raises `InputError` E0534 for an unknown or malformed initialiser; ValueError for two
    specs of the same name.
    """
    weights: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name in weights:
            raise ValueError(f"two parameters are named {spec.name!r}")
        kind, arguments = _init_of(spec)
        shape = tuple(int(size) for size in spec.shape)
        generator = np.random.default_rng(name_seed(seed, spec.name))
        if kind == "uniform":
            values = generator.uniform(arguments[0], arguments[1], size=shape)
        elif kind == "normal":
            values = generator.normal(arguments[0], arguments[1], size=shape)
        elif kind == "zeros":
            values = np.zeros(shape)
        elif kind == "constant":
            values = np.full(shape, arguments[0])
        else:
            values = np.ones(shape)
        weights[spec.name] = np.asarray(values).astype(dtype)
    return weights


def save_weights(path: str | os.PathLike[str], weights: Mapping[str, np.ndarray], *,
                 meta: Mapping[str, Any] | None = None) -> str:
    """Write `weights` (and cortexlang's metadata: model, vocabulary, init seed) atomically,
    as `.safetensors` when the path ends so, else as an `.npz` at exactly `path`.

    Returns the format written. Raises `InputError` E0570 when the path cannot be written."""
    return save_weights_file(path, weights, meta)


def read_weights_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of a weights file (.npz, .safetensors or PyTorch), as stored, without the
    metadata. Raises `InputError` E0533 when unreadable, E0536 when torch is missing."""
    return open_weights(path).arrays


def load_weights(path: str | os.PathLike[str], specs: Sequence[ParameterSpec], *,
                 dtype: Any = np.float32,
                 mapping: WeightMapping | None = None) -> dict[str, np.ndarray]:
    """The weights of `path` checked against `specs`, cast to `dtype`, in spec order.

    Stored names map to parameters through `mapping` (`cortexlang.inputs.weightmap`).
    Raises `InputError`: E0533 unreadable file, and one error listing every E0530 (a spec'd
    name missing from the file), E0531 (a name no spec has), E0532 (a shape mismatch), E0535
    (not floating point) and E0537 (two arrays for one parameter).
    """
    stored = open_weights(path)
    return map_weights(stored.arrays, specs, mapping=mapping,
                       source=f"weights file {stored.path}", dtype=dtype)


def describe_weights(weights: Mapping[str, np.ndarray]) -> str:
    """A table of name, shape, dtype, mean, std, min and max, one row per parameter."""
    header = ("name", "shape", "dtype", "mean", "std", "min", "max")
    rows: list[tuple[str, ...]] = [header]
    for name, array in weights.items():
        values = np.asarray(array, dtype=np.float64)
        if values.size:
            numbers = (values.mean(), values.std(), values.min(), values.max())
            statistics = tuple(f"{number:.6g}" for number in numbers)
        else:
            statistics = ("-",) * 4
        rows.append((name, "x".join(str(size) for size in array.shape) or "scalar",
                     str(array.dtype)) + statistics)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2])]
        cells += [cell.rjust(width) for cell, width in zip(row[3:], widths[3:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    total = sum(int(np.asarray(array).size) for array in weights.values())
    lines.append(f"{len(weights)} parameters, {total} values")
    return "\n".join(lines)

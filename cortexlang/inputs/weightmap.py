"""From the names a weights file uses to the parameters of a model, with every mismatch listed.

A PyTorch state_dict names its tensors by module path (`cell.U_iou.weight`); a `.cx` model
names its parameters with identifiers (`U_iou`). A stored name becomes a parameter name by:

1. the rename table, when it names the stored key exactly (`cell.U_f.bias` -> `b_f`);
2. otherwise: the first matching prefix of `strip_prefixes` is removed (`cell.`), a final
   `.weight` is dropped, and every other `.` becomes `_` (`U_f.bias` -> `U_f_bias`).

So `embedding.weight` fills `embedding`, `cell.W_iou.weight` fills `W_iou` with the prefix
`cell.` stripped, and `linear.bias` fills `linear_bias`. Shapes must match exactly, except that
axes of size 1 are dropped when that makes them match (a `[1, 3H]` bias fills a `[3H]`
parameter: the same values in the same order). A name in `transpose` is transposed first.

`map_weights` reports every problem in one `InputError`, one diagnostic each: E0530 missing,
E0531 extra (with the parameter it was read as and the closest one), E0532 mis-shaped (saying
"looks transposed" when the transpose fits), E0535 not floating point, E0537 two stored
arrays for one parameter.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from cortexlang.errors import Diagnostic, InputError


class ParameterSpec(Protocol):
    """What loading and initialising weights need to know about a parameter."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class WeightMapping:
    """How stored names map to parameter names (see the module docstring).

    strip_prefixes: prefixes removed from stored names (the first that matches).
    rename: (stored name, parameter name) pairs, applied before anything else.
    transpose: parameter names whose stored matrix is transposed on loading.
    """

    strip_prefixes: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    transpose: tuple[str, ...] = ()

    @staticmethod
    def of(strip_prefix: str | Sequence[str] = (), rename: Mapping[str, str] | None = None,
           transpose: Sequence[str] = ()) -> WeightMapping:
        """A mapping from Python values: one prefix or several, a dict, a list of names."""
        prefixes = (strip_prefix,) if isinstance(strip_prefix, str) else tuple(strip_prefix)
        return WeightMapping(tuple(prefix for prefix in prefixes if prefix),
                             tuple((rename or {}).items()), tuple(transpose))

    def parameter_name(self, stored: str) -> str:
        """The parameter name a stored array fills."""
        for key, target in self.rename:
            if key == stored:
                return target
        name = stored
        for prefix in self.strip_prefixes:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        name = name.removesuffix(".weight")
        return name.replace(".", "_")

    def is_identity(self) -> bool:
        return not (self.strip_prefixes or self.rename or self.transpose)


def map_weights(stored: Mapping[str, np.ndarray], specs: Sequence[ParameterSpec], *,
                mapping: WeightMapping | None = None, source: str = "the weights",
                dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """The model's parameters, in spec order, from `stored` arrays, cast to `dtype`.

    Raises one `InputError` listing every missing, extra, mis-shaped, non-float and doubly
    filled parameter (module docstring)."""
    mapping = mapping or WeightMapping()
    expected = {spec.name: tuple(int(size) for size in spec.shape) for spec in specs}
    problems: list[Diagnostic] = []
    filled: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for key in stored:
        name = mapping.parameter_name(key)
        if name not in expected:
            extra.append((key, name))
        elif name in filled:
            problems.append(Diagnostic(
                "E0537", f"{source} holds two arrays for parameter {name!r}: "
                f"{filled[name]!r} and {key!r}", None, "",
                "drop one, or rename one of them to another parameter"))
        else:
            filled[name] = key
    unfilled = [name for name in expected if name not in filled]
    for name in unfilled:
        problems.append(Diagnostic(
            "E0530", f"{source} has no parameter {name!r} (the model's {name} has shape "
            f"{list(expected[name])})", None, "",
            _missing_hint(name, expected[name], extra, stored)))
    for key, name in extra:
        notes = (f"read as {name!r}",) if name != key else ()
        close = difflib.get_close_matches(name, unfilled, n=1, cutoff=0.5)
        prefix = _prefix_fix(key, close[0]) if close else None
        if prefix is not None:
            hint = f"it fills {close[0]!r} with --strip-prefix {prefix}"
        elif close:
            hint = (f"if it is {close[0]!r}, rename it: --rename {key}={close[0]} "
                    f"(Python: rename={{{key!r}: {close[0]!r}}})")
        else:
            hint = "was the file saved for another model, or was the parameter renamed?"
        problems.append(Diagnostic(
            "E0531", f"{source} holds {key!r} of shape {list(stored[key].shape)}, which the "
            "model does not have", None, "", hint, notes))
    weights: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        if name not in filled:
            continue
        key = filled[name]
        array = np.asarray(stored[key])
        if name in mapping.transpose and array.ndim == 2:
            array = array.T
        fitted = _fit_shape(array, shape)
        if fitted is None:
            problems.append(_shape_problem(source, name, key, array, shape))
            continue
        if not np.issubdtype(fitted.dtype, np.floating):
            problems.append(Diagnostic(
                "E0535", f"parameter {name!r} in {source} has dtype {fitted.dtype}, not "
                "floating point", None, "", "save the weights as float32 or float64"))
            continue
        weights[name] = np.ascontiguousarray(fitted.astype(dtype, copy=False))
    if problems:
        raise InputError(problems)
    return weights


def _fit_shape(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    if tuple(array.shape) == shape:
        return array
    squeezed = tuple(size for size in array.shape if size != 1)
    if squeezed == tuple(size for size in shape if size != 1) and array.size == int(
            np.prod(shape, dtype=np.int64)):
        return array.reshape(shape)
    return None


def _shape_problem(source: str, name: str, key: str, array: np.ndarray,
                   shape: tuple[int, ...]) -> Diagnostic:
    stored_as = f" (stored as {key!r})" if key != name else ""
    message = (f"parameter {name!r}{stored_as} has shape {list(array.shape)} in {source} but "
               f"{list(shape)} in the model")
    if array.ndim == 2 and tuple(reversed(array.shape)) == shape and shape[0] != shape[1]:
        return Diagnostic(
            "E0532", message + ": it looks transposed", None, "",
            f"transpose it on loading: --transpose {name} (Python: transpose=[{name!r}]), "
            "or save its transpose")
    return Diagnostic("E0532", message, None, "",
                      "the model's sizes (hidden size, vocabulary) differ from the saved "
                      "ones; set them with -D NAME=VALUE (Python: sizes={...})")


def _prefix_fix(key: str, name: str) -> str | None:
    """A prefix of `key` (up to a dot) whose stripping makes it fill `name`, if any."""
    for position, character in enumerate(key):
        if character == "." and WeightMapping((key[:position + 1],)).parameter_name(key) == name:
            return key[:position + 1]
    return None


def _missing_hint(name: str, shape: tuple[int, ...], extra: list[tuple[str, str]],
                  stored: Mapping[str, np.ndarray]) -> str:
    for key, _ in extra:
        prefix = _prefix_fix(key, name)
        if prefix is not None:
            return (f"the file's {key!r} would fill it with the prefix {prefix!r} stripped: "
                    f"--strip-prefix {prefix} (Python: strip_prefix={prefix!r})")
    candidates = [key for key, read_as in extra if read_as.endswith(name)]
    if candidates:
        return f"if it is the file's {candidates[0]!r}: --rename {candidates[0]}={name}"
    if not stored:
        return "the file holds no arrays"
    return "was the file saved for another model or version of this model?"

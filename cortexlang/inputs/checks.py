"""The checks of a model's inputs that every backend makes, with the same error codes.

Written over plain values (a parameter's name, shape and span; a lookup's table and span),
so that the interpreter, which holds the checked program, and the compiled runtime, which
holds only its executable, raise the same errors for the same mistakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from cortexlang.errors import Diagnostic, InputError, Span


class Declared(Protocol):
    """What a check reads of a declared parameter."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def span(self) -> Span | None: ...


def check_parameters(params: Sequence[Declared], weights: Mapping[str, np.ndarray],
                     dtype: np.dtype, source: str) -> dict[str, np.ndarray]:
    """Every declared parameter from `weights`, checked against its declaration, in `dtype`.

    Raises `InputError` E0530 (missing), E0535 (not floats) or E0532 (wrong shape)."""
    parameters = {}
    for param in params:
        if param.name not in weights:
            raise InputError(Diagnostic(
                "E0530", f"the weights have no parameter `{param.name}`", param.span,
                "declared here", "initialise weights for this model (cortexlang weights "
                "MODEL.cx --init) or load the file saved for it"), source)
        value = np.asarray(weights[param.name])
        if not np.issubdtype(value.dtype, np.floating):
            raise InputError(Diagnostic(
                "E0535", f"parameter `{param.name}` holds {value.dtype} values, not floats",
                param.span, "declared here"), source)
        if value.shape != param.shape:
            raise InputError(Diagnostic(
                "E0532", f"parameter `{param.name}` has shape {list(value.shape)} in the "
                         f"weights but {list(param.shape)} in the model", param.span,
                "declared here", "were the weights saved for other sizes? check -D"),
                source)
        parameters[param.name] = value.astype(dtype, copy=False)
    return parameters


def missing_token_error(param: str, span: Span | None, input_name: str, structure: int,
                        node: int, source: str) -> InputError:
    """E0554: the lookup `param[...]` at `span` reads the token of a node that has none."""
    return InputError(Diagnostic(
        "E0554", f"structure {structure}, node {node} has no `{input_name}`, "
                 f"but `{param}[...]` reads it there", span,
        "no token at this node",
        "give every node the rule reads a token at a token id (leaves, for trees)"), source)


def token_outside_error(param: str, span: Span | None, row: int, rows: int, structure: int,
                        node: int, source: str) -> InputError:
    """E0555: the token of a node selects row `row` of `param`, a table of `rows` rows."""
    return InputError(Diagnostic(
        "E0555", f"structure {structure}, node {node}: token id {row} is outside "
                 f"`{param}`, which has {rows} rows", span,
        f"id {row} >= {rows}",
        "build the vocabulary to fit the model's size, or raise the size with -D"), source)

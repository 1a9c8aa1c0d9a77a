"""Checks of the values a run receives, before any backend computes with them.

The interpreter itself computes with whatever it is given (a NaN weight gives NaN outputs,
which is the arithmetic's meaning). A run of the command line asks more: a weight or a
feature that is NaN or infinite is nearly always a broken file, and a binary-tree node with
one child would silently read its missing right child as zeros. These checks find them, with
a location, so that both backends refuse the same inputs:

    nonfinite_weights(program, weights, source)   E0580, at the parameter's declaration
    nonfinite_features(structures)                E0581, at the structure (file and line)
    binary_arity(program, structures)             E0582, at the structure (file and line)

Each returns the diagnostics (empty when all is well); `cortexlang run` raises them as one
`InputError` unless `--allow-nonfinite` (for the first two) is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cortexlang.errors import Diagnostic, Span
from cortexlang.inputs.structure import Structure
from cortexlang.ir import checked as ir

MAX_REPORTED = 5  # diagnostics per check: the first few bad structures say enough


def _census(values: np.ndarray) -> tuple[str, tuple[int, ...]] | None:
    """'2 NaN and 1 infinite values' and the index of the first, or None if all finite."""
    finite = np.isfinite(values)
    if bool(finite.all()):
        return None
    nan = int(np.isnan(values).sum())
    infinite = int(values.size - finite.sum()) - nan
    parts = [f"{nan} NaN"] if nan else []
    parts += [f"{infinite} infinite"] if infinite else []
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    return " and ".join(parts) + " value" + "s" * (nan + infinite != 1), first


def nonfinite_weights(program: ir.CheckedProgram, weights: Mapping[str, np.ndarray],
                      source: str) -> list[Diagnostic]:
    """E0580 for each parameter holding NaN or infinite values, at its declaration.

    `source` names where the weights came from (a file, or "the initialised weights")."""
    diagnostics = []
    for param in program.params:
        value = weights.get(param.name)
        if value is None or not np.issubdtype(np.asarray(value).dtype, np.floating):
            continue  # missing or not floats: the backends' own checks (E0530, E0535) say so
        census = _census(np.asarray(value))
        if census is None:
            continue
        what, first = census
        diagnostics.append(Diagnostic(
            "E0580", f"parameter `{param.name}` in {source} holds {what} (the first at "
                     f"{list(first)})", param.span, "declared here",
            "a weight file with NaN or infinite values is usually broken: save it again; "
            "to run it anyway, pass --allow-nonfinite"))
    return diagnostics


def structure_span(structure: Structure) -> Span | None:
    """The file and line a structure was read from, when its reader recorded them."""
    path, line = structure.meta.get("path"), structure.meta.get("line")
    if isinstance(path, str) and isinstance(line, int) and line >= 1:
        return Span.point(path, line, 1)
    return None


def structure_name(structure: Structure, index: int) -> str:
    """'structure 3' with its file and record (or line) where known, for messages."""
    path, record = structure.meta.get("path"), structure.meta.get("record")
    name = f"structure {index}"
    if isinstance(path, str) and isinstance(record, str):
        return f"{name} ({path}, {record})"
    if isinstance(path, str) and structure_span(structure) is None:
        return f"{name} ({path})"
    return name


def nonfinite_features(structures: Sequence[Structure]) -> list[Diagnostic]:
    """E0581 for each structure (the first MAX_REPORTED) with a NaN or infinite feature."""
    diagnostics = []
    for index, structure in enumerate(structures):
        if structure.features is None:
            continue
        features = np.asarray(structure.features)
        if not np.issubdtype(features.dtype, np.floating):
            continue
        census = _census(features)
        if census is None:
            continue
        what, first = census
        node = f"node {first[0]}, feature {first[1]}" if len(first) == 2 else f"{list(first)}"
        diagnostics.append(Diagnostic(
            "E0581", f"{structure_name(structure, index)} has features with {what} (the first "
                     f"at {node})", structure_span(structure), "",
            "fix the input file; to run it anyway, pass --allow-nonfinite"))
        if len(diagnostics) == MAX_REPORTED:
            break
    return diagnostics


def binary_arity(program: ir.CheckedProgram,
                 structures: Sequence[Structure]) -> list[Diagnostic]:
    """E0582 for each structure (the first MAX_REPORTED) of a `binary_tree` model with a node
    of exactly one child: its rule would read the missing child as a zero state."""
    if program.structure.kind != "binary_tree":
        return []
    diagnostics = []
    for index, structure in enumerate(structures):
        children = np.asarray(structure.children)
        if children.ndim != 2:
            continue  # malformed arrays are the interpreter's E0551
        unary = np.flatnonzero((children >= 0).sum(axis=1) == 1)
        if not unary.size:
            continue
        diagnostics.append(Diagnostic(
            "E0582", f"{structure_name(structure, index)}: node {int(unary[0])} has one child "
                     f"({unary.size} such node{'s' * (unary.size != 1)}), but every internal "
                     "node of a binary_tree has two", structure_span(structure), "",
            "binarise the trees (collapse unary nodes such as (NP (NN dog)) into their "
            "child), or declare the model's structure as tree(max_children=2)"))
        if len(diagnostics) == MAX_REPORTED:
            break
    return diagnostics

"""A model as a worker holds it: built once from a picklable `ModelSpec`, then run on batches.

`ModelSpec` carries everything a worker on another machine needs and nothing it would have to
find on that machine's disk: the model's source text (and its path, for error locations), the
size overrides, the weights as arrays, the vocabulary's tokens, the backend and its options.

`LoadedModel(spec)` checks the program, gets the backend, and runs it once on no structures,
so that the compiled backend compiles its kernels and binds the weights in the constructor
(once per Ray actor or Serve replica), never inside a request.

`LoadedModel.run_rows(rows)` parses every row on its own (a bad row fails alone, with its
located error) and runs the rest as one batch: one linearization, one compiled run. When the
batch raises an `InputError` (a tree the model rejects: too many children, a token outside
the vocabulary, ...), it is split in halves until the structures at fault are alone, so that
one bad tree costs a few extra runs and never the batch. Environment problems and internal
errors are not caught: they are the job's, not a row's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cortexlang.backends import BackendOptions, get_backend
from cortexlang.errors import InputError
from cortexlang.frontend.check import check_source
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import Vocab
from cortexlang.interp.values import binary_arity, nonfinite_features
from cortexlang.outputs import Outputs
from cortexlang.ray.corpus import Row, parse_row


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """What to build on a worker. `weights` are the checked arrays of the model's parameters;
    `vocab` the vocabulary's tokens, `unknown_id` the id unknown tokens read as."""

    source: str
    path: str
    weights: Mapping[str, np.ndarray]
    vocab: tuple[str, ...]
    unknown_id: int = 0
    sizes: tuple[tuple[str, int], ...] = ()
    backend: str = "compiled"
    options: BackendOptions = field(default_factory=BackendOptions)
    allow_nonfinite: bool = False


@dataclass(frozen=True, eq=False)
class StructureResult:
    """One row's result: its arrays (`outputs/NAME` and `states/NAME`, this structure's root
    value or node rows) and node count, or the code and rendered text of its error."""

    id: str
    arrays: dict[str, np.ndarray] | None
    nodes: int = 0
    code: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.arrays is not None


def failure(identifier: str, error: InputError) -> StructureResult:
    """The result of a row that failed with `error` (its first code, all of its text)."""
    return StructureResult(identifier, None, code=error.codes[0], error=error.render())


class LoadedModel:
    """A checked program, its backend and weights, ready to run batches of rows."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.program = check_source(spec.source, spec.path, dict(spec.sizes))
        self.backend = get_backend(spec.backend)
        self.vocab = Vocab(spec.vocab, spec.unknown_id)
        self.weights = dict(spec.weights)
        # Compile and bind now: an empty run builds the kernels and uploads the weights.
        empty = self._run(())
        self.selectors = dict(empty.selectors)

    @property
    def max_children(self) -> int:
        return self.program.structure.max_children

    def _run(self, structures: Sequence[Structure]) -> Outputs:
        return self.backend(self.program, structures, self.weights, self.spec.options)

    def parse(self, row: Row) -> Structure:
        """The structure of a row, tokens read with the model's vocabulary. Raises the
        reader's `InputError`, or the single-process run's value checks: E0582 a node of one
        child in a binary tree, E0581 a feature that is NaN or infinite (unless allowed)."""
        structure = parse_row(row, self.vocab.lookup, max_children=self.max_children)
        diagnostics = binary_arity(self.program, [structure])
        if not self.spec.allow_nonfinite:
            diagnostics += nonfinite_features([structure])
        if diagnostics:
            raise InputError(diagnostics, "\n" * (row.line - 1) + row.text)
        return structure

    def run_rows(self, rows: Sequence[Row]) -> list[StructureResult]:
        """One result per row, in order (see the module docstring)."""
        results: list[StructureResult | None] = [None] * len(rows)
        parsed: list[tuple[int, Structure]] = []
        for position, row in enumerate(rows):
            try:
                parsed.append((position, self.parse(row)))
            except InputError as error:
                results[position] = failure(row.id, error)
        ids = [rows[position].id for position, _ in parsed]
        structures = [structure for _, structure in parsed]
        for (position, _), result in zip(parsed, self.run_structures(ids, structures),
                                         strict=True):
            results[position] = result
        return [result for result in results if result is not None]

    def run_structures(self, ids: Sequence[str],
                       structures: Sequence[Structure]) -> list[StructureResult]:
        """One result per structure: all in one run, or halves of the batch when it fails."""
        if not structures:
            return []
        try:
            outputs = self._run(structures)
        except InputError as error:
            if len(structures) == 1:
                return [failure(ids[0], error)]
            middle = len(structures) // 2
            return (self.run_structures(ids[:middle], structures[:middle])
                    + self.run_structures(ids[middle:], structures[middle:]))
        return [StructureResult(identifier, split_outputs(outputs, index),
                                structures[index].num_nodes)
                for index, identifier in enumerate(ids)]


def selectors_of(spec: ModelSpec) -> dict[str, str]:
    """Output name -> "root" or "all", from the program alone (no backend, no compiling)."""
    program = check_source(spec.source, spec.path, dict(spec.sizes))
    return {output.name: output.selector for output in program.outputs}


def split_outputs(outputs: Outputs, index: int) -> dict[str, np.ndarray]:
    """Structure `index`'s arrays: `outputs/NAME` (root value or node rows) and `states/NAME`
    (node rows), in the keys of the single-process run's archive."""
    arrays = {f"outputs/{name}": outputs.for_structure(name, index) for name in outputs.outputs}
    start, stop = int(outputs.node_offset[index]), int(outputs.node_offset[index + 1])
    arrays.update({f"states/{name}": values[start:stop]
                   for name, values in outputs.states.items()})
    return arrays

"""What `cortexlang.Compiled.run` returns, and the API's usage error (E0014)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs.structure import Structure
from cortexlang.outputs import Outputs


class Result(Mapping[str, np.ndarray]):
    """What a run produced: `result[name]` is output `name` (one row per structure for a
    `[root]` output, one per node for `[all]`); `states`, `node_offset`, and `provenance`
    (model, weights, vocabulary, backend, device) as `cortexlang run --json` reports it."""

    def __init__(self, outputs: Outputs, provenance: dict[str, Any],
                 structures: Sequence[Structure]) -> None:
        self.outputs = outputs
        self.provenance = provenance
        self.structures = tuple(structures)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.outputs.outputs:
            return self.outputs.outputs[name]
        known = ", ".join(self.outputs.outputs) or "none"
        raise KeyError(f"no output {name!r}; the model's outputs: {known}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs.outputs)

    def __len__(self) -> int:
        return len(self.outputs.outputs)

    @property
    def states(self) -> dict[str, np.ndarray]:
        return self.outputs.states

    @property
    def node_offset(self) -> np.ndarray:
        return self.outputs.node_offset

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in self.items())
        return f"<cortexlang.Result {shapes}>"


def api_usage(message: str, hint: str) -> UsageError:
    """A wrong argument to the Python API: exit 2 on the command line, E0014."""
    return UsageError(Diagnostic("E0014", message, None, "", hint))

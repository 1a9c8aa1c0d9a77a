"""What running a model produces, the same for every backend (interpreter or compiled).

Node-indexed arrays are in the inputs' own order: the nodes of structure 0 (by their ids in
the `Structure`), then structure 1, and so on; `node_offset[t]` is where structure t starts.
Comparing two backends is comparing these arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Outputs:
    """outputs: name -> [num_structures, *shape] for `[root]` outputs, or
    [total_nodes, *shape] for `[all]` outputs.
    states: name -> [total_nodes, *shape], every node's final state.
    node_offset: int64 [num_structures + 1].
    selectors: output name -> "root" or "all".
    timings: seconds spent per phase (e.g. "linearize", "compute"), for reports."""

    outputs: dict[str, np.ndarray]
    states: dict[str, np.ndarray]
    node_offset: np.ndarray
    selectors: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_structures(self) -> int:
        return int(self.node_offset.shape[0] - 1)

    def for_structure(self, name: str, index: int) -> np.ndarray:
        """The output (or state) `name` of one structure: its root value or its node rows."""
        if name in self.outputs and self.selectors.get(name) == "root":
            return self.outputs[name][index]
        values = self.outputs[name] if name in self.outputs else self.states[name]
        return values[int(self.node_offset[index]):int(self.node_offset[index + 1])]


def merge_outputs(parts: Sequence[Outputs]) -> Outputs:
    """One `Outputs` for consecutive batches of structures, as if run as one batch.

    Root outputs and node rows are concatenated in order; timings are summed per phase.
    """
    if not parts:
        raise ValueError("merge_outputs needs at least one part")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    offsets = [np.asarray([0], dtype=np.int64)]
    for part in parts:
        offsets.append(part.node_offset[1:] + offsets[-1][-1])
    timings: dict[str, float] = {}
    for part in parts:
        for phase, seconds in part.timings.items():
            timings[phase] = timings.get(phase, 0.0) + seconds
    return Outputs(
        outputs={name: np.concatenate([part.outputs[name] for part in parts])
                 for name in first.outputs},
        states={name: np.concatenate([part.states[name] for part in parts])
                for name in first.states},
        node_offset=np.concatenate(offsets),
        selectors=dict(first.selectors),
        timings=timings)

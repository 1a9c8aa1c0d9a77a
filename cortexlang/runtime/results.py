"""The device-free end of a run: the arrays read back, in the structures' own node order."""

from __future__ import annotations

import numpy as np

from cortexlang.ir.executable import Executable
from cortexlang.outputs import Outputs
from cortexlang.runtime.linearize import Linearized


def run_outputs(executable: Executable, linearized: Linearized, head_nodes: np.ndarray,
                states: dict[str, np.ndarray], heads: dict[str, np.ndarray],
                timings: dict[str, float], all_states: bool) -> Outputs:
    """`Outputs` from the states (rows by linearized node) and heads (rows by head node) read
    back: root outputs per structure, node outputs and states in original node order, and
    only the states the .cx program declares (not those a pass introduced)."""
    order = linearized.new_id[:int(linearized.node_offset[-1])]
    source_states = {state.name for state in executable.states if state.source}
    original_states = {name: values[order] for name, values in states.items()
                       if name in source_states} if all_states else {}
    outputs: dict[str, np.ndarray] = {}
    all_heads = len(head_nodes) == linearized.num_nodes and \
        not np.array_equal(head_nodes, linearized.roots)
    for output in executable.outputs:
        values = heads[output.name] if output.head else states[output.name]
        if output.head and not all_heads:
            outputs[output.name] = values
        else:
            outputs[output.name] = values[linearized.roots] \
                if output.selector == "root" else values[order]
    return Outputs(outputs, original_states, linearized.node_offset.astype(np.int64),
                   {output.name: output.selector for output in executable.outputs}, timings)

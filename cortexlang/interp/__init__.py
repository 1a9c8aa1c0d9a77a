"""The reference interpreter: the semantics of a checked program, run node by node in numpy.

    interpret(program, structures, weights, dtype=np.float32) -> Outputs

Modules: `order` (validating structures, children-before-parents order), `evaluate` (typed
expressions at one node), `interpreter` (the loop over structures and nodes).
"""

from cortexlang.interp.interpreter import interpret

__all__ = ["interpret"]

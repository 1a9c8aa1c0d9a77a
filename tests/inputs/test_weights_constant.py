"""The `constant(v)` initialiser the checker accepts is one init_weights honours."""

import numpy as np

from cortexlang.frontend.check import check_source
from cortexlang.inputs.weights import init_weights

SOURCE = """model Constant
sizes H = 3, V = 4
structure binary_tree
param Emb[V, H] ~ constant(0.25), b[H] ~ constant(-1)
input word: token
state h[H]
leaf n: h = Emb[word(n)] + b
internal n: h = h[left(n)] + h[right(n)]
output h[root]
"""


def test_constant_initialiser_fills_every_value() -> None:
    program = check_source(SOURCE, "constant.cx")
    weights = init_weights(program.params, seed=3)
    np.testing.assert_array_equal(weights["Emb"], np.full((4, 3), 0.25, dtype=np.float32))
    np.testing.assert_array_equal(weights["b"], np.full(3, -1.0, dtype=np.float32))

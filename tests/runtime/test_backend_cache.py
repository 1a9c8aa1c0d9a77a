"""The compiled backend keys its models and bound weights by value, not by `id()`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang import backends
from cortexlang.compiled_backend import weights_fingerprint
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.runtime.devices import Device

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_fingerprint_changes_with_contents_not_identity() -> None:
    weights = {"W": np.arange(6, dtype=np.float32).reshape(2, 3)}
    same = {"W": weights["W"].copy()}
    assert weights_fingerprint(["W"], weights) == weights_fingerprint(["W"], same)
    same["W"][1, 2] += 1
    assert weights_fingerprint(["W"], weights) != weights_fingerprint(["W"], same)
    assert weights_fingerprint(["W"], weights) != weights_fingerprint(
        ["W"], {"W": weights["W"].reshape(3, 2)})
    assert weights_fingerprint(["W"], weights) != weights_fingerprint(["W"], {})


@pytest.mark.opencl
def test_weights_changed_in_place_give_the_new_answer(opencl_device: Device) -> None:
    program = load_program(str(EXAMPLES / "sentiment.cx"), {"H": 4, "V": 20})
    trees = generators.sst_like_trees(4, rng=3, vocab_size=20)
    weights = init_weights(program.params, 0)
    options = backends.BackendOptions(device=opencl_device.info.spec)
    run = backends.get_backend("compiled")
    first = run(program, trees, weights, options)
    for value in weights.values():
        value *= 1.5                        # the same dict, the same arrays, new contents
    second = run(program, trees, weights, options)
    expected = interpret(program, trees, weights)
    for name in expected.outputs:
        np.testing.assert_allclose(second.outputs[name], expected.outputs[name], rtol=1e-4,
                                   atol=1e-5)
        assert not np.allclose(first.outputs[name], second.outputs[name])
    # A new dict with the first contents (it may sit at the old one's address) is bound.
    restored = {name: value / 1.5 for name, value in weights.items()}
    third = run(program, trees, restored, options)
    for name in expected.outputs:
        np.testing.assert_allclose(third.outputs[name], first.outputs[name], rtol=1e-5,
                                   atol=1e-6)

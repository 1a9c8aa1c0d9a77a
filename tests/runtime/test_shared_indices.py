"""A run's `indices` written in place into shared virtual memory give what uploading them
gives, as batches grow, shrink and a run fails midway."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.runtime.devices import Device, device_limits
from cortexlang.runtime.execute import CompiledModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.opencl
def test_shared_indices_give_the_uploaded_answer(opencl_device: Device) -> None:
    program = load_program(str(EXAMPLES / "sentiment.cx"), {"H": 4, "V": 20})
    weights = init_weights(program.params, 0)
    result = run_pipeline(program, Options(), device_limits(opencl_device))
    shared, uploaded = (CompiledModel(result, opencl_device, shared_indices=flag,
                                      optimise_build=False) for flag in (True, False))
    assert not uploaded.shared_indices
    if not shared.shared_indices:
        pytest.skip(f"{opencl_device.info.device_name} has no fine-grained shared memory")
    for model in (shared, uploaded):
        model.bind_weights(weights)
    trees = generators.sst_like_trees(24, rng=5, vocab_size=20)
    # One tree, then twelve (the shared buffer grows), then one again.
    for batch in (trees[:1], trees[1:13], trees[13:14]):
        got, expected = shared.run(batch), uploaded.run(batch)
        for name in expected.outputs:
            np.testing.assert_array_equal(got.outputs[name], expected.outputs[name])
        for name in expected.states:
            np.testing.assert_array_equal(got.states[name], expected.states[name])
    # A batch the model rejects leaves the next run's answer right.
    bad = generators.sst_like_trees(1, rng=6, vocab_size=40)
    with pytest.raises(InputError):
        shared.run(bad)
    after = shared.run(trees[14:18])
    reference = interpret(program, trees[14:18], weights)
    for name in reference.outputs:
        np.testing.assert_allclose(after.outputs[name], reference.outputs[name], rtol=1e-4,
                                   atol=1e-5)

"""Inputs larger than one run may hold are split into chunks of whole structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.passes.pipeline import run_pipeline
from cortexlang.runtime.execute import CompiledModel, chunk_structures, device_limits

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_chunks_hold_whole_structures_in_order() -> None:
    trees = generators.sst_like_trees(30, rng=3, vocab_size=40)
    limit = max(t.num_nodes for t in trees) + 20
    chunks = chunk_structures(trees, limit)
    assert len(chunks) > 1
    assert [t for chunk in chunks for t in chunk] == trees
    assert all(sum(t.num_nodes for t in chunk) <= limit for chunk in chunks)
    with pytest.raises(InputError) as raised:
        chunk_structures(trees, 3)
    assert raised.value.codes == ["E0557"]


def test_a_run_too_large_for_the_device_is_chunked_and_joined(
        opencl_device, monkeypatch: pytest.MonkeyPatch) -> None:
    program = load_program(str(EXAMPLES / "sentiment.cx"), {"H": 8, "V": 40})
    trees = generators.sst_like_trees(12, rng=5, vocab_size=40)
    weights = init_weights(program.params, 2)
    model = CompiledModel(run_pipeline(program, None, device_limits(opencl_device)),
                          opencl_device)
    model.bind_weights(weights)
    monkeypatch.setattr(model, "max_nodes", lambda: max(t.num_nodes for t in trees) + 10)
    result = model.run(trees)
    expected = interpret(program, trees, weights)
    np.testing.assert_array_equal(result.node_offset, expected.node_offset)
    for name in expected.outputs:
        np.testing.assert_allclose(result.outputs[name], expected.outputs[name], rtol=1e-4,
                                   atol=1e-6)
    np.testing.assert_allclose(result.states["c"], expected.states["c"], rtol=1e-4, atol=1e-6)

"""Shared by the interpreter tests: load an example, make weights, compare with a reference."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from reference.models import MODELS

from cortexlang.frontend.check import load_program
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.weights import WeightSpec, init_weights
from cortexlang.interp import interpret
from cortexlang.ir.checked import CheckedProgram
from cortexlang.outputs import Outputs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = tuple(sorted(MODELS))
# CI checks the repository out with shared/ beside it.
SST_TEST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst" / "test.txt"

# Small sizes keep the tests fast; every size of every example is covered.
SMALL_SIZES: dict[str, dict[str, int]] = {
    "treefc": {"H": 8, "V": 50},
    "treegru": {"H": 8, "V": 50},
    "treelstm": {"H": 8, "V": 50},
    "sentiment": {"H": 8, "V": 50},
    "mvrnn": {"H": 6, "V": 50, "M": 7},
    "dagrnn": {"H": 8, "X": 5},
    "childsum_treelstm": {"H": 8, "V": 50, "K": 4},
    "lstm_sequence": {"H": 8, "V": 50},
}

TOLERANCES = {np.float32: {"rtol": 1e-5, "atol": 1e-6},
              np.float64: {"rtol": 1e-12, "atol": 1e-13}}


@lru_cache(maxsize=64)
def example(name: str, overrides: tuple[tuple[str, int], ...]) -> CheckedProgram:
    """An example model checked with the given size overrides (cached: checking is pure)."""
    return load_program(str(EXAMPLES / f"{name}.cx"), dict(overrides))


def small_example(name: str, **overrides: int) -> CheckedProgram:
    sizes = {**SMALL_SIZES[name], **overrides}
    return example(name, tuple(sorted(sizes.items())))


# Wider than the models' usual +-0.1, so that gates leave their linear region and a wrong
# nonlinearity or a swapped gate shows in the comparison.
TEST_INIT = ("uniform", (-0.5, 0.5))


def weights_for(program: CheckedProgram, seed: int = 0) -> dict[str, np.ndarray]:
    """float64 weights, deterministic per (seed, parameter name)."""
    specs = [WeightSpec(param.name, param.shape, TEST_INIT) for param in program.params]
    return init_weights(specs, seed, dtype=np.float64)


def assert_matches_reference(name: str, program: CheckedProgram,
                             structures: Sequence[Structure], weights: dict[str, np.ndarray],
                             dtype: type = np.float32) -> Outputs:
    """Run the interpreter and the reference on every structure; every state and output of
    every node must agree within the dtype's tolerance."""
    result = interpret(program, structures, weights, dtype=dtype)
    assert result.num_structures == len(structures)
    tolerance = TOLERANCES[dtype]
    for index, structure in enumerate(structures):
        expected = MODELS[name](structure, weights, dtype)
        rows = slice(int(result.node_offset[index]), int(result.node_offset[index + 1]))
        for state, values in expected.states.items():
            actual = result.states[state][rows]
            assert actual.dtype == dtype
            np.testing.assert_allclose(actual, values, **tolerance,
                                       err_msg=f"{name}: state {state}, structure {index}")
        for output, value in expected.outputs.items():
            np.testing.assert_allclose(result.for_structure(output, index), value, **tolerance,
                                       err_msg=f"{name}: output {output}, structure {index}")
    return result

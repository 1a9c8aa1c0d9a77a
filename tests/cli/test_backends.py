"""The backend registry, joining chunked outputs, and atomic file writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang import atomic, backends
from cortexlang.errors import InputError, UsageError
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_compiler_is_the_default_and_the_interpreter_is_registered() -> None:
    assert backends.DEFAULT_BACKEND == "compiled"
    assert {"compiled", "interp"} <= set(backends.backend_names())
    program = load_program(str(EXAMPLES / "treefc.cx"), {"H": 4, "V": 20})
    trees = generators.sst_like_trees(2, rng=0, vocab_size=20)
    weights = init_weights(program.params, 0)
    run = backends.get_backend("interp")
    result = run(program, trees, weights, backends.BackendOptions(dtype="float64"))
    assert result.outputs["h"].dtype == np.float64
    np.testing.assert_array_equal(
        result.outputs["h"], interpret(program, trees, weights, dtype=np.float64).outputs["h"])


def test_registering_is_lazy_and_unknown_names_are_usage_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    made: list[str] = []

    def factory() -> backends.Backend:
        made.append("made")
        return backends.get_backend("interp")

    backends.register_backend("later", factory, "a test backend")
    assert made == [] and backends.backend_names()[-1] == "later"
    assert backends.backend_description("later") == "a test backend"
    backends.get_backend("later")
    assert made == ["made"]
    with pytest.raises(UsageError) as raised:
        backends.get_backend("missing")
    assert raised.value.codes == ["E0012"] and "later" in str(raised.value)


def test_settings_take_the_last_value() -> None:
    options = backends.BackendOptions(settings=(("unroll", "1"), ("unroll", "2")))
    assert options.setting("unroll") == "2" and options.setting("fuse", "on") == "on"


def test_merged_chunks_equal_one_batch() -> None:
    program = load_program(str(EXAMPLES / "sentiment.cx"), {"H": 4, "V": 20})
    trees = generators.sst_like_trees(5, rng=3, vocab_size=20)
    weights = init_weights(program.params, 0)
    whole = interpret(program, trees, weights)
    merged = backends.merge_outputs([interpret(program, trees[:2], weights),
                                     interpret(program, trees[2:3], weights),
                                     interpret(program, trees[3:], weights)])
    np.testing.assert_array_equal(merged.node_offset, whole.node_offset)
    for name in whole.outputs:
        np.testing.assert_array_equal(merged.outputs[name], whole.outputs[name])
    for name in whole.states:
        np.testing.assert_array_equal(merged.states[name], whole.states[name])
    assert merged.selectors == whole.selectors and set(merged.timings) == {"compute"}
    with pytest.raises(ValueError):
        backends.merge_outputs([])


def test_atomic_writes_replace_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    atomic.write_text(path, "first\n")
    atomic.write_text(path, "second\n")
    assert path.read_text() == "second\n"
    atomic.write_bytes(tmp_path / "data.bin", b"\x00\x01")
    assert (tmp_path / "data.bin").read_bytes() == b"\x00\x01"
    atomic.save_npz(tmp_path / "arrays.weights", {"a": np.arange(3)})
    with np.load(tmp_path / "arrays.weights") as archive:   # no .npz suffix appended
        np.testing.assert_array_equal(archive["a"], np.arange(3))
    with pytest.raises(RuntimeError), atomic.atomic_open(path, "w") as file:
        file.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.weights", "data.bin",
                                                          "notes.txt"]
    with pytest.raises(InputError) as raised:
        atomic.write_text(tmp_path / "missing" / "x.txt", "text")
    assert raised.value.codes == ["E0570"]
    with pytest.raises(ValueError):
        with atomic.atomic_open(path, "a"):
            pass

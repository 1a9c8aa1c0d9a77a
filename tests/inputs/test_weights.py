"""Weights: per-name deterministic initialisation, atomic saving, and checked loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.inputs.weights import (
    WeightSpec,
    describe_weights,
    init_weights,
    load_weights,
    save_weights,
)

SPECS = [WeightSpec("W", (8, 4)), WeightSpec("b", (8,), ("zeros", ())),
         WeightSpec("E", (20, 4), ("normal", (0.0, 0.5))), WeightSpec("one", (2,), ("ones", ()))]


def test_initialisers_and_dtypes() -> None:
    weights = init_weights(SPECS, seed=3)
    assert list(weights) == ["W", "b", "E", "one"]
    assert all(array.dtype == np.float32 for array in weights.values())
    assert weights["W"].shape == (8, 4) and np.abs(weights["W"]).max() <= 0.1
    assert (weights["b"] == 0).all() and (weights["one"] == 1).all()
    assert 0.2 < weights["E"].std() < 0.8
    double = init_weights(SPECS, seed=3, dtype=np.float64)
    assert double["W"].dtype == np.float64
    assert np.array_equal(double["W"].astype(np.float32), weights["W"])


def test_values_depend_on_seed_and_name_only() -> None:
    base = init_weights(SPECS, seed=1)
    more = init_weights([WeightSpec("extra", (3,))] + SPECS[::-1], seed=1)
    for name in base:
        assert np.array_equal(base[name], more[name])
    other = init_weights(SPECS, seed=2)
    assert not np.array_equal(base["W"], other["W"])
    renamed = init_weights([WeightSpec("V", (8, 4))], seed=1)
    assert not np.array_equal(base["W"], renamed["V"])


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    weights = init_weights(SPECS, seed=0)
    path = tmp_path / "model.weights"
    save_weights(path, weights)
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.weights"]
    loaded = load_weights(path, SPECS)
    assert list(loaded) == list(weights)
    for name in weights:
        assert np.array_equal(loaded[name], weights[name])


@pytest.mark.parametrize(("specs", "code", "words"), [
    (SPECS[:3], "E0531", ["one", "[2]"]),
    (SPECS + [WeightSpec("U", (4, 4))], "E0530", ["U", "[4, 4]"]),
    ([WeightSpec("W", (4, 8))] + SPECS[1:], "E0532", ["[8, 4]", "[4, 8]"]),
])
def test_mismatches_name_both_sides(tmp_path: Path, specs: list[WeightSpec], code: str,
                                    words: list[str]) -> None:
    path = tmp_path / "w.npz"
    save_weights(path, init_weights(SPECS))
    with pytest.raises(InputError) as caught:
        load_weights(path, specs)
    assert caught.value.codes == [code]
    assert all(word in str(caught.value) for word in words)


def test_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    save_weights(path, init_weights(SPECS))
    data = path.read_bytes()
    cases = {"missing.npz": None, "garbage.npz": b"not weights at all",
             "truncated.npz": data[: len(data) // 2], "empty.npz": b""}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as caught:
            load_weights(tmp_path / name, SPECS)
        assert caught.value.codes == ["E0533"], name
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(InputError) as caught:
        load_weights(tmp_path / "single.npy", SPECS)
    assert caught.value.codes == ["E0533"]
    np.savez(tmp_path / "ints.npz", **{spec.name: np.zeros(spec.shape, dtype=np.int64)
                                       for spec in SPECS})
    with pytest.raises(InputError) as caught:
        load_weights(tmp_path / "ints.npz", SPECS)
    assert caught.value.codes == ["E0535"] * len(SPECS)  # every parameter, not the first


@pytest.mark.parametrize("init", [("glorot", ()), ("uniform", (1.0,)), ("normal", (0, -1)),
                                  ("uniform", (1, 0)), ("zeros",), "uniform"])
def test_bad_initialisers(init: object) -> None:
    with pytest.raises(InputError) as caught:
        init_weights([WeightSpec("W", (2,), init)])  # type: ignore[arg-type]
    assert caught.value.codes == ["E0534"]


def test_description_has_a_row_per_parameter() -> None:
    text = describe_weights(init_weights(SPECS))
    lines = text.splitlines()
    assert lines[0].split() == ["name", "shape", "dtype", "mean", "std", "min", "max"]
    assert lines[1].split()[:3] == ["W", "8x4", "float32"]
    assert lines[-1] == "4 parameters, 122 values"

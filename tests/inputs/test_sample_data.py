"""The checked-in sample inputs read, look as documented, and match their generator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from cortexlang.inputs.load import load_structures

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def test_the_samples_read_as_documented() -> None:
    sample = load_structures(DATA / "sample.ptb")
    assert len(sample) == 42
    assert all(tree.max_arity == 2 for tree in sample.structures)
    roots = {int(tree.labels[tree.root]) for tree in sample.structures}
    assert roots == {0, 1, 2, 3, 4}
    assert "2\u00a01\\/2" in sample.vocab
    trees = load_structures(DATA / "sample.json", sample.vocab)
    assert len(trees) == 5 and trees.unknown_tokens == 1
    assert np.array_equal(trees.structures[0].children, sample.structures[0].children)
    assert trees.structures[4].max_arity == 4
    (grid,) = load_structures(DATA / "grid_4x4.json").structures
    assert grid.kind == "dag" and grid.num_nodes == 16 and grid.features is not None
    shaped = load_structures(DATA / "sst_shaped.ptb")
    assert len(shaped) == 200
    leaves = np.array([int((tree.words >= 0).sum()) for tree in shaped.structures])
    assert 15 < leaves.mean() < 23 and leaves.min() >= 2


def test_the_samples_are_what_the_script_makes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_samples", DATA / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("sample.ptb", "sample.json", "grid_4x4.json", "sst_shaped.ptb"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name

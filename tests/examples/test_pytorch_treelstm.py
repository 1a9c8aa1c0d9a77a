"""A TreeLSTM trained in PyTorch (DGL's layout) gives PyTorch's outputs in cortexlang.

The model is trained for a few steps by examples/pytorch/train_and_export.py, saved as a
state_dict (.pt and .safetensors) with a torchtext-style vocabulary (`<pad>` 0, `<unk>` 1),
and run on held-out SST trees (/work/shared/data/sst/dev.txt, else the bundled
examples/data/sst_shaped.ptb) through the API and the CLI, the interpreter and the compiled
kernels, and a .cxa artifact. Every path must agree with PyTorch within 1e-5.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")
pytest.importorskip("safetensors", reason="safetensors is not installed")

import cortexlang as cx  # noqa: E402
from cortexlang.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "pytorch" / "train_and_export.py"
MODEL = str(ROOT / "examples" / "pytorch" / "treelstm_dgl.cx")
HIDDEN = 8
TOLERANCE = 1e-5


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("train_and_export", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # node-by-node work on tiny matrices: threads only cost
    try:
        yield _train(tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def _train(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    example = _example()
    training = example.read_trees(example.TRAIN)
    vocab = example.build_vocab(training)
    model = example.train(training, vocab, hidden=HIDDEN, steps=6)
    untrained = example.train(training, vocab, hidden=HIDDEN, steps=0)
    moved = [not torch.equal(left, right) for left, right in
             zip(model.state_dict().values(), untrained.state_dict().values(), strict=True)]
    assert all(moved)  # the weights served are trained ones, not the initial draw
    out = tmp_path_factory.mktemp("pytorch")
    paths = example.export(model, vocab, out)
    lines = example.held_out_lines(20)
    trees_file = out / "held_out.ptb"
    trees_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    h, logits = example.reference(model, [example.parse_tree(line) for line in lines], vocab)
    # The held-out trees hold words the training trees do not: they must read as <unk> (1).
    unknown = sum(word not in vocab for tree in map(example.parse_tree, lines)
                  for word in example.leaves(tree))
    assert unknown > 0
    sizes = {"X": HIDDEN, "H": HIDDEN, "V": len(vocab), "C": 5}
    return {"paths": paths, "lines": lines, "trees": trees_file, "h": h, "logits": logits,
            "sizes": sizes, "out": out}


def _close(trained: dict[str, Any], h: np.ndarray, logits: np.ndarray) -> None:
    assert h.shape == trained["h"].shape and logits.shape == trained["logits"].shape
    assert float(np.abs(h - trained["h"]).max()) < TOLERANCE
    assert float(np.abs(logits - trained["logits"]).max()) < TOLERANCE


def _defines(trained: dict[str, Any]) -> list[str]:
    return [argument for name, value in trained["sizes"].items()
            for argument in ("-D", f"{name}={value}")]


@pytest.mark.parametrize("kind", ["pt", "safetensors"])
def test_api_gives_pytorch_outputs(trained: dict[str, Any], kind: str,
                                   opencl_device: object) -> None:
    model = cx.load(MODEL, sizes=trained["sizes"])
    model.load_weights(trained["paths"][kind], vocab=trained["paths"]["vocab"],
                       strip_prefix="cell.")
    assert model.vocab is not None and model.vocab.unknown_id == 1
    for backend in ("interp", "compiled"):
        out = model.compile(backend=backend).run(trained["lines"])
        _close(trained, out["h"], out["logits"])
        assert out.provenance["weights"]["path"] == str(trained["paths"][kind])
        assert out.provenance["weights"]["trained"] is True
        assert out.provenance["backend"] == backend


def test_cli_export_run_and_artifact(trained: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                     opencl_device: object) -> None:
    out, paths = trained["out"], trained["paths"]
    exported = out / "served.safetensors"
    assert main(["weights", str(paths["pt"]), "--model", MODEL, *_defines(trained),
                 "--strip-prefix", "cell.", "--vocab", str(paths["vocab"]),
                 "-o", str(exported)]) == 0
    capsys.readouterr()
    for backend in ("interp", "compiled"):
        saved = out / f"run_{backend}.npz"
        assert main(["run", MODEL, *_defines(trained), "--weights", str(exported),
                     "--trees", str(trained["trees"]), "--backend", backend,
                     "--out", str(saved), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["weights"]["path"] == str(exported)
        assert summary["vocab"]["source"] == "weights" and summary["vocab"]["unknown_id"] == 1
        with np.load(saved) as arrays:
            _close(trained, arrays["outputs/h"], arrays["outputs/logits"])
    artifact = out / "served.cxa"
    assert main(["compile", MODEL, *_defines(trained), "--weights", str(exported),
                 "-o", str(artifact)]) == 0
    saved = out / "run_cxa.npz"
    assert main(["run", str(artifact), "--trees", str(trained["trees"]), "--out", str(saved),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kernels"] == f"the kernels of {artifact}"
    with np.load(saved) as arrays:
        _close(trained, arrays["outputs/h"], arrays["outputs/logits"])
    loaded = cx.load(artifact)
    for backend in ("interp", "compiled"):
        result = loaded.compile(backend=backend).run(trained["lines"])
        _close(trained, result["h"], result["logits"])

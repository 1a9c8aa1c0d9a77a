"""`cortexlang run` says what it ran, and refuses the runs that would silently be wrong."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cortexlang.cli import main
from cortexlang.frontend.check import load_program
from cortexlang.inputs.vocab import Vocab
from cortexlang.inputs.weightfiles import make_meta, save_weights_file
from cortexlang.inputs.weights import init_weights

ROOT = Path(__file__).resolve().parents[2]
TREELSTM = str(ROOT / "examples" / "treelstm.cx")
SAMPLE = str(ROOT / "examples" / "data" / "sample.ptb")
SIZES = ["-D", "H=4", "-D", "V=200"]
INTERP = ["--backend", "interp"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    program = load_program(TREELSTM, {"H": 4, "V": 200})
    weights = init_weights(program.params, 3)
    raw = tmp_path / "trained.npz"
    np.savez(raw, **weights)
    vocab_path = tmp_path / "vocab.txt"
    words = [line.split() for line in Path(SAMPLE).read_text().splitlines()]
    tokens = sorted({token.strip("()") for line in words for token in line
                     if token.endswith(")")} - {""})
    vocab_path.write_text("<pad>\n<unk>\n" + "\n".join(tokens) + "\n", encoding="utf-8")
    with_vocab = tmp_path / "trained.safetensors"
    save_weights_file(with_vocab, weights, make_meta(vocab=Vocab.read(vocab_path)))
    return {"raw": str(raw), "vocab": str(vocab_path), "with_vocab": str(with_vocab),
            "dir": str(tmp_path)}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", TREELSTM, *SIZES, *INTERP, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_random_weights_and_built_vocabulary_are_named(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    code, out, _ = run(capsys, "--trees", SAMPLE)
    assert code == 0
    assert "weights  random, seed 0 (not trained)" in out
    assert "vocab    built from" in out and "random weights" in out
    assert "backend  interp, float32, the host (numpy)" in out


def test_trained_weights_without_a_vocabulary_are_refused(
        files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--trees", SAMPLE, "--weights", files["raw"])
    assert code == 1 and "E0525" in err and "--vocab" in err
    data = summary(capsys, "--trees", SAMPLE, "--weights", files["raw"], "--vocab",
                   files["vocab"])
    assert data["weights"]["path"] == files["raw"] and data["weights"]["trained"] is True
    assert data["vocab"]["source"] == "file" and data["vocab"]["unknown_id"] == 1


def test_the_vocabulary_saved_with_the_weights_is_used(
        files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    saved = summary(capsys, "--trees", SAMPLE, "--weights", files["with_vocab"])
    given = summary(capsys, "--trees", SAMPLE, "--weights", files["raw"], "--vocab",
                    files["vocab"])
    assert saved["vocab"]["source"] == "weights"
    assert saved["outputs"]["h"]["preview"] == given["outputs"]["h"]["preview"]
    other = Path(files["dir"]) / "other.txt"
    other.write_text("<unk>\ngood\n", encoding="utf-8")
    code, _, err = run(capsys, "--trees", SAMPLE, "--weights", files["with_vocab"],
                       "--vocab", str(other))
    assert code == 1 and "E0524" in err


def test_a_configurable_unknown_id(files: dict[str, str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = summary(capsys, "--trees", SAMPLE, "--weights", files["raw"], "--vocab",
                   files["vocab"], "--unknown", "0")
    assert data["vocab"]["unknown_id"] == 0
    code, _, err = run(capsys, "--trees", SAMPLE, "--weights", files["raw"], "--vocab",
                       files["vocab"], "--unknown", "9999")
    assert code == 1 and "E0523" in err


def test_trees_from_standard_input(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("(2 (2 good) (2 film))\n(S (NP a) (VP b))\n"))
    data = summary(capsys, "--trees", "-")
    assert data["inputs"]["structures"] == 2 and data["inputs"]["source"] == "<stdin>"


def test_a_unary_node_is_refused_or_collapsed(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    trees = tmp_path / "unary.ptb"
    trees.write_text("( (3 (2 good) (2 film)))\n", encoding="utf-8")
    code, _, err = run(capsys, "--trees", str(trees))
    assert code == 1 and "E0516" in err and f"{trees}:1:1" in err
    assert summary(capsys, "--trees", str(trees), "--collapse-unary")["inputs"]["nodes"] == 3


def test_a_label_too_large_is_a_located_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    trees = tmp_path / "big.ptb"
    trees.write_text("(2147483648 (2 good) (2 film))\n", encoding="utf-8")
    code, _, err = run(capsys, "--trees", str(trees))
    assert code == 1 and "E0505" in err and f"{trees}:1:2" in err


def test_a_damaged_artifact_is_exit_1_naming_the_file(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    path = tmp_path / "model.cxa"
    path.write_bytes(b"PK\x03\x04 not really")
    assert main(["run", str(path), "--trees", SAMPLE]) == 1
    err = capsys.readouterr().err
    assert "E0575" in err and str(path) in err


def test_ray_jobs_follow_the_same_vocabulary_rules(files: dict[str, str]) -> None:
    from cortexlang.cli import build_parser, load_commands
    from cortexlang.errors import InputError
    from cortexlang.ray.cli import model_spec

    parser = build_parser(load_commands())
    built = Vocab.from_tokens(["good", "film"])
    args = parser.parse_args(["run", TREELSTM, *SIZES, "--trees", SAMPLE, "--ray",
                              "--weights", files["raw"]])
    with pytest.raises(InputError) as caught:
        model_spec(args, built)
    assert caught.value.codes == ["E0525"]
    args = parser.parse_args(["run", TREELSTM, *SIZES, "--trees", SAMPLE, "--ray",
                              "--weights", files["with_vocab"]])
    spec = model_spec(args, built)
    assert spec.vocab[:2] == ("<pad>", "<unk>") and spec.unknown_id == 1

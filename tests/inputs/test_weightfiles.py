"""Weights files of every format, the mapping from stored names, and every mismatch listed."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cortexlang.cli import main
from cortexlang.errors import InputError
from cortexlang.inputs.vocab import Vocab
from cortexlang.inputs.weightfiles import make_meta, open_weights, save_weights_file
from cortexlang.inputs.weightmap import WeightMapping, map_weights
from cortexlang.inputs.weights import WeightSpec, load_weights

SPECS = [WeightSpec("embedding", (6, 4)), WeightSpec("W_iou", (6, 4)),
         WeightSpec("b_iou", (6,)), WeightSpec("U_f", (4, 4)), WeightSpec("U_f_bias", (4,))]
STATE = {"embedding.weight": np.ones((6, 4)), "cell.W_iou.weight": np.full((6, 4), 2.0),
         "cell.b_iou": np.full((1, 6), 3.0), "cell.U_f.weight": np.eye(4),
         "cell.U_f.bias": np.arange(4.0)}
ROOT = Path(__file__).resolve().parents[2]
TREELSTM = str(ROOT / "examples" / "treelstm.cx")


def codes(error: pytest.ExceptionInfo[InputError]) -> list[str]:
    return error.value.codes


def test_state_dict_names_map_with_a_prefix_and_weight_suffixes() -> None:
    weights = map_weights(STATE, SPECS, mapping=WeightMapping.of("cell."))
    assert list(weights) == [spec.name for spec in SPECS]
    assert weights["b_iou"].shape == (6,) and float(weights["b_iou"][0]) == 3.0
    assert weights["U_f_bias"].tolist() == [0, 1, 2, 3]


def test_rename_wins_over_the_rules() -> None:
    specs = SPECS[:4] + [WeightSpec("b_f", (4,))]
    weights = map_weights(STATE, specs,
                          mapping=WeightMapping.of("cell.", {"cell.U_f.bias": "b_f"}))
    assert weights["b_f"].tolist() == [0, 1, 2, 3]


def test_every_missing_extra_and_misshaped_array_is_listed() -> None:
    with pytest.raises(InputError) as caught:
        map_weights(STATE, SPECS)  # no prefix stripped: four arrays read as cell_...
    assert sorted(codes(caught)) == ["E0530"] * 4 + ["E0531"] * 4
    text = caught.value.render()
    assert "--strip-prefix cell." in text and "8 errors" in text


def test_a_transposed_matrix_is_called_transposed_and_can_be_loaded() -> None:
    stored = {**STATE, "cell.W_iou.weight": np.zeros((4, 6))}
    with pytest.raises(InputError) as caught:
        map_weights(stored, SPECS, mapping=WeightMapping.of("cell."))
    assert codes(caught) == ["E0532"] and "looks transposed" in caught.value.render()
    weights = map_weights(stored, SPECS, mapping=WeightMapping.of("cell.", None, ["W_iou"]))
    assert weights["W_iou"].shape == (6, 4)


def test_two_arrays_for_one_parameter() -> None:
    stored = {**STATE, "W_iou": np.zeros((6, 4))}
    with pytest.raises(InputError) as caught:
        map_weights(stored, SPECS, mapping=WeightMapping.of("cell."))
    assert codes(caught) == ["E0537"]


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_metadata_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    vocab = Vocab(("<pad>", "<unk>", "good"), 1)
    save_weights_file(path, {"W": np.ones((2, 2), np.float32)},
                      make_meta(model="M", vocab=vocab, init_seed=None))
    stored = open_weights(path)
    assert stored.format == suffix[1:] and list(stored.arrays) == ["W"]
    assert stored.vocab == vocab and stored.init_seed is None


def test_a_zip_that_is_not_an_npz_is_a_located_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert main(["weights", str(path)]) == 1
    err = capsys.readouterr().err
    assert "E0533" in err and str(path) in err and "neither an .npz" in err


def test_a_pt_file_without_torch_says_how_to_convert(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"W": torch.ones(2, 2)}, path)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(InputError) as caught:
        open_weights(path)
    assert codes(caught) == ["E0536"] and "safetensors" in caught.value.render()


def test_a_pt_file_is_inspected_and_its_pickles_stay_safe(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"cell": {"W_iou.weight": torch.ones(6, 4)}}, path)
    assert main(["weights", str(path)]) == 0
    assert "cell.W_iou.weight" in capsys.readouterr().out
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"W": torch.ones(1), "f": Path("x")}, unsafe)  # an object weights_only refuses
    assert main(["weights", str(unsafe)]) == 1
    assert "E0533" in capsys.readouterr().err


def test_weights_for_another_model_name_every_missing_array(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "raw.npz"
    np.savez(path, **{f"w{index}": np.zeros(2) for index in range(7)})
    assert main(["weights", str(path), "--model", TREELSTM, "-D", "H=4", "-D", "V=8"]) == 1
    err = capsys.readouterr().err
    for name in ("Emb", "W_leaf", "b_leaf", "U", "b"):
        assert f"no parameter '{name}'" in err
    assert err.count("E0531") == 7 and "12 errors" in err


def test_load_weights_reads_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights_file(path, {"W": np.ones((2, 3), np.float32)})
    assert load_weights(path, [WeightSpec("W", (2, 3))])["W"].shape == (2, 3)

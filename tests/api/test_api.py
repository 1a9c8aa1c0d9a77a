"""The Python API: structures of every kind, weights from dicts, provenance, artifacts."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cortexlang as cx
from cortexlang import artifact as artifact_module
from cortexlang.errors import InputError, UsageError
from cortexlang.inputs.weights import init_weights

ROOT = Path(__file__).resolve().parents[2]
TREELSTM = str(ROOT / "examples" / "treelstm.cx")
SIZES = {"H": 8, "V": 16}
VOCAB = ["<pad>", "<unk>", "good", "film", "bad"]
TREES = ["(3 (2 good) (2 film))", "(1 (2 bad) (3 (2 good) (2 film)))"]


def trained_model() -> cx.Model:
    model = cx.load(TREELSTM, sizes=SIZES)
    arrays = init_weights(model.program.params, 7)
    return model.load_weights(arrays, vocab=VOCAB)


def test_every_kind_of_structure_gives_the_same_outputs() -> None:
    compiled = trained_model().compile(backend="interp")
    expected = compiled.run(TREES)["h"]
    nested = [("good", "film"), ["bad", ("good", "film")]]
    assert np.array_equal(compiled.run(nested)["h"], expected)
    structures = compiled.run(TREES).structures
    assert np.array_equal(compiled.run(list(structures))["h"], expected)
    record = {"tree": {"children": [{"word": "good"}, {"word": "film"}]}}
    assert np.array_equal(compiled.run([record])["h"], expected[:1])


def test_nltk_trees() -> None:
    nltk = pytest.importorskip("nltk", reason="nltk is not installed")
    compiled = trained_model().compile(backend="interp")
    trees = [nltk.Tree.fromstring(text) for text in TREES]
    assert np.array_equal(compiled.run(trees)["h"], compiled.run(TREES)["h"])


def test_an_nltk_label_too_large_is_an_error() -> None:
    nltk = pytest.importorskip("nltk", reason="nltk is not installed")
    compiled = trained_model().compile(backend="interp")
    with pytest.raises(InputError) as caught:
        compiled.run([nltk.Tree.fromstring("(2147483648 (2 good) (2 film))")])
    assert caught.value.codes == ["E0505"]


def test_unknown_words_read_as_the_vocabularys_unknown_id() -> None:
    compiled = trained_model().compile(backend="interp")
    result = compiled.run(["(2 (2 zzz) (2 film))"])
    assert result.structures[0].words.tolist()[0] == 1  # <unk> is id 1 after <pad>
    assert result.provenance["vocab"]["unknown_id"] == 1


def test_trained_weights_without_a_vocabulary_are_an_error() -> None:
    model = cx.load(TREELSTM, sizes=SIZES)
    with pytest.raises(InputError) as caught:
        model.load_weights(init_weights(model.program.params, 7))
    assert caught.value.codes == ["E0525"] and "vocab" in caught.value.render()


def test_random_weights_say_so() -> None:
    result = cx.load(TREELSTM, sizes=SIZES).compile(backend="interp").run(TREES)
    assert result.provenance["weights"] == {"path": None, "seed": 0, "trained": False,
                                            "description": "random, seed 0 (not trained)"}
    assert result.provenance["vocab"]["source"] == "inputs"


def test_unary_nodes_and_binarize_through_the_api() -> None:
    compiled = trained_model().compile(backend="interp")
    with pytest.raises(InputError) as caught:
        compiled.run(["(2 (2 good) (3 (2 film)))"])
    assert caught.value.codes == ["E0516"]
    collapsed = compiled.run(["(2 (2 good) (3 (2 film)))"], collapse_unary=True)
    assert np.array_equal(collapsed["h"], compiled.run(["(2 (2 good) (2 film))"])["h"])
    wide = compiled.run(["(2 (2 bad) (2 good) (2 film))"], binarize="right")
    assert np.array_equal(wide["h"], compiled.run([TREES[1]])["h"])


@pytest.mark.parametrize(("call", "code"), [
    (lambda model: model.compile(backend="gpu"), "E0014"),
    (lambda model: model.compile(options={"fuse_everything": True}), "E0014"),
    (lambda model: model.compile(backend="interp").run(TREES[0]), "E0595"),
    (lambda model: model.compile(backend="interp").run([3.5]), "E0595"),
])
def test_wrong_calls_are_coded_errors(call: object, code: str) -> None:
    with pytest.raises((InputError, UsageError)) as caught:
        call(trained_model())  # type: ignore[operator]
    assert caught.value.codes == [code]


def test_artifact_round_trip_and_damage(tmp_path: Path, opencl_device: object) -> None:
    compiled = trained_model().compile()
    expected = compiled.run(TREES)["h"]
    path = tmp_path / "model.cxa"
    compiled.save(path)
    loaded = cx.load(path)
    assert loaded.vocab is not None and loaded.vocab.tokens == tuple(VOCAB)
    again = loaded.compile()
    assert again.kernels_note.startswith(f"the kernels of {path}")
    assert np.array_equal(again.run(TREES)["h"], expected)
    data = path.read_bytes()
    damaged = {"truncated.cxa": data[: len(data) // 2], "noise.cxa": b"x" * 100}
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as caught:
            cx.load(tmp_path / name)
        assert caught.value.codes == ["E0575"] and name in caught.value.render()
    foreign = tmp_path / "foreign.cxa"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("manifest.json", '{"format": "something-else"}')
    with pytest.raises(InputError) as caught:
        cx.load(foreign)
    assert caught.value.codes == ["E0575"]
    tampered = tmp_path / "tampered.cxa"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for member in source.namelist():
            content = source.read(member)
            target.writestr(member, content + b"\n" if member == "kernels.cl" else content)
    with pytest.raises(InputError) as caught:
        cx.load(tampered)
    assert caught.value.codes == ["E0575"] and "checksum" in caught.value.render()


def test_an_interrupted_artifact_write_leaves_nothing(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model = trained_model()
    program = model.program
    from cortexlang.passes.pipeline import Options
    from cortexlang.passes.plan_kernels import DeviceLimits

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    with pytest.raises(KeyboardInterrupt):
        artifact_module.write_artifact(
            tmp_path / "model.cxa", program, overrides={}, options=Options(),
            limits=DeviceLimits(), kernel_source="", weights=model.weights or {},
            vocab=model.vocab, init_seed=None)
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_cortexlang() -> None:
    completed = subprocess.run([sys.executable, "-m", "cortexlang", "check", TREELSTM],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0 and "TreeLSTM" in completed.stdout

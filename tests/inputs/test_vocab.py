"""Vocabularies: ids, files, pruning with a remap, and the size check against a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import UNKNOWN, Vocab, VocabBuilder, remap_words


def test_ids_follow_first_appearance_and_unknown_is_zero() -> None:
    vocab = Vocab.from_tokens(["b", "a", "b", "c"])
    assert vocab.tokens == (UNKNOWN, "b", "a", "c")
    assert [vocab.lookup(token) for token in ["a", "b", "c", "zzz"]] == [2, 1, 3, 0]
    assert vocab.ids(["c", "q"]).tolist() == [3, 0]
    assert len(vocab) == 4 and "a" in vocab and vocab.token(3) == "c"


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.from_tokens(["x", "8\u00a01\\/2", "-LRB-"])
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == UNKNOWN
    assert Vocab.read(path).tokens == vocab.tokens
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.txt"]


def test_a_word_list_without_unknown_gets_it_in_front(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("good\nbad\n", encoding="utf-8")
    assert Vocab.read(path).tokens == (UNKNOWN, "good", "bad")


@pytest.mark.parametrize(("text", "code", "line"), [
    ("<unk>\ngood\n\nbad\n", "E0521", 3),
    ("<unk>\ngood\nbad\ngood\n", "E0520", 4),
])
def test_bad_vocabulary_files(tmp_path: Path, text: str, code: str, line: int) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        Vocab.read(path)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == code
    assert diagnostic.span is not None and diagnostic.span.line == line


def test_missing_vocabulary_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        Vocab.read(tmp_path / "none.txt")
    assert caught.value.codes == ["E0509"]


def test_a_vocabulary_larger_than_the_model_is_an_error() -> None:
    vocab = Vocab.from_tokens(["a", "b", "c"])
    vocab.check_fits(4)
    with pytest.raises(InputError) as caught:
        vocab.check_fits(3, source="train.ptb")
    assert caught.value.codes == ["E0522"]
    assert caught.value.diagnostics[0].hint


def test_builder_prunes_and_remaps() -> None:
    builder = VocabBuilder()
    ids = [builder.add(token) for token in "a b a c b a d".split()]
    assert ids == [1, 2, 1, 3, 2, 1, 4]
    vocab, remap = builder.freeze(max_size=3)
    assert vocab.tokens == (UNKNOWN, "a", "b")
    assert remap.tolist() == [0, 1, 2, 0, 0]
    structure = Structure(children=np.full((3, 1), -1, dtype=np.int32),
                          words=np.array([4, -1, 2], dtype=np.int32), root=0)
    (remapped,) = remap_words([structure], remap)
    assert remapped.words.tolist() == [0, -1, 2]
    vocab, remap = builder.freeze(min_count=2)
    assert vocab.tokens == (UNKNOWN, "a", "b")
    vocab, remap = builder.freeze()
    assert remap.tolist() == list(range(5))
    assert remap_words([structure], remap)[0] is structure


def test_a_torchtext_style_file_keeps_its_ids(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<unk>\ngood\n", encoding="utf-8")
    vocab = Vocab.read(path)
    assert vocab.tokens == ("<pad>", "<unk>", "good") and vocab.unknown_id == 1
    assert vocab.ids(["good", "zzz", "<pad>"]).tolist() == [2, 1, 0]
    other = Vocab.read(path, unknown=0)
    assert other.unknown_id == 0 and other.lookup("zzz") == 0
    named = Vocab.read(path, unknown="[UNK]")
    assert named.tokens[0] == "[UNK]" and named.lookup("good") == 3
    with pytest.raises(InputError) as caught:
        Vocab.read(path, unknown=3)
    assert caught.value.codes == ["E0523"]

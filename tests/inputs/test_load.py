"""`load_structures`: format detection, vocabularies built or given, and the size check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortexlang.errors import InputError
from cortexlang.inputs.load import detect_format, load_structures
from cortexlang.inputs.vocab import Vocab

PTB = "(2 (3 good) (2 film))\n(1 (1 bad) (2 (2 film) (2 .)))\n"
JSON = json.dumps({"tree": {"children": [{"word": "good"}, {"word": "plot"}]}}) + "\n"


def test_format_from_extension_then_content(tmp_path: Path) -> None:
    for name, text, expected in [("a.ptb", "", "ptb"), ("a.jsonl", "", "json"),
                                 ("a.data", "  (2 x)", "ptb"), ("a.data", "\n[", "json")]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert detect_format(path) == expected
    unknown = tmp_path / "a.data"
    unknown.write_text("hello", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        detect_format(unknown)
    assert caught.value.codes == ["E0540"]
    with pytest.raises(InputError) as caught:
        detect_format(tmp_path / "missing.data")
    assert caught.value.codes == ["E0509"]


def test_a_vocabulary_is_built_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "trees.ptb"
    path.write_text(PTB, encoding="utf-8")
    loaded = load_structures(path)
    assert loaded.format == "ptb" and len(loaded) == 2
    assert loaded.vocab.tokens == ("<unk>", "good", "film", "bad", ".")
    assert loaded.structures[1].words.tolist() == [3, 2, 4, -1, -1]
    assert loaded.unknown_tokens == 0
    pruned = load_structures(path, max_vocab_size=2)
    assert pruned.vocab.tokens == ("<unk>", "film")
    assert pruned.structures[1].words.tolist() == [0, 1, 0, -1, -1]
    assert pruned.unknown_tokens == 3


def test_a_given_vocabulary_maps_unknown_tokens_to_zero(tmp_path: Path) -> None:
    path = tmp_path / "trees.json"
    path.write_text(JSON, encoding="utf-8")
    loaded = load_structures(path, Vocab.from_tokens(["good"]))
    assert loaded.format == "json"
    assert loaded.structures[0].words.tolist() == [1, 0, -1]
    assert loaded.unknown_tokens == 1


def test_limits_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "trees.ptb"
    path.write_text(PTB, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_structures(path, model_vocab_size=4)
    assert caught.value.codes == ["E0522"]
    with pytest.raises(InputError) as caught:
        load_structures(path, max_children=1)
    assert caught.value.codes == ["E0507"]
    with pytest.raises(InputError) as caught:
        load_structures(path, input_format="csv")
    assert caught.value.codes == ["E0540"]

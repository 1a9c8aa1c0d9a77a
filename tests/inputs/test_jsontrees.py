"""JSON inputs: nested trees, flat records, lists and JSON lines, round trips and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.inputs import generators
from cortexlang.inputs.jsontrees import (
    iter_json,
    parse_json_structures,
    to_json_record,
    write_json,
)
from cortexlang.inputs.ptb import parse_ptb_line
from cortexlang.inputs.vocab import VocabBuilder

TREE = {"tree": {"label": 3, "children": [{"word": "good", "label": 3},
                                          {"children": [{"word": "fun"}, {"word": "!"}]}]}}


def same_children(first: np.ndarray, second: np.ndarray) -> bool:
    """Equal child arrays once both are padded with -1 to the same width."""
    width = max(first.shape[1], second.shape[1])
    pad = [np.pad(array, ((0, 0), (0, width - array.shape[1])), constant_values=-1)
           for array in (first, second)]
    return np.array_equal(pad[0], pad[1])


def test_a_nested_tree_matches_the_ptb_reading() -> None:
    builder = VocabBuilder()
    (tree,) = parse_json_structures(json.dumps(TREE), builder.add)
    assert tree.kind == "tree" and tree.root == 4
    assert tree.children.tolist() == [[-1, -1], [-1, -1], [-1, -1], [1, 2], [0, 3]]
    assert tree.labels.tolist() == [3, -1, -1, -1, 3]
    assert tree.tokens == ("good", "fun", "!", None, None)
    same = parse_ptb_line("(3 (3 good) (-1 (-1 fun) (-1 !)))", VocabBuilder().add)
    assert same is not None and np.array_equal(same.children, tree.children)


def test_lists_json_lines_and_pretty_records_all_read() -> None:
    flat = {"nodes": 3, "children": [[-1, -1], [0, -1], [-1, 1]], "root": 2,
            "features": [[1, 2], [3, 4], [5, 6]]}
    texts = [json.dumps([TREE, flat]), json.dumps(TREE) + "\n" + json.dumps(flat) + "\n",
             json.dumps(TREE, indent=2) + "\n\n" + json.dumps(flat, indent=2)]
    for text in texts:
        tree, dag = parse_json_structures(text, VocabBuilder().add)
        assert tree.num_nodes == 5 and dag.kind == "dag" and dag.root == 2
        assert dag.children.tolist() == [[-1, -1], [0, -1], [-1, 1]]
        assert dag.features is not None and dag.features.dtype == np.float64
    assert parse_json_structures("[]", VocabBuilder().add) == []


def test_round_trip_of_every_kind(tmp_path: Path) -> None:
    vocab = generators.pseudo_vocab(30)
    structures = (generators.sst_like_trees(3, rng=1, vocab_size=30)
                  + [generators.grid(3, 3, 2, rng=1), generators.sequence(4, rng=1, vocab_size=30),
                     generators.random_nary_tree(4, rng=2, leaves=9, vocab_size=30),
                     generators.chain(600, rng=3, vocab_size=30)])
    for lines in (True, False):
        path = tmp_path / f"out-{lines}.json"
        write_json(structures, path, vocab, lines=lines)
        again = list(iter_json(path, vocab.lookup))
        assert len(again) == len(structures)
        for original, read in zip(structures, again, strict=True):
            assert read.kind == original.kind and read.root == original.root
            assert np.array_equal(read.words, original.words)
            assert same_children(read.children, original.children)
            if original.features is not None:
                assert read.features is not None
                assert np.allclose(read.features, original.features)
    assert "tree" not in to_json_record(structures[-1], vocab)
    assert "tree" in to_json_record(structures[0], vocab)


@pytest.mark.parametrize(("text", "code", "line"), [
    ('{"tree": {"word": "a"}}\n{"tree": {"word": "b"}\n', "E0510", 2),
    ('[{"tree": {"word": "a"}} {"tree": {"word": "b"}}]', "E0510", 1),
    ('{"tree": {"word": "a"}}\n\n{"tree": {"label": 2}}\n', "E0504", 3),
    ('{"tree": {"word": "a", "children": [{"word": "b"}]}}', "E0508", 1),
    ('{"tree": {"word": "a", "colour": 1}}', "E0511", 1),
    ('{"tree": {"word": 7}}', "E0511", 1),
    ('{"tree": {"label": "pos", "word": "a"}}', "E0511", 1),
    ('{"tree": {"label": 99999999999, "word": "a"}}', "E0511", 1),
    ('{"trees": []}', "E0511", 1),
    ('\n  [1]', "E0511", 2),
    ('{"nodes": 2, "children": [[-1], [5]]}', "E0512", 1),
    ('{"nodes": 2, "children": [[-1], [1]]}', "E0512", 1),
    ('{"nodes": 2, "children": [[-1], [0]], "root": 2}', "E0512", 1),
    ('{"nodes": 2, "children": [[-1], [10000000000000000000000]]}', "E0512", 1),
    ('{"nodes": 2, "children": [[-1]]}', "E0511", 1),
    ('{"nodes": 2, "children": [[-1], [0]], "kind": "graph"}', "E0511", 1),
    ('{"nodes": 2, "children": [[-1], [0]], "features": [[1], [1, 2]]}', "E0511", 1),
    ('{"nodes": 1, "children": [[-1]], "tokens": [3]}', "E0511", 1),
    ('{"nodes": 2, "children": [[-1, -1, -1], [0, 0, 0]]}', "E0507", 1),
    ('{"tree": {"children": [{"word": "a"}, {"word": "b"}, {"word": "c"}]}}', "E0507", 1),
    ('{"tree": ' * 3000 + '{"word": "a"}' + '}' * 3000, "E0513", 1),
])
def test_bad_json_is_located(text: str, code: str, line: int) -> None:
    with pytest.raises(InputError) as caught:
        parse_json_structures(text, VocabBuilder().add, path="bad.json", max_children=2)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == code
    assert diagnostic.span is not None
    assert (diagnostic.span.path, diagnostic.span.line) == ("bad.json", line)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        list(iter_json(tmp_path / "none.json", VocabBuilder().add))
    assert caught.value.codes == ["E0509"]

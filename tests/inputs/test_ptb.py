"""The PTB reader and writer: structure, numbering, round trips and located errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import InputError
from cortexlang.inputs.generators import pseudo_vocab, sst_like_trees
from cortexlang.inputs.ptb import format_ptb, iter_ptb, parse_ptb, parse_ptb_line, write_ptb
from cortexlang.inputs.vocab import Vocab, VocabBuilder


def test_a_small_tree_is_numbered_in_post_order() -> None:
    builder = VocabBuilder()
    tree = parse_ptb_line("(2 (3 (3 Effective) (2 but)) (1 (1 too-tepid) (2 biopic)))",
                          builder.add)
    assert tree is not None
    assert tree.kind == "tree" and tree.root == 6
    assert tree.children.tolist() == [[-1, -1], [-1, -1], [0, 1], [-1, -1], [-1, -1],
                                      [3, 4], [2, 5]]
    assert tree.tokens == ("Effective", "but", None, "too-tepid", "biopic", None, None)
    assert tree.labels.tolist() == [3, 2, 3, 1, 2, 1, 2]
    assert tree.words.tolist() == [1, 2, -1, 3, 4, -1, -1]
    assert tree.children.dtype == np.int32 and tree.words.dtype == np.int32


def test_n_ary_nodes_and_whitespace() -> None:
    tree = parse_ptb_line("  ( 4 (1 a)\t(2 b) (3 c) (0 d) )  ", Vocab.from_tokens("abcd").lookup)
    assert tree is not None
    assert tree.children.shape == (5, 4)
    assert tree.children[4].tolist() == [0, 1, 2, 3]
    assert tree.words.tolist() == [1, 2, 3, 4, -1]


def test_non_breaking_space_stays_inside_the_token() -> None:
    tree = parse_ptb_line("(2 (2 8\u00a01\\/2) (2 weeks))", VocabBuilder().add)
    assert tree is not None
    assert tree.tokens[0] == "8\u00a01\\/2"


def test_blank_lines_are_skipped_and_lines_are_counted() -> None:
    trees = parse_ptb("\n(1 a)\n   \n(2 (2 b) (3 c))\n", VocabBuilder().add, path="x.ptb")
    assert [tree.meta["line"] for tree in trees] == [2, 4]
    assert [tree.num_nodes for tree in trees] == [1, 3]


def test_a_deep_tree_parses_without_recursion() -> None:
    depth = 20_000
    text = "(1 " * depth + "(2 word)" + ")" * depth
    tree = parse_ptb_line(text, VocabBuilder().add)
    assert tree is not None and tree.num_nodes == depth + 1
    assert tree.children[:, 0].tolist() == [-1] + list(range(depth))
    assert format_ptb(tree) == text


def test_round_trip_of_generated_trees(tmp_path: Path) -> None:
    vocab = pseudo_vocab(500)
    trees = sst_like_trees(50, rng=3, vocab_size=500)
    path = tmp_path / "trees.ptb"
    assert write_ptb(trees, path, vocab) == 50
    again = list(iter_ptb(path, vocab.lookup))
    assert len(again) == 50
    for original, read in zip(trees, again, strict=True):
        assert np.array_equal(original.children, read.children)
        assert np.array_equal(original.words, read.words)
        assert np.array_equal(original.labels, read.labels)
        assert read.root == original.root


def test_format_of_a_parsed_line_is_the_line() -> None:
    line = "(3 (2 (2 The) (2 Rock)) (4 (3 (2 is) (4 destined)) (2 .)))"
    tree = parse_ptb_line(line, VocabBuilder().add)
    assert tree is not None and format_ptb(tree) == line


@pytest.mark.parametrize(("text", "code", "column"), [
    ("(2 (3 good) (2 film)", "E0501", 1),
    ("(2 (3 good)) (2 film))", "E0506", 14),
    ("(2 (3 good) (2 film)))", "E0502", 22),
    ("(2 (3 good) ( ))", "E0503", 15),
    ("(2 (3) (2 film))", "E0504", 4),
    ("(2 (2147483648 good) (2 film))", "E0505", 5),
    ("(2 (-2147483649 good) (2 film))", "E0505", 5),
    ("good (2 film)", "E0506", 1),
    ("(2 (3 good film) (2 x))", "E0508", 12),
    ("(2 word (3 good))", "E0508", 9),
    ("(2 (3 good) word)", "E0508", 13),
    ("(2 (1 a) (2 b) (3 c))", "E0507", 1),
])
def test_malformed_lines_raise_located_errors(text: str, code: str, column: int) -> None:
    source = "(2 (2 fine) (2 line))\n\n" + text + "\n"
    with pytest.raises(InputError) as caught:
        parse_ptb(source, VocabBuilder().add, path="bad.ptb", max_children=2)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == code
    assert diagnostic.span is not None
    assert (diagnostic.span.path, diagnostic.span.line) == ("bad.ptb", 3)
    assert diagnostic.span.column == column
    rendered = caught.value.render()
    assert " --> bad.ptb:3:" in rendered and text in rendered and "^" in rendered


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        list(iter_ptb(tmp_path / "missing.ptb", VocabBuilder().add))
    assert caught.value.codes == ["E0509"]
    latin = tmp_path / "latin.ptb"
    latin.write_bytes(b"(2 (2 caf\xe9) (2 x))\n")
    with pytest.raises(InputError) as caught:
        list(iter_ptb(latin, VocabBuilder().add))
    assert caught.value.codes == ["E0509"]


def test_writing_needs_tokens_that_ptb_can_hold() -> None:
    tree = parse_ptb_line("(2 (2 a) (2 b))", VocabBuilder().add)
    assert tree is not None
    with pytest.raises(InputError) as caught:
        format_ptb(type(tree)(children=tree.children, words=tree.words, root=tree.root,
                              tokens=("new york", "b", None), labels=tree.labels))
    assert caught.value.codes == ["E0514"]
    with pytest.raises(InputError):
        format_ptb(type(tree)(children=tree.children, words=tree.words, root=tree.root))

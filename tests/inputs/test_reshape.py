"""Trees fitted to the model: binarized, unary nodes refused or collapsed; PTB text labels."""

from __future__ import annotations

import pytest

from cortexlang.errors import InputError
from cortexlang.inputs.jsontrees import parse_json_structures
from cortexlang.inputs.ptb import format_ptb, parse_ptb, parse_ptb_line
from cortexlang.inputs.reshape import TreeShape
from cortexlang.inputs.vocab import Vocab, VocabBuilder

BINARY = TreeShape(max_children=2, binary=True)


def test_text_labels_and_unlabelled_brackets_parse() -> None:
    tree = parse_ptb_line("( (S (NP (DT the) (NN film)) (VP (VBZ works))))",
                          VocabBuilder().add)
    assert tree is not None and tree.labels is not None
    assert set(tree.labels.tolist()) == {-1}
    assert tree.meta["label_text"][-1] is None and "NP" in tree.meta["label_text"]
    assert format_ptb(tree) == "(-1 (S (NP (DT the) (NN film)) (VP (VBZ works))))"


@pytest.mark.parametrize(("side", "expected"), [
    ("left", "(-1 (-1 (-1 (2 a) (2 b)) (2 c)) (2 d))"),
    ("right", "(-1 (2 a) (-1 (2 b) (-1 (2 c) (2 d))))"),
])
def test_binarize(side: str, expected: str) -> None:
    shape = TreeShape(max_children=2, binary=True, binarize=side)
    tree = parse_ptb_line("(-1 (2 a) (2 b) (2 c) (2 d))", VocabBuilder().add, shape=shape)
    assert tree is not None and format_ptb(tree) == expected
    assert tree.root == tree.num_nodes - 1


def test_too_many_children_hint_binarize() -> None:
    with pytest.raises(InputError) as caught:
        parse_ptb("(1 (2 a) (2 b) (2 c))", VocabBuilder().add, path="n.ptb", shape=BINARY)
    assert caught.value.codes == ["E0507"] and "--binarize" in caught.value.render()


def test_a_unary_node_in_a_binary_tree_is_a_located_error() -> None:
    text = "(2 (2 good) (3 (3 film)))\n(1 (3 (2 good) (2 film)))"
    with pytest.raises(InputError) as caught:
        parse_ptb(text, VocabBuilder().add, path="u.ptb", shape=BINARY)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0516" and diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.column) == (1, 13)


def test_collapse_unary_keeps_the_child() -> None:
    shape = TreeShape(max_children=2, binary=True, collapse_unary=True)
    tree = parse_ptb_line("( (1 (3 (2 good) (2 film))))", VocabBuilder().add, shape=shape)
    assert tree is not None and format_ptb(tree) == "(3 (2 good) (2 film))"


def test_unary_nodes_pass_where_the_model_takes_them() -> None:
    tree = parse_ptb_line("(1 (3 good))", VocabBuilder().add, shape=TreeShape(max_children=4))
    assert tree is not None and tree.num_nodes == 2


def test_json_tree_with_a_shared_child_is_refused() -> None:
    record = '{"nodes": 3, "kind": "tree", "children": [[], [0], [0, 1]]}'
    with pytest.raises(InputError) as caught:
        parse_json_structures(record, Vocab.from_tokens([]).lookup, path="s.json")
    assert caught.value.codes == ["E0515"]
    assert caught.value.diagnostics[0].span is not None
    dag = '{"nodes": 3, "kind": "dag", "children": [[], [0], [0, 1]]}'
    assert len(parse_json_structures(dag, Vocab.from_tokens([]).lookup)) == 1


def test_json_unary_node_in_a_binary_tree() -> None:
    record = '{"tree": {"children": [{"children": [{"word": "a"}]}, {"word": "b"}]}}'
    with pytest.raises(InputError) as caught:
        parse_json_structures(record, VocabBuilder().add, path="u.json", shape=BINARY)
    assert caught.value.codes == ["E0516"]

"""Fuzzing the readers: random and mutated inputs give a structure or an InputError, never
another exception; whatever parses survives a write/read round trip."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cortexlang.errors import InputError
from cortexlang.inputs import generators
from cortexlang.inputs.jsontrees import parse_json_structures, to_json_record
from cortexlang.inputs.ptb import format_ptb, parse_ptb
from cortexlang.inputs.vocab import VocabBuilder

VOCAB = generators.pseudo_vocab(40)
SEED_LINES = [format_ptb(tree, VOCAB)
              for tree in generators.sst_like_trees(8, rng=0, vocab_size=40)]
SEED_LINES += ["(2 (3 8\u00a01\\/2) (2 -LRB-))", "(4 (1 a) (2 b) (3 c))", "(0 x)"]
SEED_JSON = [json.dumps(to_json_record(structure, VOCAB)) for structure in
             generators.sst_like_trees(3, rng=1, vocab_size=40)
             + [generators.grid(2, 3, 2, rng=0), generators.sequence(3, rng=0, vocab_size=40)]]

PIECES = st.sampled_from(list("() 0123-4\t\n\u00a0ab.{}[]\",:") + ["-LRB-", "nodes"])
RANDOM_TEXT = st.lists(PIECES, max_size=40).map("".join)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if action == "insert":
            text = text[:position] + draw(PIECES) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 3)):]
        else:
            text = text[:position] + text[position:position + 8] + text[position:]
    return text


def ptb_round_trip(text: str) -> None:
    try:
        trees = parse_ptb(text, VocabBuilder().add, path="fuzz.ptb", max_children=3)
    except InputError as error:
        assert error.codes[0].startswith("E05") and error.render()
        return
    again = parse_ptb("\n".join(format_ptb(tree) for tree in trees), VocabBuilder().add)
    for tree, other in zip(trees, again, strict=True):
        assert np.array_equal(tree.children, other.children)
        assert np.array_equal(tree.labels, other.labels) and tree.tokens == other.tokens


@settings(max_examples=300, deadline=None)
@given(RANDOM_TEXT)
def test_random_text_as_ptb(text: str) -> None:
    ptb_round_trip(text)


@settings(max_examples=300, deadline=None)
@given(mutated(SEED_LINES))
def test_mutated_trees_as_ptb(text: str) -> None:
    ptb_round_trip(text)


def json_read(text: str) -> None:
    try:
        structures = parse_json_structures(text, VocabBuilder().add, path="fuzz.json",
                                           max_children=3)
    except InputError as error:
        assert error.codes[0].startswith("E05") and error.render()
        return
    for structure in structures:
        record = json.dumps(to_json_record(structure))
        (again,) = parse_json_structures(record, VocabBuilder().add)
        assert again.num_nodes == structure.num_nodes and again.kind == structure.kind


@settings(max_examples=300, deadline=None)
@given(st.one_of(RANDOM_TEXT, mutated(SEED_JSON)))
def test_random_and_mutated_json(text: str) -> None:
    json_read(text)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["tree", "word", "label", "children",
                                                       "nodes", "root", "kind", "tokens",
                                                       "labels", "features", "meta"]),
                                      inner, max_size=4),
                    max_leaves=12))
def test_arbitrary_json_values(value: object) -> None:
    json_read(json.dumps(value))

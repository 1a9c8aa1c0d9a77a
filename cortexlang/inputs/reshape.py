"""Fit a tree to the shape a model takes: binarize n-ary nodes, collapse or refuse unary ones.

A `binary_tree` model reads `left(n)` and `right(n)` at every internal node; a node with one
child would read a zero right child and give a wrong answer without a word, so it is an error
(E0516) unless `collapse_unary` replaces each unary node by its child (the child keeps its own
label and token; chains collapse to their last node). A node with more children than the model
takes is E0507, unless `binarize` splits it: "left" gives `((c1 c2) c3)`, "right"
`(c1 (c2 c3))`; the new intermediate nodes have no label and no token.

`reshape_tree` is pure: it returns the same structure when nothing changes, else a new one
numbered in post-order (children before parents, the root last), as the PTB reader numbers.
Errors come from the caller's `locate`, so that the PTB reader can point at a node's column
while other sources name the structure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cortexlang.errors import InputError
from cortexlang.inputs.structure import NO_LABEL, NO_WORD, Structure

BINARIZE_SIDES = ("left", "right")

# locate(node, code, message, label, hint) -> the error to raise for `node` of the input.
Locate = Callable[[int, str, str, str, str], InputError]


@dataclass(frozen=True)
class TreeShape:
    """What a model takes: at most `max_children` per node (None: any), exactly two at every
    internal node when `binary`; and how to fit trees that differ."""

    max_children: int | None = None
    binary: bool = False
    binarize: str | None = None
    collapse_unary: bool = False

    def __post_init__(self) -> None:
        if self.binarize is not None and self.binarize not in BINARIZE_SIDES:
            raise ValueError(f"binarize must be one of {BINARIZE_SIDES} or None, "
                             f"not {self.binarize!r}")

    def is_trivial(self) -> bool:
        return self.max_children is None and not self.binary and self.binarize is None \
            and not self.collapse_unary


def reshape_tree(structure: Structure, shape: TreeShape, locate: Locate) -> Structure:
    """`structure` (a tree) fitted to `shape` (module docstring). Raises E0516 for a unary
    node of a binary tree, E0507 for a node with too many children, through `locate`."""
    counts = structure.num_children()
    limit = shape.max_children
    unary = shape.binary and bool((counts == 1).any())
    wide = limit is not None and bool((counts > limit).any())
    if not (unary or wide):
        return structure
    if unary and not shape.collapse_unary:
        node = int(np.flatnonzero(counts == 1)[0])
        raise locate(node, "E0516", "a node with one child in a binary tree",
                     "one child: its right child would read as zeros",
                     "give it two children, or pass --collapse-unary (Python: "
                     "collapse_unary=True) to replace each such node by its child")
    if wide and shape.binarize is None:
        node = int(np.flatnonzero(counts > limit)[0])
        raise locate(node, "E0507", f"a node with {int(counts[node])} children, more than the "
                     f"limit of {limit}", f"{int(counts[node])} children",
                     f"the model takes at most {limit} children per node; pass "
                     "--binarize left|right (Python: binarize=\"left\") to split it")
    return _rebuild(structure, shape)


def _rebuild(structure: Structure, shape: TreeShape) -> Structure:
    children = structure.children
    words, labels = structure.words, structure.labels
    tokens = structure.tokens
    features = structure.features
    new_children: list[list[int]] = []
    new_source: list[int] = []  # old node of each new node, -1 for a binarization node

    def emit(kids: list[int], source: int) -> int:
        new_children.append(kids)
        new_source.append(source)
        return len(new_children) - 1

    # Iterative post-order: (old node, expanded?). Results collect on `done`.
    done: list[int] = []
    stack: list[tuple[int, bool]] = [(structure.root, False)]
    while stack:
        node, expanded = stack.pop()
        present = [int(child) for child in children[node] if child >= 0]
        if shape.collapse_unary:
            while len(present) == 1:
                node = present[0]
                present = [int(child) for child in children[node] if child >= 0]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(present))
            continue
        kids = done[len(done) - len(present):] if present else []
        del done[len(done) - len(kids):]
        limit = shape.max_children
        if limit is not None and len(kids) > limit and shape.binarize is not None:
            while len(kids) > 2:
                if shape.binarize == "left":
                    kids = [emit(kids[:2], -1)] + kids[2:]
                else:
                    kids = kids[:-2] + [emit(kids[-2:], -1)]
        done.append(emit(kids, node))
    width = max(1, max(len(kids) for kids in new_children))
    rows = np.full((len(new_children), width), -1, dtype=np.int32)
    for position, kids in enumerate(new_children):
        rows[position, :len(kids)] = kids
    source = np.array(new_source, dtype=np.int64)
    real = source >= 0
    new_words = np.full(len(source), NO_WORD, dtype=np.int32)
    new_words[real] = words[source[real]]
    new_labels = None
    if labels is not None:
        new_labels = np.full(len(source), NO_LABEL, dtype=np.int32)
        new_labels[real] = labels[source[real]]
    new_tokens: tuple[str | None, ...] = ()
    if tokens:
        new_tokens = tuple(tokens[old] if old >= 0 else None for old in new_source)
    new_features = None
    if features is not None:
        new_features = np.zeros((len(source), features.shape[1]), dtype=features.dtype)
        new_features[real] = features[source[real]]
    meta = dict(structure.meta)
    if "label_text" in meta:
        texts = meta["label_text"]
        assert isinstance(texts, tuple)
        meta["label_text"] = tuple(texts[old] if old >= 0 else None for old in new_source)
    return replace(structure, children=rows, words=new_words, labels=new_labels,
                   tokens=new_tokens, features=new_features, root=len(source) - 1, meta=meta)

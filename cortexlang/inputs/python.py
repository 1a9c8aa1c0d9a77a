"""Structures from Python values: PTB text, `Structure`s, nltk `Tree`s, nested tuples, dicts.

`to_structures(items, lookup, shape)` turns each item into one `Structure`:

    "(3 (2 good) (2 film))"        one PTB tree (labels ignored by models; text labels too)
    Structure                      used as it is (its word ids are the model's ids)
    nltk.Tree("S", [...])          its label and children; leaves are tokens
    ("good", ("bad", "film"))      a tuple or list is a node of its children, a str a leaf token;
                                   a node whose one child is a str is that leaf (nltk's
                                   preterminal `(2 good)`)
    {"tree": {...}} / {"nodes": N, ...}   a JSON record (`cortexlang.inputs.jsontrees`)

Trees are fitted to `shape` (binarized, unary nodes collapsed or refused with E0516). Errors
are `InputError`s that name the item (`structure 3`), located in its text for PTB strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from cortexlang.errors import InputError
from cortexlang.inputs import input_error
from cortexlang.inputs.jsontrees import parse_json_structures
from cortexlang.inputs.ptb import parse_ptb_line
from cortexlang.inputs.reshape import TreeShape, reshape_tree
from cortexlang.inputs.structure import NO_LABEL, NO_WORD, Structure

Lookup = Callable[[str], int]


def to_structures(items: Iterable[Any], lookup: Lookup,
                  shape: TreeShape | None = None) -> list[Structure]:
    """One `Structure` per item (module docstring). Raises `InputError` E0595 for a value of
    no known kind, and the readers' errors for malformed ones."""
    if isinstance(items, (str, bytes, dict, Structure)) or _is_nltk_tree(items):
        raise input_error("E0595", "run() takes a list of structures, not one structure",
                          hint="wrap it in a list: run([tree])")
    shape = shape or TreeShape()
    structures = []
    for index, item in enumerate(items):
        where = f"structure {index}"
        if isinstance(item, str):
            structure = parse_ptb_line(item, lookup, path=f"<{where}>", shape=shape)
            if structure is None:
                raise input_error("E0595", f"{where} is an empty string",
                                  hint="give one PTB tree per string, as in (2 (2 good) (2 film))")
            structures.append(structure)
            continue
        if isinstance(item, dict):
            structures.extend(parse_json_structures(json.dumps(item), lookup, path=f"<{where}>",
                                                    shape=shape))
            continue
        if isinstance(item, Structure):
            structure = item
        elif _is_nltk_tree(item) or isinstance(item, (tuple, list)):
            structure = _from_nested(item, lookup, where)
        else:
            raise input_error(
                "E0595", f"{where} is a {type(item).__name__}, which is not a structure",
                hint="give PTB text, a Structure, an nltk Tree, nested tuples of tokens, or a "
                     "JSON record (dict)")
        if structure.kind == "tree" and not shape.is_trivial():
            structure = reshape_tree(structure, shape, _locator(where))
        structures.append(structure)
    return structures


def _locator(where: str) -> Callable[[int, str, str, str, str], InputError]:
    def locate(node: int, code: str, message: str, label: str, hint: str) -> InputError:
        return input_error(code, f"{message} (node {node} of {where}, numbered in post-order)",
                           hint=hint)

    return locate


def _is_nltk_tree(value: Any) -> bool:
    return isinstance(value, list) and callable(getattr(value, "label", None))


def _label_of(node: Any) -> Any:
    """An nltk Tree's label, None for tuples and lists."""
    return node.label() if _is_nltk_tree(node) else None


def _from_nested(tree: Any, lookup: Lookup, where: str) -> Structure:
    """A tree of nested tuples/lists (or an nltk Tree), numbered in post-order, iteratively."""
    labels: list[int] = []
    label_texts: list[str | None] = []
    child_lists: list[list[int]] = []
    tokens: list[str | None] = []
    done: list[int] = []
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, str):
            labels.append(NO_LABEL)
            label_texts.append(None)
            child_lists.append([])
            tokens.append(node)
            done.append(len(tokens) - 1)
            continue
        if not (isinstance(node, (tuple, list))):
            raise input_error("E0595", f"{where} holds a {type(node).__name__} where a token "
                              "(str) or a node (tuple, list, nltk Tree) belongs")
        if not expanded and len(node) == 1 and isinstance(node[0], str):
            # A preterminal, nltk's (2 good): one leaf holding the token, with the label.
            label = _label_of(node)
            labels.append(_label_number(label))
            label_texts.append(str(label) if label is not None and labels[-1] == NO_LABEL
                               else None)
            child_lists.append([])
            tokens.append(node[0])
            done.append(len(tokens) - 1)
            continue
        if not expanded:
            if len(node) == 0:
                raise input_error("E0504", f"{where} holds an empty node",
                                  hint="a node has at least one child")
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node)))
            continue
        kids = done[len(done) - len(node):]
        del done[len(done) - len(node):]
        label = _label_of(node)
        number = _label_number(label)
        labels.append(number)
        label_texts.append(str(label) if label is not None and number == NO_LABEL else None)
        child_lists.append(kids)
        tokens.append(None)
        done.append(len(tokens) - 1)
    width = max(1, max(len(kids) for kids in child_lists))
    rows = np.full((len(child_lists), width), -1, dtype=np.int32)
    for position, kids in enumerate(child_lists):
        rows[position, :len(kids)] = kids
    meta: dict[str, object] = {"path": f"<{where}>"}
    if any(text is not None for text in label_texts):
        meta["label_text"] = tuple(label_texts)
    return Structure(children=rows,
                     words=np.array([NO_WORD if token is None else lookup(token)
                                     for token in tokens], dtype=np.int32),
                     root=len(tokens) - 1, tokens=tuple(tokens),
                     labels=np.array(labels, dtype=np.int32), kind="tree", meta=meta)


def _label_number(label: Any) -> int:
    """An integer label (a number, or text of one), range-checked; -1 for other labels."""
    value: int | None = None
    if isinstance(label, int) and not isinstance(label, bool):
        value = label
    elif isinstance(label, str) and label.lstrip("-").isdigit():
        value = int(label)
    if value is None:
        return NO_LABEL
    if not -(2**31) <= value < 2**31:
        raise input_error("E0505", f"label {value} is outside the 32-bit range",
                          hint="integer labels are class numbers from -2^31 to 2^31-1")
    return value

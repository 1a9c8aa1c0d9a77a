"""Bracketed (PTB / SST) trees: one tree per line, `(label child child ...)` or `(label token)`.

Format, as read here:

- one tree per line; lines holding only ASCII whitespace are skipped;
- a node is `(` label, then either one token (a leaf) or one or more child nodes, then `)`;
  a node whose `(` is followed by a child has no label, as in PTB's outer `( (S ...) )`;
- labels are integers (SST sentiment classes 0..4; any 32-bit integer, -1 means none) or
  text (`(S (NP ...))`): a text label reads as no label (-1) in `labels`, and its text is
  kept in `meta["label_text"]`; models do not read labels, so either kind runs;
- tokens are separated by ASCII whitespace only, so a non-ASCII space such as U+00A0 stays
  inside its token (SST writes `8 1\\/2` with U+00A0); a token cannot hold `(` or `)`
  (SST writes them `-LRB-` / `-RRB-`).

Node numbering is post-order, the order in which nodes close: children before their parent,
leaves left to right in sentence order, the root last (id N - 1). The reader is a loop over
the tokens of a regular expression with an explicit stack, so any depth parses. Every
malformed line raises an `InputError` (codes E0501..E0509) located at its line and column.

With a `TreeShape` (`cortexlang.inputs.reshape`), each tree is fitted to the model as it is
read: n-ary nodes binarized, unary nodes collapsed or refused (E0516), located at the node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import numpy as np

from cortexlang import atomic
from cortexlang.errors import InputError
from cortexlang.inputs import input_error, located_input_error
from cortexlang.inputs.reshape import TreeShape, reshape_tree
from cortexlang.inputs.structure import NO_LABEL, NO_WORD, Structure
from cortexlang.inputs.vocab import Vocab

# `re.ASCII` keeps `\s` to ASCII whitespace, so U+00A0 is part of a token.
_TOKEN = re.compile(r"[()]|[^\s()]+", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_LABEL_RANGE = (-(2**31), 2**31)

Lookup = Callable[[str], int]


def parse_ptb_line(text: str, lookup: Lookup, *, path: str = "<string>", line_number: int = 1,
                   max_children: int | None = None,
                   shape: TreeShape | None = None) -> Structure | None:
    """Parse one line into a tree `Structure`, or None when the line holds no tokens.

    `lookup` maps a token to its word id (`Vocab.lookup`, or `VocabBuilder.add` to grow a
    vocabulary). Nodes are numbered in post-order. Raises `InputError` E0501..E0508 at the
    offending column; E0507 when a node has more than `max_children` children (unless
    `shape` binarizes it); E0516 for a unary node where `shape` wants a binary tree.
    """
    if shape is not None and shape.binarize is not None:
        max_children = None
    structure, starts = _parse_line(text, lookup, path, line_number, max_children)
    if structure is None or shape is None or shape.is_trivial():
        return structure

    def locate(node: int, code: str, message: str, label: str, hint: str) -> InputError:
        return _error(text, path, line_number, _TOKEN.findall(text), starts[node], code,
                      message, label, hint)

    return reshape_tree(structure, shape, locate)


def _parse_line(text: str, lookup: Lookup, path: str, line_number: int,
                max_children: int | None) -> tuple[Structure | None, list[int]]:
    tokens = _TOKEN.findall(text)
    if not tokens:
        return None, []
    labels: list[int] = []
    label_texts: list[str | None] = []
    starts: list[int] = []
    child_lists: list[list[int]] = []
    words: list[str | None] = []
    label_cache: dict[str, int] = {}
    # Each open node: [label, children, token, index of its "(" in `tokens`, label text].
    open_nodes: list[list] = []
    root = -1
    position = 0
    count = len(tokens)
    has_text_labels = False
    while position < count:
        token = tokens[position]
        if token == "(":
            if root >= 0:
                raise _error(text, path, line_number, tokens, position, "E0506",
                             "a second tree on the same line", "the tree before is complete",
                             "write one tree per line")
            if open_nodes and open_nodes[-1][2] is not None:
                raise _error(text, path, line_number, tokens, position, "E0508",
                             "a node holds both a token and children", "child after a token",
                             "a node is either (label token) or (label child ...)")
            if position + 1 >= count or tokens[position + 1] == ")":
                raise _error(text, path, line_number, tokens, position + 1, "E0503",
                             "missing label after '('", "expected a label or a child here",
                             "every node starts with its label, as in (2 good)")
            label_text: str | None = tokens[position + 1]
            if label_text == "(":
                open_nodes.append([NO_LABEL, [], None, position, None])
                position += 1
                continue
            assert label_text is not None
            label = label_cache.get(label_text)
            if label is None:
                if _INTEGER.fullmatch(label_text):
                    label = int(label_text)
                    if not _LABEL_RANGE[0] <= label < _LABEL_RANGE[1]:
                        raise _error(text, path, line_number, tokens, position + 1, "E0505",
                                     f"label {label_text} is outside the 32-bit range",
                                     "too large for a label",
                                     "integer labels are class numbers from -2^31 to 2^31-1")
                else:
                    label = NO_LABEL
                label_cache[label_text] = label
            if not _INTEGER.fullmatch(label_text):
                has_text_labels = True
            else:
                label_text = None
            open_nodes.append([label, [], None, position, label_text])
            position += 2
        elif token == ")":
            if not open_nodes:
                raise _error(text, path, line_number, tokens, position, "E0502",
                             "unexpected ')'", "no open node to close",
                             "remove it, or add the '(' it should close")
            label, children, word, start, label_text = open_nodes.pop()
            if word is None and not children:
                raise _error(text, path, line_number, tokens, start, "E0504",
                             "empty node: a label with neither a token nor children",
                             "this node is empty", "write (label token) or (label child ...)")
            if max_children is not None and len(children) > max_children:
                raise _error(text, path, line_number, tokens, start, "E0507",
                             f"a node with {len(children)} children, more than the limit "
                             f"of {max_children}", f"{len(children)} children",
                             f"the model takes at most {max_children} children per node")
            node = len(labels)
            labels.append(label)
            label_texts.append(label_text)
            starts.append(start)
            child_lists.append(children)
            words.append(word)
            if open_nodes:
                open_nodes[-1][1].append(node)
            else:
                root = node
            position += 1
        else:
            if not open_nodes:
                where = "after the tree" if root >= 0 else "before the first '('"
                raise _error(text, path, line_number, tokens, position, "E0506",
                             f"text outside a tree: {token!r}", f"unexpected {where}",
                             "each line holds exactly one bracketed tree")
            node_state = open_nodes[-1]
            if node_state[1] or node_state[2] is not None:
                what = "children" if node_state[1] else "a token"
                raise _error(text, path, line_number, tokens, position, "E0508",
                             f"a node holds a token after {what}", "unexpected token",
                             "a leaf is (label token), with exactly one token")
            node_state[2] = token
            position += 1
    if open_nodes:
        start = open_nodes[-1][3]
        column = _columns(text)[start] + 1
        raise located_input_error(
            "E0501", f"{len(open_nodes)} unclosed '(' at the end of the line", path=path,
            line=line_number, column=column, line_text=text,
            label="this node is never closed",
            hint="add the missing ')' (a tree must fit on one line)")
    structure = _structure(labels, child_lists, words, root, lookup, path, line_number)
    if has_text_labels:
        structure.meta["label_text"] = tuple(label_texts)
    return structure, starts


def _structure(labels: list[int], child_lists: list[list[int]], words: list[str | None],
               root: int, lookup: Lookup, path: str, line_number: int) -> Structure:
    width = max(1, max(map(len, child_lists)))
    padding = [-1] * width
    rows = [children + padding[len(children):] for children in child_lists]
    word_ids = [NO_WORD if word is None else lookup(word) for word in words]
    return Structure(
        children=np.array(rows, dtype=np.int32).reshape(len(rows), width),
        words=np.array(word_ids, dtype=np.int32),
        root=root,
        tokens=tuple(words),
        labels=np.array(labels, dtype=np.int32),
        kind="tree",
        meta={"path": path, "line": line_number},
    )


def _columns(text: str) -> list[int]:
    """0-based start offset of each token (only computed when reporting an error)."""
    return [match.start() for match in _TOKEN.finditer(text)]


def _error(text: str, path: str, line_number: int, tokens: list[str], position: int, code: str,
           message: str, label: str, hint: str) -> InputError:
    starts = _columns(text)
    if position < len(starts):
        column, width = starts[position] + 1, len(tokens[position])
    else:
        column, width = len(text.rstrip("\r\n")) + 1, 1
    return located_input_error(code, message, path=path, line=line_number, column=column,
                               line_text=text, width=width, label=label, hint=hint)


def iter_ptb(path: str | os.PathLike[str], lookup: Lookup, *,
             max_children: int | None = None,
             shape: TreeShape | None = None) -> Iterator[Structure]:
    """Stream the trees of a PTB file, one per non-blank line (see `parse_ptb_line`).

    Raises `InputError` E0509 when the file cannot be opened or is not UTF-8.
    """
    path_text = os.fspath(path)
    try:
        file = open(path, encoding="utf-8")
    except OSError as error:
        raise input_error("E0509", f"cannot read {path_text}: {error.strerror or error}",
                          hint="check the path of the input file") from error
    line_number = 0
    with file:
        try:
            for line_number, line in enumerate(file, start=1):
                structure = parse_ptb_line(line.rstrip("\n"), lookup, path=path_text,
                                           line_number=line_number, max_children=max_children,
                                           shape=shape)
                if structure is not None:
                    yield structure
        except UnicodeDecodeError as error:
            raise input_error(
                "E0509", f"{path_text} is not UTF-8 text (after line {line_number}): {error}",
                hint="save the file as UTF-8") from error


def parse_ptb(text: str, lookup: Lookup, *, path: str = "<string>",
              max_children: int | None = None,
              shape: TreeShape | None = None) -> list[Structure]:
    """Parse every tree of `text` (one per line); errors name `path` and the line."""
    structures = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        structure = parse_ptb_line(line, lookup, path=path, line_number=line_number,
                                   max_children=max_children, shape=shape)
        if structure is not None:
            structures.append(structure)
    return structures


def format_ptb(structure: Structure, vocab: Vocab | None = None) -> str:
    """One line of PTB text for a tree, children in column order, no recursion.

    A leaf's token is `structure.tokens[node]`, or else `vocab.token(words[node])`; a missing
    label is written -1. Raises `InputError` E0514 when the structure is not a tree reachable
    from its root, a leaf has no token, or a token cannot be written (space or bracket).
    """
    children = structure.children
    labels = structure.labels
    tokens = structure.tokens
    visited = np.zeros(structure.num_nodes, dtype=bool)
    label_texts = structure.meta.get("label_text")
    assert label_texts is None or isinstance(label_texts, tuple)
    pieces: list[str] = []
    stack = [structure.root]
    while stack:
        node = stack.pop()
        if node < 0:
            pieces.append(")")
            continue
        if visited[node]:
            raise _write_error(f"node {node} is reached twice: the structure is not a tree")
        visited[node] = True
        label: int | str = int(labels[node]) if labels is not None else -1
        if label_texts and label_texts[node] is not None:
            label = label_texts[node]
        if pieces:
            pieces.append(" ")
        pieces.append(f"({label}")
        present = [int(child) for child in children[node] if child >= 0]
        if present:
            stack.append(-1)
            stack.extend(reversed(present))
        else:
            pieces.append(" " + _leaf_token(structure, node, tokens, vocab) + ")")
    if not visited.all():
        raise _write_error(f"{int((~visited).sum())} nodes are not reachable from the root")
    return "".join(pieces)


def _leaf_token(structure: Structure, node: int, tokens: tuple[str | None, ...],
                vocab: Vocab | None) -> str:
    token = tokens[node] if node < len(tokens) else None
    if token is None and vocab is not None and structure.words[node] >= 0:
        token = vocab.token(int(structure.words[node]))
    if token is None:
        raise _write_error(f"leaf {node} has no token",
                           "give the structure tokens, or pass the vocabulary")
    if token == "" or _TOKEN.fullmatch(token) is None or token in ("(", ")"):
        raise _write_error(f"token {token!r} of leaf {node} cannot be written in PTB format",
                           "PTB tokens hold no ASCII whitespace and no brackets "
                           "(write -LRB- and -RRB-)")
    return token


def _write_error(message: str, hint: str = "") -> InputError:
    return input_error("E0514", message, hint=hint)


def write_ptb(structures: Iterable[Structure], destination: str | os.PathLike[str] | IO[str],
              vocab: Vocab | None = None) -> int:
    """Write one line per tree (see `format_ptb`) to a path or an open text file.

    A path is written atomically (temporary file, then rename). Returns the tree count.
    """
    lines = [format_ptb(structure, vocab) + "\n" for structure in structures]
    if isinstance(destination, (str, os.PathLike)):
        atomic.write_text(destination, "".join(lines))
    else:
        destination.writelines(lines)
    return len(lines)

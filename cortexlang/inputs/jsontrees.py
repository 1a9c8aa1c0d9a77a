"""JSON inputs: nested trees and flat records (DAGs, sequences, any tree).

A file holds JSON values separated by whitespace: JSON lines (one record per line), one
pretty-printed record after another, or a list of records. Two record forms:

Nested tree (numbered in post-order, like the PTB reader; the kind is "tree"):

    {"tree": {"label": 2, "children": [{"word": "good", "label": 3},
                                       {"word": "film", "label": 2}]}}

  A node has an optional integer "label" (null or absent: -1) and either a "word" (a leaf)
  or a non-empty list of "children" (an internal node). A record may add a "meta" object.

Flat record (ids are list positions; the kind defaults to "dag"):

    {"nodes": 4, "children": [[-1, -1], [0, -1], [-1, 0], [2, 1]], "root": 3,
     "kind": "dag", "features": [[0.5, 1.0], ...], "tokens": [null, ...], "labels": [...]}

  "children" has one list per node, in order, -1 where a position is empty (so a grid cell
  keeps `[left, up]` with -1 on the border); "root" defaults to the last node; "tokens"
  (strings or null) are mapped through the vocabulary; "labels" are integers or null;
  "features" is one list of F numbers per node. "kind" is "dag", "tree" or "sequence".

Unknown keys are errors (they are usually typos). Errors are `InputError`s E0510..E0513
located at the JSON line and column of the record, with the JSON path of the bad value.
The Python JSON reader recurses, so nested trees deeper than a few hundred levels cannot be
read or written in the nested form: `write_json` writes those in the flat form instead.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from cortexlang import atomic
from cortexlang.errors import InputError
from cortexlang.inputs import input_error, located_input_error
from cortexlang.inputs.reshape import Locate, TreeShape, reshape_tree
from cortexlang.inputs.structure import NO_LABEL, NO_WORD, Structure
from cortexlang.inputs.vocab import Vocab

Lookup = Callable[[str], int]

_NESTED_NODE_KEYS = frozenset({"label", "word", "children"})
_FLAT_KEYS = frozenset({"nodes", "children", "root", "kind", "tokens", "labels", "features",
                        "meta"})
_KINDS = ("dag", "tree", "sequence")
# Deepest nested tree `write_json` writes nested; JSON nests two levels per tree level.
NESTED_HEIGHT_LIMIT = 200


class _Source:
    """The text of one JSON file, turning offsets into located errors."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]

    def error(self, offset: int, code: str, message: str, label: str = "",
              hint: str = "") -> InputError:
        line_index = bisect.bisect_right(self.line_starts, offset) - 1
        start = self.line_starts[line_index]
        end = self.text.find("\n", start)
        line_text = self.text[start:] if end < 0 else self.text[start:end]
        return located_input_error(code, message, path=self.path, line=line_index + 1,
                                   column=offset - start + 1, line_text=line_text,
                                   label=label, hint=hint)


def _skip_whitespace(text: str, position: int) -> int:
    """The offset of the first character at or after `position` that is not JSON whitespace."""
    while position < len(text) and text[position] in " \t\n\r":
        position += 1
    return position


def _records(source: _Source) -> Iterator[tuple[int, str, Any]]:
    """(offset, JSON path, value) of every record: top-level values, and list elements."""
    decoder = json.JSONDecoder()
    text = source.text
    position = _skip_whitespace(text, 0)
    index = 0
    while position < len(text):
        if text[position] == "[":
            position = _skip_whitespace(text, position + 1)
            first = True
            while True:
                if position < len(text) and text[position] == "]" and first:
                    position += 1
                    break
                value, end = _decode(decoder, source, position)
                yield position, f"$[{index}]", value
                index += 1
                first = False
                position = _skip_whitespace(text, end)
                if position < len(text) and text[position] == ",":
                    position = _skip_whitespace(text, position + 1)
                elif position < len(text) and text[position] == "]":
                    position += 1
                    break
                else:
                    raise source.error(position, "E0510", "expected ',' or ']' in a list",
                                       "here", "separate the records of a list with commas")
        else:
            value, end = _decode(decoder, source, position)
            yield position, f"$[{index}]", value
            index += 1
            position = end
        position = _skip_whitespace(text, position)


def _decode(decoder: json.JSONDecoder, source: _Source, position: int) -> tuple[Any, int]:
    try:
        return decoder.raw_decode(source.text, position)
    except json.JSONDecodeError as error:
        # A record cut short runs on to the end of the file: point at its last character.
        at = min(error.pos, len(source.text.rstrip(" \t\n\r")))
        raise source.error(at, "E0510", f"invalid JSON: {error.msg}", "here",
                           "check the JSON syntax near this point") from error
    except RecursionError:
        raise source.error(position, "E0513", "this record is nested too deeply to read",
                           "record starts here",
                           "write deep trees in the flat form: "
                           "{\"nodes\": N, \"children\": ...}") from None


def parse_json_structures(text: str, lookup: Lookup, *, path: str = "<string>",
                          max_children: int | None = None,
                          shape: TreeShape | None = None) -> list[Structure]:
    """Every record of a JSON text as a `Structure` (format in the module docstring).

    `lookup` maps tokens to word ids; trees are fitted to `shape` (E0516, E0507). Raises
    `InputError` E0507, E0510..E0513 and E0515 (a node with two parents in a "tree").
    """
    source = _Source(text, path)
    structures = []
    if shape is not None and shape.binarize is not None:
        max_children = None
    for offset, where, record in _records(source):
        structure = _record(record, lookup, source, offset, where, max_children)
        if shape is not None and structure.kind == "tree" and not shape.is_trivial():
            structure = reshape_tree(structure, shape, _locator(source, offset, where))
        structures.append(structure)
    return structures


def _locator(source: _Source, offset: int, where: str) -> Locate:
    def locate(node: int, code: str, message: str, label: str, hint: str) -> InputError:
        return source.error(offset, code, f"{message} (node {node} of {where})",
                            f"in the record starting here ({where})", hint)

    return locate


def iter_json(path: str | os.PathLike[str], lookup: Lookup, *,
              max_children: int | None = None,
              shape: TreeShape | None = None) -> Iterator[Structure]:
    """The structures of a JSON file (read whole, then converted record by record)."""
    path_text = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise input_error("E0509", f"cannot read {path_text}: {error}",
                          hint="check the path; JSON inputs are UTF-8 text") from error
    yield from parse_json_structures(text, lookup, path=path_text, max_children=max_children,
                                     shape=shape)


def _record(record: Any, lookup: Lookup, source: _Source, offset: int, where: str,
            max_children: int | None) -> Structure:
    def fail(message: str, code: str = "E0511", hint: str = "") -> InputError:
        return source.error(offset, code, message, f"in the record starting here ({where})",
                            hint or "see the JSON input format in cortexlang.inputs.jsontrees")

    if not isinstance(record, dict):
        raise fail(f"{where} is a {type(record).__name__}, expected a record (an object)")
    meta: dict[str, object] = {"path": source.path, "record": where}
    extra = record.get("meta", {})
    if not isinstance(extra, dict):
        raise fail(f"{where}.meta must be an object")
    meta.update(extra)
    if "tree" in record:
        unknown = set(record) - {"tree", "meta"}
        if unknown:
            raise fail(f"unknown key {sorted(unknown)[0]!r} in a tree record {where}")
        return _nested(record["tree"], lookup, f"{where}.tree", fail, max_children, meta)
    if "nodes" in record:
        unknown = set(record) - _FLAT_KEYS
        if unknown:
            raise fail(f"unknown key {sorted(unknown)[0]!r} in a flat record {where}")
        return _flat(record, lookup, where, fail, max_children, meta)
    raise fail(f"{where} has neither \"tree\" nor \"nodes\"",
               hint="a record is {\"tree\": {...}} or {\"nodes\": N, \"children\": [...]}")


def _nested(tree: Any, lookup: Lookup, where: str, fail: Callable[..., InputError],
            max_children: int | None, meta: dict[str, object]) -> Structure:
    labels: list[int] = []
    child_lists: list[list[int]] = []
    tokens: list[str | None] = []
    finished: list[int] = []
    stack: list[tuple[Any, str, bool]] = [(tree, where, False)]
    while stack:
        node, node_where, expanded = stack.pop()
        if expanded:
            count = len(node["children"])
            child_ids = finished[len(finished) - count:]
            del finished[len(finished) - count:]
            finished.append(_add_node(labels, child_lists, tokens, node, child_ids, None))
            continue
        if not isinstance(node, dict):
            raise fail(f"{node_where} must be a node object")
        unknown = set(node) - _NESTED_NODE_KEYS
        if unknown:
            raise fail(f"unknown key {sorted(unknown)[0]!r} in node {node_where}")
        label = node.get("label")
        if label is not None and not _is_label(label):
            raise fail(f"{node_where}.label must be a 32-bit integer or null")
        has_word = "word" in node
        children = node.get("children")
        if has_word and children is not None:
            raise fail(f"node {node_where} has both \"word\" and \"children\"", "E0508")
        if has_word:
            if not isinstance(node["word"], str):
                raise fail(f"{node_where}.word must be a string")
            finished.append(_add_node(labels, child_lists, tokens, node, [], node["word"]))
            continue
        if not isinstance(children, list) or not children:
            raise fail(f"node {node_where} has neither a \"word\" nor a non-empty "
                       "\"children\" list", "E0504")
        if max_children is not None and len(children) > max_children:
            raise fail(f"node {node_where} has {len(children)} children, more than the limit "
                       f"of {max_children}", "E0507")
        stack.append((node, node_where, True))
        for position in range(len(children) - 1, -1, -1):
            stack.append((children[position], f"{node_where}.children[{position}]", False))
    width = max(1, max(len(row) for row in child_lists))
    rows = [row + [-1] * (width - len(row)) for row in child_lists]
    return Structure(
        children=np.array(rows, dtype=np.int32).reshape(len(rows), width),
        words=np.array([NO_WORD if token is None else lookup(token) for token in tokens],
                       dtype=np.int32),
        root=len(rows) - 1,
        tokens=tuple(tokens),
        labels=np.array(labels, dtype=np.int32),
        kind="tree",
        meta=meta,
    )


def _add_node(labels: list[int], child_lists: list[list[int]], tokens: list[str | None],
              node: dict[str, Any], children: list[int], token: str | None) -> int:
    label = node.get("label")
    labels.append(NO_LABEL if label is None else label)
    child_lists.append(children)
    tokens.append(token)
    return len(labels) - 1


def _flat(record: dict[str, Any], lookup: Lookup, where: str, fail: Callable[..., InputError],
          max_children: int | None, meta: dict[str, object]) -> Structure:
    count = record["nodes"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise fail(f"{where}.nodes must be a positive integer")
    kind = record.get("kind", "dag")
    if kind not in _KINDS:
        raise fail(f"{where}.kind is {kind!r}; expected one of {', '.join(_KINDS)}")
    rows = _per_node_list(record, "children", count, where, fail)
    width = max(1, max((len(row) for row in rows), default=1))
    children = np.full((count, width), -1, dtype=np.int64)
    for node, row in enumerate(rows):
        if not isinstance(row, list) or not all(_is_int(child) for child in row):
            raise fail(f"{where}.children[{node}] must be a list of integers")
        children[node, : len(row)] = [child if -1 <= child < count else -2 for child in row]
    bad = np.argwhere((children < -1) | (children == np.arange(count)[:, None]))
    if bad.size:
        node, position = (int(value) for value in bad[0])
        raise fail(f"{where}.children[{node}][{position}] is {rows[node][position]}, "
                   f"not a node id in 0..{count - 1} other than {node} (or -1)", "E0512")
    if kind in ("tree", "sequence"):
        parents = np.bincount(children[children >= 0], minlength=count)
        if parents.max(initial=0) > 1:
            node = int(np.argmax(parents > 1))
            raise fail(f"node {node} of {where} is a child of {int(parents[node])} nodes, but "
                       f"a {kind} gives each node one parent", "E0515",
                       "a node shared by several parents makes a DAG: write \"kind\": \"dag\" "
                       "for a model over DAGs, or give each parent its own copy")
    present = (children >= 0).sum(axis=1)
    if max_children is not None and present.max() > max_children:
        node = int(np.argmax(present))
        raise fail(f"{where}.children[{node}] has {int(present[node])} children, more than "
                   f"the limit of {max_children}", "E0507")
    root = record.get("root", count - 1)
    if not _is_int(root) or not 0 <= root < count:
        raise fail(f"{where}.root must be a node id in 0..{count - 1}", "E0512")
    tokens: tuple[str | None, ...] = ()
    words = np.full(count, NO_WORD, dtype=np.int32)
    if "tokens" in record:
        token_list = _per_node_list(record, "tokens", count, where, fail)
        if not all(token is None or isinstance(token, str) for token in token_list):
            raise fail(f"{where}.tokens must hold strings or null")
        tokens = tuple(token_list)
        words = np.array([NO_WORD if token is None else lookup(token) for token in tokens],
                         dtype=np.int32)
    labels = None
    if "labels" in record:
        label_list = _per_node_list(record, "labels", count, where, fail)
        if not all(label is None or _is_label(label) for label in label_list):
            raise fail(f"{where}.labels must hold 32-bit integers or null")
        labels = np.array([NO_LABEL if label is None else label for label in label_list],
                          dtype=np.int32)
    features = None
    if "features" in record:
        feature_rows = _per_node_list(record, "features", count, where, fail)
        try:
            features = np.array(feature_rows, dtype=np.float64)
        except (TypeError, ValueError):
            features = None
        if features is None or features.ndim != 2:
            raise fail(f"{where}.features must be {count} lists of the same number of numbers")
    return Structure(children=children.astype(np.int32), words=words, root=int(root),
                     tokens=tokens, labels=labels, features=features, kind=kind, meta=meta)


def _per_node_list(record: dict[str, Any], key: str, count: int, where: str,
                   fail: Callable[..., InputError]) -> list[Any]:
    value = record.get(key)
    if not isinstance(value, list) or len(value) != count:
        raise fail(f"{where}.{key} must be a list of {count} entries, one per node")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_label(value: Any) -> bool:
    return _is_int(value) and -(2**31) <= value < 2**31


def to_json_record(structure: Structure, vocab: Vocab | None = None, *,
                   nested: bool | None = None) -> dict[str, Any]:
    """A JSON-ready record for a structure.

    Trees are nested when `nested` is true, or when it is None and the tree is no higher than
    `NESTED_HEIGHT_LIMIT`; everything else is flat. Tokens come from `structure.tokens` or,
    failing that, `vocab`. Raises `InputError` E0514 when a tree asked to be nested is not a
    tree reachable from its root, or a leaf has no token.
    """
    tokens = _tokens_of(structure, vocab)
    if structure.kind == "tree" and nested is not False:
        record = _nested_record(structure, tokens, NESTED_HEIGHT_LIMIT if nested is None else -1)
        if record is not None:
            return record
    result: dict[str, Any] = {
        "nodes": structure.num_nodes,
        "kind": structure.kind,
        "children": [[int(child) for child in row] for row in structure.children],
        "root": int(structure.root),
    }
    if any(token is not None for token in tokens):
        result["tokens"] = list(tokens)
    if structure.labels is not None:
        result["labels"] = [None if label < 0 else int(label) for label in structure.labels]
    if structure.features is not None:
        # str() of a numpy float is its shortest decimal that reads back to the same value in
        # its own precision: float32 features stay short, float64 ones stay exact.
        result["features"] = [[float(str(value)) for value in row]
                              for row in structure.features]
    return result


def _tokens_of(structure: Structure, vocab: Vocab | None) -> tuple[str | None, ...]:
    if structure.tokens:
        return structure.tokens
    if vocab is None:
        return (None,) * structure.num_nodes
    return tuple(None if word < 0 else vocab.token(int(word)) for word in structure.words)


def _nested_record(structure: Structure, tokens: tuple[str | None, ...],
                   height_limit: int) -> dict[str, Any] | None:
    """The nested form, or None when deeper than `height_limit` (-1: no limit)."""
    if structure.features is not None:
        return None
    labels = structure.labels
    objects: dict[int, dict[str, Any]] = {}
    stack: list[tuple[int, int]] = [(structure.root, 0)]
    while stack:
        node, depth = stack.pop()
        if height_limit >= 0 and depth > height_limit:
            return None
        if node in objects:
            raise input_error("E0514", f"node {node} is reached twice: not a tree",
                              hint="write DAGs with kind \"dag\" (the flat form)")
        entry: dict[str, Any] = {}
        if labels is not None and labels[node] >= 0:
            entry["label"] = int(labels[node])
        objects[node] = entry
        present = [int(child) for child in structure.children[node] if child >= 0]
        if present:
            stack.extend((child, depth + 1) for child in reversed(present))
        elif tokens[node] is None:
            raise input_error("E0514", f"leaf {node} has no token",
                              hint="give the structure tokens, or pass the vocabulary")
        else:
            entry["word"] = tokens[node]
    if len(objects) != structure.num_nodes:
        raise input_error("E0514", "some nodes are not reachable from the root")
    for node, entry in objects.items():
        present = [int(child) for child in structure.children[node] if child >= 0]
        if present:
            entry["children"] = [objects[child] for child in present]
    return {"tree": objects[structure.root]}


def write_json(structures: Iterable[Structure], path: str | os.PathLike[str],
               vocab: Vocab | None = None, *, lines: bool = True) -> int:
    """Write JSON lines (one record per line), or with `lines=False` an indented list.

    Atomic (temporary file, then rename). Returns the number of records written.
    """
    records = [to_json_record(structure, vocab) for structure in structures]
    if lines:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    atomic.write_text(path, text)
    return len(records)

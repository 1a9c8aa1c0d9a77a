"""A corpus as rows: files of one structure per line (PTB trees, JSON lines), cut into chunks.

The driver expands the patterns (`corpus/*.ptb`, sorted, each file once) and scans each file
once for its line starts, cutting it into `Chunk`s of at most `lines_per_chunk` lines; each
chunk becomes one block of rows, read where it runs (seek to its byte offset, read its lines).
So a single large file still spreads over every actor, and no file is read twice.

A row is one non-blank line: its id is `PATH:LINE` (1-based line), unique in the job and the
same in every run. `parse_row` turns a row into a `Structure` with the readers of
`cortexlang.inputs`, whose errors are located at that file, line and column.

The vocabulary is the single-process run's: a vocabulary file, or one built from the corpus
in file order (tokens in order of first appearance, `first_tokens` per chunk merged in order
by `merge_tokens`), so that the same trees get the same word ids as `cortexlang run`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from cortexlang.errors import Diagnostic, InputError, Span
from cortexlang.inputs import input_error
from cortexlang.inputs.jsontrees import parse_json_structures
from cortexlang.inputs.load import detect_format
from cortexlang.inputs.ptb import Lookup, parse_ptb_line
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import UNKNOWN, Vocab

DEFAULT_LINES_PER_CHUNK = 1024


@dataclass(frozen=True)
class Chunk:
    """Lines `first_line` .. `first_line + lines - 1` of `path`, starting at byte `offset`;
    `rows` of them are not blank."""

    path: str
    format: str
    offset: int
    first_line: int
    lines: int
    rows: int


@dataclass(frozen=True)
class Row:
    """One structure's text, where it came from, and its id."""

    path: str
    line: int
    text: str
    format: str

    @property
    def id(self) -> str:
        return structure_id(self.path, self.line)


def structure_id(path: str, line: int) -> str:
    """The id of the structure on `line` (1-based) of `path`: `PATH:LINE`."""
    return f"{path}:{line}"


def split_id(identifier: str) -> tuple[str, int]:
    """(path, line) of an id made by `structure_id`."""
    path, _, line = identifier.rpartition(":")
    return path, int(line)


def expand_patterns(patterns: Sequence[str]) -> list[str]:
    """The files the patterns name, each pattern's matches sorted, each file once, in order.

    Raises `InputError` E0509 for a pattern that matches no file.
    """
    files: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [path for path in matches if os.path.isfile(path)]
        if not matches:
            raise input_error("E0509", f"no input file matches {pattern!r}",
                              hint="check the path; quote a pattern so that cortexlang, "
                                   "not the shell, expands it: --trees 'corpus/*.ptb'")
        for path in matches:
            if path not in seen:
                seen.add(path)
                files.append(path)
    return files


def chunk_file(path: str, input_format: str | None = None,
               lines_per_chunk: int = DEFAULT_LINES_PER_CHUNK) -> list[Chunk]:
    """The chunks of one file (one scan of its bytes for line starts).

    Raises `InputError` E0509 when the file cannot be read, E0540 when its format is unknown.
    """
    chosen = input_format or detect_format(path)
    chunks = []
    try:
        with open(path, "rb") as file:
            offset = 0
            start_offset, start_line, lines, rows = 0, 1, 0, 0
            for line_number, line in enumerate(file, start=1):
                if lines == lines_per_chunk:
                    chunks.append(Chunk(path, chosen, start_offset, start_line, lines, rows))
                    start_offset, start_line, lines, rows = offset, line_number, 0, 0
                lines += 1
                rows += 1 if line.strip() else 0
                offset += len(line)
    except OSError as error:
        raise input_error("E0509", f"cannot read {path}: {error.strerror or error}",
                          hint="check the path of the input file") from error
    if lines:
        chunks.append(Chunk(path, chosen, start_offset, start_line, lines, rows))
    return chunks


def chunk_files(paths: Sequence[str], input_format: str | None = None,
                lines_per_chunk: int = DEFAULT_LINES_PER_CHUNK) -> list[Chunk]:
    """The chunks of every file, in file order."""
    return [chunk for path in paths for chunk in chunk_file(path, input_format, lines_per_chunk)]


def read_chunk(chunk: Chunk) -> Iterator[Row]:
    """The rows of a chunk: its non-blank lines. Raises `InputError` E0509 for bytes that are
    not UTF-8 (located at the line) or a file that cannot be read."""
    try:
        with open(chunk.path, "rb") as file:
            file.seek(chunk.offset)
            for number in range(chunk.first_line, chunk.first_line + chunk.lines):
                data = file.readline()
                try:
                    text = data.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as error:
                    raise input_error(
                        "E0509", f"{chunk.path}:{number} is not UTF-8 text: {error}",
                        hint="save the file as UTF-8") from error
                if data.strip():  # ASCII whitespace only, as the PTB reader skips
                    yield Row(chunk.path, number, text, chunk.format)
    except OSError as error:
        raise input_error("E0509", f"cannot read {chunk.path}: {error.strerror or error}",
                          hint="check the path of the input file") from error


def parse_row(row: Row, lookup: Lookup, *, max_children: int | None = None) -> Structure:
    """The structure of one row. Raises the readers' located `InputError`s (E0501..E0513),
    pointing at the row's file and line; a JSON line must hold exactly one record."""
    if row.format == "ptb":
        structure = parse_ptb_line(row.text, lookup, path=row.path, line_number=row.line,
                                   max_children=max_children)
        if structure is None:
            raise _row_error(row, "E0506", "a blank line has no tree")
        return structure
    try:
        records = parse_json_structures(row.text, lookup, path=row.path,
                                        max_children=max_children)
    except InputError as error:
        raise at_line(error, row.line, row.text) from None
    if len(records) != 1:
        raise _row_error(row, "E0511", f"a JSON line holds {len(records)} records, not one")
    return replace(records[0], meta={**records[0].meta, "path": row.path, "line": row.line})


def _row_error(row: Row, code: str, message: str) -> InputError:
    span = Span(row.path, row.line, 1, row.line, len(row.text) + 1)
    return InputError(Diagnostic(code, message, span, "this line",
                                 "write one structure per line (JSON lines: one record each)"),
                      "\n" * (row.line - 1) + row.text)


def at_line(error: InputError, line: int, text: str) -> InputError:
    """`error`, raised for `text` parsed alone, moved to `line` of its file."""
    moved = [replace(diagnostic, span=None if diagnostic.span is None else replace(
                diagnostic.span, line=diagnostic.span.line + line - 1,
                end_line=diagnostic.span.end_line + line - 1))
             for diagnostic in error.diagnostics]
    return InputError(moved, "\n" * (line - 1) + text)


class TokenCollector:
    """A `Lookup` that records tokens in order of first appearance (id 0 for all of them)."""

    def __init__(self) -> None:
        self.tokens: dict[str, None] = {}

    def __call__(self, token: str) -> int:
        self.tokens.setdefault(token, None)
        return 0


def first_tokens(chunk: Chunk, max_children: int | None = None) -> list[str]:
    """The distinct tokens of a chunk's well-formed rows, in order of first appearance (rows
    that do not parse add none: they fail later with their own error)."""
    collected: dict[str, None] = {}
    for row in read_chunk(chunk):
        collector = TokenCollector()
        try:
            parse_row(row, collector, max_children=max_children)
        except InputError:
            continue
        for token in collector.tokens:
            collected.setdefault(token, None)
    return list(collected)


def merge_tokens(token_lists: Sequence[Sequence[str]]) -> Vocab:
    """The vocabulary of chunks read in order: `<unk>`, then tokens by first appearance."""
    merged: dict[str, None] = {UNKNOWN: None}
    for tokens in token_lists:
        for token in tokens:
            merged.setdefault(token, None)
    return Vocab(tuple(merged))

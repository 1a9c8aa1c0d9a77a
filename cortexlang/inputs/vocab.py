"""Vocabularies: token text to the word ids a model's embedding table is indexed by.

A token a vocabulary does not hold reads as its *unknown id*: 0 in vocabularies built from
inputs (`<unk>` first), anywhere in one read from a file.

A vocabulary file is UTF-8 text with one token per line, the line's text exactly (only the
line break is removed; a token may hold any character but a line break, including U+00A0).
The token on line k has id k - 1. The unknown token is `<unk>` unless `unknown` names another
token (`[UNK]`) or gives its id: a file that holds it keeps its ids as they are, so a
torchtext-style list (`<pad>`, `<unk>`, ...) reads with `<unk>` = 1 and `<pad>` = 0; a plain
word list without it gets `<unk>` put in front (then the word on line k has id k). Other
special entries (`<pad>`, `<s>`) are ordinary tokens. `Vocab.save` writes the tokens in id
order, so a saved vocabulary reads back with the same ids. Empty lines and duplicate tokens
are errors.

The two-pass problem: ids are wanted while a file streams, but a vocabulary pruned by
frequency is only known at the end. `VocabBuilder` hands out provisional ids in order of first
appearance; `freeze` returns the final `Vocab` and a `remap` array from provisional to final
ids (the identity when nothing is pruned), which `remap_words` applies to the structures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from cortexlang import atomic
from cortexlang.inputs import input_error, located_input_error
from cortexlang.inputs.structure import Structure

UNKNOWN = "<unk>"
UNKNOWN_ID = 0


@dataclass(frozen=True, eq=False)
class Vocab:
    """An immutable vocabulary: `tokens[i]` is the text of id i; a token it does not hold
    reads as `unknown_id` (whose token is usually `<unk>`)."""

    tokens: tuple[str, ...]
    unknown_id: int = UNKNOWN_ID
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.unknown_id < len(self.tokens):
            raise ValueError(f"a Vocab's unknown id {self.unknown_id} is not one of its "
                             f"{len(self.tokens)} ids")
        index = {token: position for position, token in enumerate(self.tokens)}
        if len(index) != len(self.tokens):
            raise ValueError("a Vocab's tokens must be distinct")
        object.__setattr__(self, "_index", index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.tokens == other.tokens and self.unknown_id == other.unknown_id

    def __hash__(self) -> int:
        return hash((self.tokens, self.unknown_id))

    @property
    def unknown_token(self) -> str:
        """The text of the unknown id."""
        return self.tokens[self.unknown_id]

    def describe(self) -> str:
        """`N tokens, <unk> = id K` for run headers."""
        return f"{len(self.tokens)} tokens, {self.unknown_token} = id {self.unknown_id}"

    @staticmethod
    def from_tokens(tokens: Iterable[str]) -> Vocab:
        """A vocabulary of `<unk>` then the distinct tokens in order of first appearance."""
        builder = VocabBuilder()
        for token in tokens:
            builder.add(token)
        return builder.freeze()[0]

    @staticmethod
    def read(path: str | os.PathLike[str], *, unknown: str | int = UNKNOWN) -> Vocab:
        """Read a vocabulary file (module docstring). `unknown` is the unknown token's text
        or its id (line number - 1). Raises `InputError` E0509, E0520, E0521, and E0523 for
        an unknown id outside the file."""
        path_text = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise input_error(
                "E0509", f"cannot read vocabulary file {path_text}: {error}",
                hint="a vocabulary file is UTF-8 text, one token per line") from error
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        tokens: list[str] = []
        first_line: dict[str, int] = {}
        for line_number, line in enumerate(lines, start=1):
            token = line[:-1] if line.endswith("\r") else line
            if token == "":
                raise located_input_error(
                    "E0521", "empty line in a vocabulary file", path=path_text,
                    line=line_number, column=1, line_text=line, label="expected a token",
                    hint="write one token per line, with no blank lines")
            if token in first_line:
                raise located_input_error(
                    "E0520", f"duplicate token {token!r} in a vocabulary file", path=path_text,
                    line=line_number, column=1, line_text=line, width=len(token),
                    label=f"already on line {first_line[token]}",
                    hint="each token may appear once; its line gives its id")
            first_line[token] = line_number
            tokens.append(token)
        return Vocab.of_tokens(tokens, unknown=unknown, source=path_text)

    @staticmethod
    def of_tokens(tokens: Sequence[str], *, unknown: str | int = UNKNOWN,
                  source: str = "the vocabulary") -> Vocab:
        """The vocabulary whose id i is `tokens[i]`, with the unknown id chosen as `Vocab.read`
        does: a token's text (put in front when absent) or an id. Raises `InputError` E0523
        for an id outside the tokens, E0520 for a duplicate token."""
        tokens = list(tokens)
        if len(set(tokens)) != len(tokens):
            seen: set[str] = set()
            duplicate = ""
            for token in tokens:
                if token in seen:
                    duplicate = token
                    break
                seen.add(token)
            raise input_error("E0520", f"duplicate token {duplicate!r} in {source}",
                              hint="each token may appear once; its position gives its id")
        if isinstance(unknown, bool) or not isinstance(unknown, (int, str)):
            raise TypeError("unknown must be a token (str) or an id (int)")
        if isinstance(unknown, int):
            if not 0 <= unknown < len(tokens):
                raise input_error(
                    "E0523", f"unknown id {unknown} is outside {source}, which has "
                    f"{len(tokens)} tokens (ids 0..{len(tokens) - 1})",
                    hint="give the id of the token that stands for unknown words")
            return Vocab(tuple(tokens), unknown)
        if unknown not in tokens:
            tokens.insert(0, unknown)
        return Vocab(tuple(tokens), tokens.index(unknown))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def lookup(self, token: str) -> int:
        """The id of `token`, or the unknown id when the vocabulary does not hold it."""
        return self._index.get(token, self.unknown_id)

    def token(self, word: int) -> str:
        """The text of id `word` (IndexError outside 0..len-1)."""
        return self.tokens[word]

    def ids(self, tokens: Sequence[str]) -> np.ndarray:
        """int32 ids of `tokens`, unknown ones as the unknown id."""
        get = self._index.get
        unknown = self.unknown_id
        return np.array([get(token, unknown) for token in tokens], dtype=np.int32)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one token per line in id order, atomically (`cortexlang.atomic`).

        A token holding a line break cannot be saved (ValueError); a path that cannot be
        written raises `InputError` E0570."""
        for token in self.tokens:
            if "\n" in token or "\r" in token:
                raise ValueError(f"token {token!r} holds a line break and cannot be saved")
        atomic.write_text(path, "".join(token + "\n" for token in self.tokens))

    def check_fits(self, model_vocabulary_size: int, *, source: str = "the input") -> None:
        """Raise E0522 when this vocabulary has more ids than the model's embedding table."""
        if len(self.tokens) > model_vocabulary_size:
            raise input_error(
                "E0522",
                f"the vocabulary of {source} has {len(self.tokens)} tokens, but the model's "
                f"vocabulary size V is {model_vocabulary_size}",
                hint=f"declare V >= {len(self.tokens)} in the model, or limit the vocabulary "
                     "(a vocabulary file, or a maximum vocabulary size when loading)")


class VocabBuilder:
    """A growing vocabulary used while streaming: a mutable accumulator, frozen at the end.

    `add` (also spelled `lookup`, so a builder can stand in for a `Vocab` in the readers)
    returns a provisional id, fixed at first appearance, and counts occurrences.
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {UNKNOWN: UNKNOWN_ID}
        self._tokens: list[str] = [UNKNOWN]
        self._counts: list[int] = [0]

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, token: str) -> int:
        """The provisional id of `token`, adding it when new; counts the occurrence."""
        word = self._index.get(token)
        if word is None:
            word = len(self._tokens)
            self._index[token] = word
            self._tokens.append(token)
            self._counts.append(1)
        else:
            self._counts[word] += 1
        return word

    lookup = add

    def freeze(self, *, max_size: int | None = None,
               min_count: int = 1) -> tuple[Vocab, np.ndarray]:
        """The final `Vocab` and int32 `remap[provisional id] -> final id`.

        Tokens seen fewer than `min_count` times are dropped; of the rest, the `max_size - 1`
        most frequent are kept (ties go to the earlier token). Kept tokens keep their order of
        first appearance; dropped ones map to 0. Without limits, `remap` is the identity.
        """
        if max_size is not None and max_size < 1:
            raise ValueError("max_size must be at least 1 (room for <unk>)")
        counts = np.array(self._counts, dtype=np.int64)
        keep = counts >= min_count
        keep[UNKNOWN_ID] = True
        if max_size is not None and int(keep.sum()) > max_size:
            candidates = np.flatnonzero(keep[1:]) + 1
            order = np.argsort(-counts[candidates], kind="stable")
            keep[:] = False
            keep[UNKNOWN_ID] = True
            keep[candidates[order[: max_size - 1]]] = True
        remap = np.zeros(len(self._tokens), dtype=np.int32)
        kept = np.flatnonzero(keep)
        remap[kept] = np.arange(kept.size, dtype=np.int32)
        vocab = Vocab(tuple(self._tokens[position] for position in kept))
        return vocab, remap


def remap_words(structures: Sequence[Structure], remap: np.ndarray) -> list[Structure]:
    """The structures with `words` passed through `remap` (-1, no word, stays -1)."""
    if np.array_equal(remap, np.arange(remap.size)):
        return list(structures)
    extended = np.append(remap, np.int32(-1)).astype(np.int32)
    return [replace(structure, words=extended[structure.words]) for structure in structures]


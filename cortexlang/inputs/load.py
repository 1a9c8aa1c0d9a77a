"""One entry point for input files: `load_structures(path, vocab)` picks the reader.

The format comes from `format` when given, else from the extension (`.ptb`, `.txt`,
`.tree`, `.trees`: PTB; `.json`, `.jsonl`, `.ndjson`: JSON), else from the first character
that is not whitespace (`(`: PTB; `{` or `[`: JSON).

With a `vocab`, tokens it does not hold read as `<unk>` (id 0). Without one, a vocabulary is
built while the file streams (ids in order of first appearance) and frozen at the end; when a
`max_vocab_size` or `min_count` prunes it, the word ids of the structures already read are
remapped then, in one vectorised step per structure.

The path `-` reads standard input (whole, then as text: the format from its first character).
With a `TreeShape`, trees are fitted to the model as they are read (`cortexlang.inputs.reshape`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cortexlang.inputs import input_error
from cortexlang.inputs.jsontrees import iter_json, parse_json_structures
from cortexlang.inputs.ptb import iter_ptb, parse_ptb
from cortexlang.inputs.reshape import TreeShape
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.vocab import Vocab, VocabBuilder, remap_words

FORMATS = ("ptb", "json")
STDIN = "-"
STDIN_NAME = "<stdin>"
_EXTENSIONS = {".ptb": "ptb", ".txt": "ptb", ".tree": "ptb", ".trees": "ptb",
               ".json": "json", ".jsonl": "json", ".ndjson": "json"}


@dataclass(frozen=True)
class LoadedStructures:
    """What `load_structures` read: the structures, the vocabulary their words index, and
    how many leaf tokens read as `<unk>`."""

    structures: tuple[Structure, ...]
    vocab: Vocab
    path: str
    format: str
    unknown_tokens: int
    seconds: float

    def __len__(self) -> int:
        return len(self.structures)


def detect_format(path: str | os.PathLike[str]) -> str:
    """"ptb" or "json", from the extension or else the first non-whitespace character.

    Raises `InputError` E0509 when the file cannot be read, E0540 when neither tells.
    """
    path_text = os.fspath(path)
    extension = os.path.splitext(path_text)[1].lower()
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    try:
        with open(path, "rb") as file:
            head = file.read(4096).lstrip()
    except OSError as error:
        raise input_error("E0509", f"cannot read {path_text}: {error.strerror or error}",
                          hint="check the path of the input file") from error
    if head[:1] == b"(":
        return "ptb"
    if head[:1] in (b"{", b"["):
        return "json"
    raise input_error("E0540", f"cannot tell the format of {path_text}",
                      hint="name it .ptb or .json, or pass the format explicitly "
                           f"({', '.join(FORMATS)})")


def _format_of_text(text: str, name: str) -> str:
    head = text.lstrip()[:1]
    if head == "(":
        return "ptb"
    if head in ("{", "["):
        return "json"
    raise input_error("E0540", f"cannot tell the format of {name}",
                      hint="PTB trees start with '(', JSON with '{' or '['; or pass the "
                           f"format explicitly ({', '.join(FORMATS)})")


def load_structures(path: str | os.PathLike[str], vocab: Vocab | None = None, *,
                    input_format: str | None = None, max_children: int | None = None,
                    max_vocab_size: int | None = None, min_count: int = 1,
                    model_vocab_size: int | None = None,
                    shape: TreeShape | None = None) -> LoadedStructures:
    """Read every structure of an input file (PTB or JSON), mapping tokens to word ids.

    `vocab` given: it is used as is (`max_vocab_size` and `min_count` do not apply).
    `vocab` None: a vocabulary is built from the file (see the module docstring).
    `max_children` limits the children per node (E0507); `model_vocab_size` checks that the
    vocabulary fits the model's embedding table (E0522). All errors are `InputError`s.
    """
    started = time.perf_counter()
    path_text = os.fspath(path)
    reader: Callable[[Callable[[str], int]], Iterator[Structure]]
    if path_text == STDIN:
        path_text = STDIN_NAME
        try:
            text = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as error:
            raise input_error("E0509", f"cannot read standard input: {error}",
                              hint="pipe UTF-8 text into --trees -") from error
        chosen = input_format or _format_of_text(text, "standard input")
        parse_text = parse_ptb if chosen == "ptb" else parse_json_structures

        def reader(lookup: Callable[[str], int]) -> Iterator[Structure]:
            yield from parse_text(text, lookup, path=STDIN_NAME, max_children=max_children,
                                  shape=shape)
    else:
        chosen = input_format or detect_format(path)
        read_file = iter_ptb if chosen == "ptb" else iter_json

        def reader(lookup: Callable[[str], int]) -> Iterator[Structure]:
            yield from read_file(path, lookup, max_children=max_children, shape=shape)
    if chosen not in FORMATS:
        raise input_error("E0540", f"unknown input format {chosen!r}",
                          hint=f"choose one of: {', '.join(FORMATS)}")
    if vocab is None:
        builder = VocabBuilder()
        read = list(reader(builder.add))
        vocab, remap = builder.freeze(max_size=max_vocab_size, min_count=min_count)
        structures = remap_words(read, remap)
    else:
        structures = list(reader(vocab.lookup))
    if model_vocab_size is not None:
        vocab.check_fits(model_vocab_size, source=path_text)
    unknown = sum(int((structure.words == vocab.unknown_id).sum()) for structure in structures)
    return LoadedStructures(structures=tuple(structures), vocab=vocab, path=path_text,
                            format=chosen, unknown_tokens=unknown,
                            seconds=time.perf_counter() - started)

"""Atomic file writing: every output file appears whole or not at all.

A file is written to a temporary sibling in the same directory (so that the final rename
stays on one file system), flushed to disk, then moved over the destination with
`os.replace`, which is atomic on POSIX and Windows. If anything fails on the way, the
temporary file is removed and the destination is untouched: an interrupted run never leaves
half an `.npz` behind for a later step to trip over.

Failures to write (a missing directory, no permission, a full disk) are the user's to fix, so
they raise `InputError` E0570 naming the path, never a raw `OSError`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import numpy as np

from cortexlang.errors import Diagnostic, InputError

TEMPORARY_PREFIX = ".cortexlang-"
TEMPORARY_SUFFIX = ".part"


def _write_error(path: str | os.PathLike[str], error: OSError) -> InputError:
    reason = error.strerror or str(error)
    return InputError(Diagnostic(
        "E0570", f"cannot write {os.fspath(path)}: {reason}", None, "",
        "check that the directory exists and is writable"))


def _umask() -> int:
    """The process umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path` atomically.

    `mode` is "wb" or "w" (text is UTF-8 with "\\n" line ends). On an exception inside the
    block the temporary file is deleted and the exception propagates; `path` is unchanged.
    Raises `InputError` E0570 when the directory cannot be written.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes only, in mode 'wb' or 'w', not {mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX,
                                             suffix=TEMPORARY_SUFFIX)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        if mode == "wb":
            file: IO[Any] = os.fdopen(handle, "wb")
        else:
            file = os.fdopen(handle, "w", encoding="utf-8", newline="\n")
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; give it the mode a plain open() would have.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _write_error(path, error) from None
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as file:
        file.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_open(path, "w") as file:
        file.write(text)


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], *,
             compress: bool = False) -> None:
    """Save named arrays as an `.npz` archive at exactly `path`, atomically.

    Unlike `numpy.savez`, no `.npz` suffix is appended: the file lands where it was asked.
    """
    named = {name: np.asarray(value) for name, value in arrays.items()}
    with atomic_open(path, "wb") as file:
        if compress:
            np.savez_compressed(file, **named)  # type: ignore[arg-type]
        else:
            np.savez(file, **named)  # type: ignore[arg-type]

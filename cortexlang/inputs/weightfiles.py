"""Weights files on disk: NumPy `.npz`, `.safetensors` and PyTorch state_dicts (`.pt`).

The format is told from the file's bytes, never from its name:

    .npz          a zip archive of `.npy` members (NumPy's `savez`)
    .safetensors  an 8-byte little-endian header length, then a JSON header (`{...}`)
    PyTorch       a zip archive holding `*/data.pkl` (`torch.save`), or a bare pickle

NumPy and safetensors files are read without torch (safetensors through its NumPy API).
A PyTorch file is read with `torch.load(weights_only=True)`, which unpickles only tensors and
plain containers, and only when torch is installed (else E0536 says how to convert the file).
Its value must be a mapping of names to tensors (a state_dict); nested mappings are flattened
with dots (`{"model": {"W": t}}` gives `model.W`).

Besides the arrays, a file written by cortexlang carries *metadata*: which model it was saved
for, the vocabulary its embedding rows are indexed by, and, for weights drawn by `--init`, the
seed. It is JSON, stored as the uint8 array `cortexlang/meta` in an `.npz` (a name no model
parameter can have) and as the `cortexlang` entry of a safetensors header's `__metadata__`.
Errors are `InputError`s E0533 (unreadable), E0536 (torch missing) naming the file.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cortexlang import atomic
from cortexlang.errors import InputError
from cortexlang.inputs import input_error
from cortexlang.inputs.vocab import Vocab

META_KEY = "cortexlang/meta"
SAFETENSORS_META_KEY = "cortexlang"
META_VERSION = 1
FORMATS = ("npz", "safetensors", "pt")


@dataclass(frozen=True, eq=False)
class WeightsFile:
    """What a weights file holds: arrays by stored name, and cortexlang's metadata (empty for
    files written by other tools)."""

    path: str
    format: str
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def vocab(self) -> Vocab | None:
        """The vocabulary saved with the weights, or None."""
        entry = self.meta.get("vocab")
        if entry is None:
            return None
        try:
            return Vocab(tuple(entry["tokens"]), int(entry["unknown_id"]))
        except (KeyError, TypeError, ValueError) as error:
            raise _unreadable(self.path,
                              ValueError(f"its vocabulary is malformed: {error}")) from None

    @property
    def init_seed(self) -> int | None:
        """The seed of weights drawn by `--init` (not trained), or None."""
        entry = self.meta.get("init")
        return int(entry["seed"]) if isinstance(entry, dict) and "seed" in entry else None


def make_meta(*, model: str | None = None, vocab: Vocab | None = None,
              init_seed: int | None = None) -> dict[str, Any]:
    """The metadata cortexlang saves with weights (see the module docstring)."""
    meta: dict[str, Any] = {"version": META_VERSION}
    if model is not None:
        meta["model"] = model
    if vocab is not None:
        meta["vocab"] = {"tokens": list(vocab.tokens), "unknown_id": vocab.unknown_id}
    if init_seed is not None:
        meta["init"] = {"seed": int(init_seed)}
    return meta


def detect_weights_format(path: str | os.PathLike[str]) -> str:
    """"npz", "safetensors" or "pt" from the file's bytes. Raises E0533 for anything else."""
    path_text = os.fspath(path)
    try:
        with open(path, "rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        raise input_error("E0533", f"weights file {path_text} does not exist",
                          hint="save weights first, or leave the weights out to initialise "
                               "them from a seed") from None
    except OSError as error:
        raise _unreadable(path_text, error) from None
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise _unreadable(path_text,
                              ValueError(f"it is a damaged zip archive ({error})")) from None
        if any(name.endswith("data.pkl") for name in names):
            return "pt"
        if names and all(name.endswith(".npy") for name in names):
            return "npz"
        raise _unreadable(path_text, ValueError(
            "it is a zip archive but neither an .npz (only .npy members) nor a PyTorch file"))
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "pt"
    raise _unreadable(path_text, ValueError(
        "it is not an .npz, .safetensors or PyTorch (.pt) file"))


def open_weights(path: str | os.PathLike[str]) -> WeightsFile:
    """Read every array and the metadata of a weights file (module docstring)."""
    path_text = os.fspath(path)
    kind = detect_weights_format(path)
    if kind == "npz":
        arrays = _read_npz(path_text)
    elif kind == "safetensors":
        arrays, header = _read_safetensors(path_text)
        return WeightsFile(path_text, kind, arrays, parse_meta(
            path_text, header.get(SAFETENSORS_META_KEY)))
    else:
        arrays = _read_torch(path_text)
    meta_bytes = arrays.pop(META_KEY, None)
    meta_text = None
    if meta_bytes is not None:
        if meta_bytes.dtype != np.uint8 or meta_bytes.ndim != 1:
            raise _unreadable(path_text, ValueError(f"{META_KEY} is not a byte array"))
        meta_text = meta_bytes.tobytes().decode("utf-8", errors="replace")
    return WeightsFile(path_text, kind, arrays, parse_meta(path_text, meta_text))


def parse_meta(path_text: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as error:
        raise _unreadable(path_text,
                          ValueError(f"its cortexlang metadata is not JSON: {error}")) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("version"), int):
        raise _unreadable(path_text, ValueError("its cortexlang metadata has no version"))
    if meta["version"] > META_VERSION:
        raise input_error("E0533", f"weights file {path_text} was written by a newer "
                          f"cortexlang (metadata version {meta['version']})",
                          hint="upgrade cortexlang to read it")
    return meta


def _read_npz(path_text: str) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path_text, allow_pickle=False)
    except Exception as error:  # numpy reports a bad file with many exception types
        raise _unreadable(path_text, error) from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _unreadable(path_text, ValueError("it holds one array, not an .npz archive"))
    try:
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except Exception as error:  # a damaged member: zip, CRC, header or pickle errors
        raise _unreadable(path_text, error) from error


def _read_safetensors(path_text: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise input_error("E0536", f"reading {path_text} needs the safetensors package",
                          hint="pip install safetensors (it does not need torch)") from None
    try:
        with open(path_text, "rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(min(length, 100 << 20)))
        with safe_open(path_text, framework="np") as opened:
            arrays = {name: opened.get_tensor(name) for name in opened.keys()}
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise _unreadable(path_text, error) from error
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return arrays, metadata if isinstance(metadata, dict) else {}


def _read_torch(path_text: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise input_error(
            "E0536", f"{path_text} is a PyTorch file, and reading it needs torch",
            hint="pip install torch, or convert it where torch is installed: "
                 "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')"
        ) from None
    try:
        loaded = torch.load(path_text, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors, damaged archives, unsafe globals
        raise _unreadable(path_text, error) from error
    arrays: dict[str, np.ndarray] = {}
    pending: list[tuple[str, Any]] = [("", loaded)]
    while pending:
        prefix, value = pending.pop()
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            arrays[prefix] = tensor.numpy().copy()
        elif isinstance(value, Mapping):
            pending.extend((f"{prefix}.{key}" if prefix else str(key), item)
                           for key, item in value.items())
        else:
            where = f"entry {prefix!r}" if prefix else "the file"
            raise _unreadable(path_text, ValueError(
                f"{where} holds a {type(value).__name__}, not tensors; save "
                "model.state_dict() (a mapping of names to tensors)"))
    return dict(sorted(arrays.items()))


def save_weights_file(path: str | os.PathLike[str], weights: Mapping[str, np.ndarray],
                      meta: Mapping[str, Any] | None = None) -> str:
    """Write `weights` (and `meta`) atomically: `.safetensors` when the path ends so, else an
    `.npz`. Returns the format written. E0570 when the path cannot be written."""
    path_text = os.fspath(path)
    meta_text = json.dumps(dict(meta)) if meta else None
    if path_text.endswith(".safetensors"):
        from safetensors.numpy import save

        arrays = {name: np.ascontiguousarray(value) for name, value in weights.items()}
        metadata = {SAFETENSORS_META_KEY: meta_text} if meta_text is not None else None
        atomic.write_bytes(path, save(arrays, metadata=metadata))
        return "safetensors"
    arrays = dict(weights)
    if meta_text is not None:
        arrays[META_KEY] = np.frombuffer(meta_text.encode("utf-8"), dtype=np.uint8)
    atomic.save_npz(path, arrays)
    return "npz"


def _unreadable(path_text: str, error: Exception) -> InputError:
    return input_error("E0533", f"weights file {path_text} cannot be read: {error}",
                       hint="the file may be truncated or not a weights file; save it again")

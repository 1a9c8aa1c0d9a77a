"""The compiled artifact (`.cxa`): one file that holds everything a deployment runs.

A `.cxa` is a zip archive (members stored, not compressed) of:

    manifest.json   {"format": "cortexlang-artifact", "version": 1, ...}: the cortexlang
                    version, model name, source path, size overrides and final sizes,
                    compiler options, the device limits the kernels were planned for, and
                    the SHA-256 of every other member
    program.cx      the checked program's source text
    kernels.cl      the OpenCL C emitted for it
    weights.npz     the weights, with their metadata (vocabulary, init seed) as in
                    `cortexlang.inputs.weightfiles`

It is written atomically (a temporary file beside the destination, then a rename), so an
interrupted write leaves nothing behind. Loading re-checks the source with the saved sizes and
verifies every member's checksum; running it compiled walks the (pure, fast) pipeline again to
rebuild the IR the runtime executes, checks that the OpenCL it emits is byte for byte the
saved `kernels.cl` when planned for the same limits, and then takes the kernel binary from the
build cache (keyed by that source and the device), so a deployment compiles no OpenCL twice.

A file that is not a zip, a zip without a manifest, a foreign or newer format, a missing
member or a checksum mismatch is `InputError` E0575 (E0576 for a newer version) naming the
file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from cortexlang import __version__, atomic
from cortexlang.errors import CortexError, InputError
from cortexlang.inputs import input_error
from cortexlang.inputs.vocab import Vocab
from cortexlang.inputs.weightfiles import META_KEY, WeightsFile, make_meta
from cortexlang.ir.checked import CheckedProgram

FORMAT = "cortexlang-artifact"
VERSION = 1
EXTENSION = ".cxa"
MEMBERS = ("program.cx", "kernels.cl", "weights.npz")


@dataclass(frozen=True, eq=False)
class Artifact:
    """A loaded `.cxa`: the checked program, its options, the limits its kernels were planned
    for, the saved OpenCL source, and the weights file (arrays and metadata)."""

    path: str
    program: CheckedProgram
    options: Any  # cortexlang.passes.pipeline.Options
    limits: Any   # cortexlang.passes.plan_kernels.DeviceLimits
    kernel_source: str
    weights: WeightsFile
    manifest: dict[str, Any]


def is_artifact_path(path: str | os.PathLike[str]) -> bool:
    """Whether a path names an artifact (by its extension, as the CLI decides)."""
    return os.fspath(path).endswith(EXTENSION)


def write_artifact(path: str | os.PathLike[str], program: CheckedProgram, *,
                   overrides: Mapping[str, int], options: Any, limits: Any, kernel_source: str,
                   weights: Mapping[str, np.ndarray], vocab: Vocab | None,
                   init_seed: int | None) -> dict[str, Any]:
    """Write the artifact atomically; return its manifest. E0570 when unwritable."""
    buffer = io.BytesIO()
    meta = make_meta(model=program.name, vocab=vocab, init_seed=init_seed)
    arrays = {name: np.asarray(value, dtype=np.float32) for name, value in weights.items()}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    members = {"program.cx": program.source.encode("utf-8"),
               "kernels.cl": kernel_source.encode("utf-8"),
               "weights.npz": buffer.getvalue()}
    manifest = {
        "format": FORMAT, "version": VERSION, "cortexlang": __version__,
        "model": program.name, "source_path": program.path,
        "overrides": dict(overrides), "sizes": dict(program.sizes),
        "options": {field.name: getattr(options, field.name) for field in fields(options)},
        "device_limits": dict(limits.items()),
        "vocabulary": None if vocab is None else len(vocab),
        "init_seed": init_seed,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    with atomic.atomic_open(path, "wb") as file:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
            for name, data in members.items():
                archive.writestr(name, data)
    return manifest


def read_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load and verify an artifact (module docstring). Raises `InputError` E0575/E0576, and
    the checker's errors if the saved program no longer checks."""
    from cortexlang.frontend.check import check_source
    from cortexlang.inputs.weightfiles import parse_meta
    from cortexlang.passes.pipeline import Options
    from cortexlang.passes.plan_kernels import DeviceLimits

    path_text = os.fspath(path)
    try:
        with zipfile.ZipFile(path_text) as archive:
            names = set(archive.namelist())
            if "manifest.json" not in names:
                raise _damaged(path_text, "it has no manifest.json")
            manifest = json.loads(archive.read("manifest.json"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise _damaged(path_text, f"its manifest is not a {FORMAT} manifest")
            version = manifest.get("version")
            if not isinstance(version, int):
                raise _damaged(path_text, "its manifest has no version")
            if version > VERSION:
                raise input_error("E0576", f"{path_text} is a version {version} artifact; this "
                                  f"cortexlang ({__version__}) reads version {VERSION}",
                                  hint="upgrade cortexlang, or compile the model again")
            missing = [name for name in MEMBERS if name not in names]
            if missing:
                raise _damaged(path_text, f"it has no {', '.join(missing)}")
            data = {name: archive.read(name) for name in MEMBERS}
    except FileNotFoundError:
        raise input_error("E0575", f"artifact {path_text} does not exist",
                          hint="write one with cortexlang compile MODEL.cx --weights W "
                               "-o MODEL.cxa") from None
    except CortexError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as error:
        raise _damaged(path_text, f"it is not a readable zip archive ({error})") from None
    sums = manifest.get("sha256", {})
    for name, content in data.items():
        if not isinstance(sums, dict) or sums.get(name) != hashlib.sha256(content).hexdigest():
            raise _damaged(path_text, f"the checksum of {name} does not match its manifest")
    known = {field.name for field in fields(Options)}
    saved_options = manifest.get("options")
    unknown = sorted(set(saved_options) - known) if isinstance(saved_options, dict) else []
    if unknown:
        raise _damaged(path_text, f"it was written by cortexlang {manifest.get('cortexlang')}, "
                       f"whose compiler options ({', '.join(unknown)}) this one does not have")
    try:
        options = Options(**manifest["options"])
        saved = {str(key): int(value) for key, value in manifest["device_limits"].items()}
        limits = DeviceLimits(max_work_group_size=saved["max_work_group_size"],
                              local_mem_size=saved["local_mem_size"],
                              is_gpu=bool(saved["is_gpu"]),
                              preferred_vector_width=saved["preferred_vector_width"],
                              compute_units=saved["compute_units"])
        overrides = {str(key): int(value) for key, value in manifest["overrides"].items()}
    except (KeyError, TypeError, ValueError) as error:
        raise _damaged(path_text, f"its manifest is malformed ({error})") from None
    source_path = f"{path_text}:program.cx"
    program = check_source(data["program.cx"].decode("utf-8"), source_path, overrides)
    if dict(program.sizes) != manifest.get("sizes"):
        raise _damaged(path_text, "its program does not check to the sizes its manifest saved")
    try:
        with np.load(io.BytesIO(data["weights.npz"]), allow_pickle=False) as loaded:
            arrays = {name: loaded[name] for name in loaded.files}
    except Exception as error:  # numpy reports a bad member with many exception types
        raise _damaged(path_text, f"its weights cannot be read ({error})") from error
    meta_bytes = arrays.pop(META_KEY, None)
    meta = parse_meta(path_text, None if meta_bytes is None
                       else meta_bytes.tobytes().decode("utf-8", errors="replace"))
    weights = WeightsFile(path_text, "cxa", arrays, meta)
    return Artifact(path_text, program, options, limits, data["kernels.cl"].decode("utf-8"),
                    weights, manifest)


def _damaged(path_text: str, reason: str) -> InputError:
    return input_error("E0575", f"{path_text} is not a usable cortexlang artifact: {reason}",
                       hint="write it again with cortexlang compile MODEL.cx --weights W "
                            "-o MODEL.cxa")

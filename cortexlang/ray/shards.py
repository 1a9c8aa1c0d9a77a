"""A job's outputs on disk: shards keyed by structure id, a manifest, and reading them back.

A shard is an `.npz` archive in the single-process run's layout (`outputs/NAME`,
`states/NAME`, `node_offset`) for the structures listed in its `ids` array, plus `selectors`
(a JSON object: output name -> "root" or "all"). Its name is a hash of its ids, so a retried
task writes the same name again; it is written atomically (`cortexlang.atomic`), so a killed
writer leaves no half shard.

The manifest (`manifest.json`, written last, atomically) is the job's commit record: the files
in order, every shard and the ids it holds, and every failed structure with its code and
located error. `finish_directory` removes any shard the manifest does not list (the leftovers
of a task attempt that died before Ray retried it), so every structure is in exactly one
shard. `read_outputs(DIR)` returns the arrays of the single-process run on the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cortexlang import atomic
from cortexlang.errors import Diagnostic, InputError
from cortexlang.ray.corpus import split_id
from cortexlang.ray.model import StructureResult

MANIFEST = "manifest.json"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".npz"


def shard_name(ids: Sequence[str]) -> str:
    """The file name of the shard holding `ids`, the same for the same ids."""
    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:20]
    return f"{SHARD_PREFIX}{digest}{SHARD_SUFFIX}"


def shard_arrays(results: Sequence[StructureResult],
                 selectors: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The archive of successful results, in order: root outputs stacked, node rows joined."""
    done = [result for result in results if result.arrays is not None]
    if not done:
        raise ValueError("a shard needs at least one successful result")
    first = done[0].arrays
    assert first is not None
    arrays: dict[str, np.ndarray] = {"ids": np.array([result.id for result in done])}
    for key in first:
        pieces = [result.arrays[key] for result in done if result.arrays is not None]
        arrays[key] = np.stack(pieces) if _is_root(key, selectors) else np.concatenate(pieces)
    counts = np.array([result.nodes for result in done], dtype=np.int64)
    arrays["node_offset"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    arrays["selectors"] = np.array(json.dumps(dict(selectors), sort_keys=True))
    return arrays


def write_shard(directory: str, results: Sequence[StructureResult],
                selectors: Mapping[str, str]) -> str | None:
    """Write the successful results as one shard (atomically); its name, or None if none."""
    done = [result for result in results if result.ok]
    if not done:
        return None
    name = shard_name([result.id for result in done])
    atomic.save_npz(os.path.join(directory, name), shard_arrays(done, selectors))
    return name


@dataclass(frozen=True)
class Failure:
    """A structure that did not run: its id, error code and rendered, located error."""

    id: str
    code: str
    error: str


@dataclass(frozen=True)
class Manifest:
    """What a finished job wrote: `files` in order, `shards` (name -> ids), `failures`."""

    files: tuple[str, ...]
    shards: dict[str, tuple[str, ...]]
    failures: tuple[Failure, ...]

    @property
    def structures(self) -> int:
        return sum(len(ids) for ids in self.shards.values())

    def to_json(self) -> str:
        return json.dumps({
            "files": list(self.files),
            "structures": self.structures,
            "shards": {name: list(ids) for name, ids in sorted(self.shards.items())},
            "failures": [vars(failure) for failure in self.failures],
        }, indent=1)

    @staticmethod
    def from_json(text: str) -> Manifest:
        data: dict[str, Any] = json.loads(text)
        return Manifest(tuple(data["files"]),
                        {name: tuple(ids) for name, ids in data["shards"].items()},
                        tuple(Failure(**failure) for failure in data["failures"]))


def finish_directory(directory: str, manifest: Manifest) -> list[str]:
    """Remove shards the manifest does not list, then write the manifest; the removed names.

    Raises `InputError` E0623 when a listed shard is missing or one id is in two shards.
    """
    owners: dict[str, str] = {}
    for name, ids in manifest.shards.items():
        if not os.path.isfile(os.path.join(directory, name)):
            raise _output_error(f"shard {name} of the job is missing from {directory}")
        for identifier in ids:
            if identifier in owners:
                raise _output_error(f"structure {identifier} is in two shards: "
                                    f"{owners[identifier]} and {name}")
            owners[identifier] = name
    removed = [name for name in sorted(os.listdir(directory))
               if name.startswith(SHARD_PREFIX) and name.endswith(SHARD_SUFFIX)
               and name not in manifest.shards]
    for name in removed:
        os.unlink(os.path.join(directory, name))
    atomic.write_text(os.path.join(directory, MANIFEST), manifest.to_json())
    return removed


def read_manifest(directory: str) -> Manifest:
    """The manifest of a finished job's directory (`InputError` E0623 when there is none)."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as file:
            return Manifest.from_json(file.read())
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _output_error(f"{path} cannot be read ({error}): is {directory} the --out of a "
                            "finished job?") from None


def read_outputs(directory: str) -> dict[str, np.ndarray]:
    """Every shard of a finished job joined in file and line order: the keys and arrays that
    `cortexlang run --out OUT.npz` saves for the same inputs (failed structures left out)."""
    manifest = read_manifest(directory)
    rank = {path: position for position, path in enumerate(manifest.files)}
    pieces: list[tuple[tuple[int, int], dict[str, np.ndarray]]] = []
    selectors: dict[str, str] = {}
    for name in sorted(manifest.shards):
        with np.load(os.path.join(directory, name)) as shard:
            arrays = {key: shard[key] for key in shard.files}
        selectors = json.loads(str(arrays.pop("selectors")))
        offsets = arrays.pop("node_offset")
        for index, identifier in enumerate(arrays.pop("ids")):
            path, line = split_id(str(identifier))
            start, stop = int(offsets[index]), int(offsets[index + 1])
            piece = {key: values[index] if _is_root(key, selectors) else values[start:stop]
                     for key, values in arrays.items()}
            piece["nodes"] = np.asarray(stop - start)
            pieces.append(((rank[path], line), piece))
    pieces.sort(key=lambda item: item[0])
    if not pieces:
        return {}
    ordered = [piece for _, piece in pieces]
    merged = {key: (np.stack if _is_root(key, selectors) else np.concatenate)(
                  [piece[key] for piece in ordered])
              for key in ordered[0] if key != "nodes"}
    counts = np.array([int(piece["nodes"]) for piece in ordered], dtype=np.int64)
    merged["node_offset"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return merged


def _is_root(key: str, selectors: Mapping[str, str]) -> bool:
    return key.startswith("outputs/") and selectors.get(key.removeprefix("outputs/"),
                                                        "root") == "root"


def _output_error(message: str) -> InputError:
    return InputError(Diagnostic("E0623", message, None, "",
                                 "run the job again into an empty directory"))

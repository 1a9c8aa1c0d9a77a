"""The batch job on Ray Data: read the corpus, run it on a pool of actors, write shards.

    chunks ──read_trees──> rows {id, path, line, text, format}
           ──map_batches(TreePredictor, compute=ActorPoolStrategy(size=actors))──>
              {id, code, error, nodes, arrays}
           ──map_batches(ShardWriter)──> {id, shard, code, error}  ──> the driver: manifest

`TreePredictor` is a callable class: Ray builds one per actor, and its constructor is where
the model is checked, compiled and its weights bound (`LoadedModel`); each Ray batch is then
one compiled run. Each actor asks for `cpus_per_actor` CPUs and its PoCL device is limited to
as many threads (`POCL_MAX_PTHREAD_COUNT` for PoCL 3, `POCL_CPU_MAX_CU_COUNT` for later
versions, in the actor's `runtime_env`), so that actors share the cores instead of each
starting a thread per core.

Reliability: Ray Data gives the actors of an actor pool `max_restarts=-1` and
`max_task_retries=-1` itself (and deprecates passing them through `map_batches`): an actor that
dies is restarted and its tasks are retried (a constructor that fails is a user error and is
not retried). Ray keeps the output of the successful attempt only, and
the shard names are a hash of their ids, so the manifest built from the job's output lists
every structure exactly once, and `finish_directory` removes what a dead attempt left.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cortexlang.errors import CortexError, Diagnostic, EnvironmentProblem
from cortexlang.ray import require_ray
from cortexlang.ray.corpus import Chunk, Row, first_tokens, read_chunk, split_id
from cortexlang.ray.model import LoadedModel, ModelSpec, StructureResult, selectors_of
from cortexlang.ray.shards import Failure, Manifest, finish_directory, write_shard

Batch = dict[str, np.ndarray]
DEFAULT_BATCH_SIZE = 256


def pocl_thread_limit(threads: int) -> dict[str, str]:
    """The environment that limits a PoCL CPU device to `threads` threads."""
    return {"POCL_MAX_PTHREAD_COUNT": str(threads), "POCL_CPU_MAX_CU_COUNT": str(threads)}


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Start or join a cluster: `address` None or "local" starts one on this machine (with
    `num_cpus` CPUs), anything else ("auto", "HOST:PORT", "ray://HOST:PORT") joins one.
    When this process is already connected, that cluster is used. True when this call
    started or joined one (the caller then shuts it down), False when one was connected.

    Raises `EnvironmentProblem` E0620 without Ray, E0621 when the cluster cannot be reached.
    """
    require_ray()
    import logging

    import ray
    import ray.data

    if ray.is_initialized():
        return False
    local = address in (None, "local")
    try:
        ray.init(address="local" if local else address, num_cpus=num_cpus if local else None,
                 include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EnvironmentProblem(Diagnostic(
            "E0621", f"cannot reach the Ray cluster at {address}: {error}", None, "",
            "start one with `ray start --head`, or leave ADDRESS out to start a local "
            "cluster for this run")) from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return True


def read_trees(chunks: Sequence[Chunk], readers: int = 2) -> Any:
    """A Ray Dataset of rows {id, path, line, text, format}, one per structure, each chunk
    read (one seek, its lines) by the task that holds it, at most `readers` at a time."""
    require_ray()
    import ray.data

    items = [asdict(chunk) for chunk in chunks]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    # Reading is light next to the model: it asks for no CPU, so that actors holding every
    # CPU of the cluster cannot starve the reads that feed them, and runs in a few tasks at
    # a time, so that it does not start a worker process per chunk.
    return dataset.flat_map(_chunk_rows, num_cpus=0,
                            compute=ray.data.TaskPoolStrategy(size=readers))


def _chunk_rows(item: dict[str, Any]) -> list[dict[str, Any]]:
    chunk = Chunk(str(item["path"]), str(item["format"]), int(item["offset"]),
                  int(item["first_line"]), int(item["lines"]), int(item["rows"]))
    return [{"id": row.id, "path": row.path, "line": row.line, "text": row.text,
             "format": row.format} for row in read_chunk(chunk)]


def corpus_tokens(chunks: Sequence[Chunk], max_children: int | None) -> list[list[str]]:
    """Per chunk, in order, its distinct tokens by first appearance (on the cluster)."""
    require_ray()
    import ray

    @ray.remote
    def tokens_of(chunk: Chunk) -> list[str]:
        return first_tokens(chunk, max_children)

    return list(ray.get([tokens_of.remote(chunk) for chunk in chunks]))


def rows_of(batch: Batch) -> list[Row]:
    """The `Row`s of a batch of rows from `read_trees`."""
    return [Row(str(path), int(line), str(text), str(form))
            for path, line, text, form in zip(batch["path"], batch["line"], batch["text"],
                                              batch["format"], strict=True)]


def results_to_batch(results: Sequence[StructureResult]) -> Batch:
    """Columns of results: id, code, error, nodes, and `arrays`, each row's arrays pickled
    (b"" where the row failed; only the job's own predictor writes them, for its writer).

    One binary column, not a column per array: Arrow cannot hold a column whose rows are
    tensors in some blocks and empty in others, and node rows differ in length anyway."""
    return {
        "id": np.array([result.id for result in results], dtype=object),
        "code": np.array([result.code for result in results], dtype=object),
        "error": np.array([result.error for result in results], dtype=object),
        "nodes": np.array([result.nodes for result in results], dtype=np.int64),
        "arrays": np.array([b"" if result.arrays is None
                            else pickle.dumps(result.arrays, protocol=pickle.HIGHEST_PROTOCOL)
                            for result in results], dtype=object),
    }


def batch_to_results(batch: Batch) -> list[StructureResult]:
    """The inverse of `results_to_batch`."""
    results = []
    for position, identifier in enumerate(batch["id"]):
        data = bytes(batch["arrays"][position])
        arrays = pickle.loads(data) if data else None  # noqa: S301 (the job's own rows)
        results.append(StructureResult(str(identifier), arrays, int(batch["nodes"][position]),
                                       str(batch["code"][position]),
                                       str(batch["error"][position])))
    return results


class TreePredictor:
    """The callable class of `map_batches`: one `LoadedModel` per actor (compiled and bound
    in the constructor), each batch of rows one compiled run."""

    def __init__(self, spec: ModelSpec) -> None:
        self.model = LoadedModel(spec)

    def __call__(self, batch: Batch) -> Batch:
        return results_to_batch(self.model.run_rows(rows_of(batch)))


class ShardWriter:
    """The writing step: each batch of results becomes one shard in `directory`; returns
    the manifest rows {id, shard, code, error} (shard "" where the structure failed)."""

    def __init__(self, directory: str, selectors: dict[str, str]) -> None:
        self.directory = directory
        self.selectors = selectors

    def __call__(self, batch: Batch) -> Batch:
        results = batch_to_results(batch)
        name = write_shard(self.directory, results, self.selectors) or ""
        return {"id": batch["id"], "code": batch["code"], "error": batch["error"],
                "shard": np.array([name if result.ok else "" for result in results],
                                  dtype=object)}


@dataclass(frozen=True)
class JobReport:
    """What a job did: structures run and failed, shards, leftovers removed, seconds."""

    manifest: Manifest
    removed: tuple[str, ...]
    seconds: float

    @property
    def failures(self) -> tuple[Failure, ...]:
        return self.manifest.failures


def run_job(spec: ModelSpec, chunks: Sequence[Chunk], files: Sequence[str], directory: str, *,
            actors: int = 1, cpus_per_actor: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
            predictor: type[TreePredictor] = TreePredictor,
            progress: Callable[[int], None] | None = None) -> JobReport:
    """Run `spec` on the rows of `chunks` on `actors` actors, shards into `directory`.

    The cluster must be connected (`connect`). `progress(n)` is called as n more structures
    are done. `predictor` may be a subclass of `TreePredictor` (tests use one that dies).
    """
    require_ray()
    import ray.data

    started = time.perf_counter()
    os.makedirs(directory, exist_ok=True)
    selectors = selectors_of(spec)
    predicted = read_trees(chunks, readers=min(actors, 4)).map_batches(
        predictor, fn_constructor_args=(spec,), batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus_per_actor,
        runtime_env={"env_vars": pocl_thread_limit(cpus_per_actor)})
    written = predicted.map_batches(ShardWriter, fn_constructor_args=(directory, selectors),
                                    batch_size=batch_size, batch_format="numpy",
                                    compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0)
    shards: dict[str, list[str]] = {}
    failures: list[Failure] = []
    try:
        for batch in written.iter_batches(batch_format="numpy", batch_size=None):
            for identifier, shard, code, error in zip(batch["id"], batch["shard"],
                                                      batch["code"], batch["error"],
                                                      strict=True):
                if shard:
                    shards.setdefault(str(shard), []).append(str(identifier))
                else:
                    failures.append(Failure(str(identifier), str(code), str(error)))
            if progress is not None:
                progress(len(batch["id"]))
    except Exception as error:
        # A user error raised inside a task (an unreadable file, a model that does not
        # build) reaches the driver wrapped by Ray: raise it as itself, located as it was.
        cause = user_error_inside(error)
        if cause is None:
            raise
        raise cause from None
    failures.sort(key=lambda failure: _order(files, failure.id))
    manifest = Manifest(tuple(files), {name: tuple(ids) for name, ids in shards.items()},
                        tuple(failures))
    removed = finish_directory(directory, manifest)
    return JobReport(manifest, tuple(removed), time.perf_counter() - started)


def user_error_inside(error: BaseException) -> CortexError | None:
    """The `CortexError` that a Ray exception wraps (`cause`, `__cause__`), if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, CortexError):
            return current
        seen.add(id(current))
        inner = getattr(current, "cause", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return None


def _order(files: Sequence[str], identifier: str) -> tuple[int, int]:
    path, line = split_id(identifier)
    return (files.index(path) if path in files else len(files), line)

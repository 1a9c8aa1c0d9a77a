"""`cortexlang run MODEL.cx --trees 'corpus/*.ptb' --ray [ADDRESS] --out DIR`.

The options live here, so that `commands/run.py` only adds them and hands over:

    --ray [ADDRESS]      run on a Ray cluster: none given starts one on this machine, "auto"
                         joins the one `ray start` runs here, HOST:PORT or ray://HOST:PORT
                         another
    --actors N           model actors (default: the cluster's CPUs / --cpus-per-actor)
    --cpus-per-actor K   CPUs (and PoCL threads) per actor (default 1)

The model, sizes, weights, vocabulary and backend options mean what they mean without
--ray, and the shards in DIR hold the same arrays as `--out OUT.npz` of the single-process
run (`cortexlang.ray.shards.read_outputs`). The exit code is 1 when some structures failed:
every other structure is still written, and each failure is printed with its id and error.
Nothing here imports Ray until the job runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cortexlang.backends import DEFAULT_BACKEND, BackendOptions
from cortexlang.commands.common import (
    compiler_settings,
    load_model,
    positive_integer,
    stderr_console,
    stdout_console,
    vocabulary_capacity,
)
from cortexlang.commands.loading import load_weights_for, vocab_of
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs.provenance import choose_vocab
from cortexlang.inputs.vocab import Vocab
from cortexlang.ray.corpus import chunk_files, expand_patterns, merge_tokens
from cortexlang.ray.model import ModelSpec
from cortexlang.ray.shards import MANIFEST, Failure

SHOWN_FAILURES = 10


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """--ray [ADDRESS], --actors N, --cpus-per-actor K."""
    group = parser.add_argument_group("cluster (pip install 'cortexlang[ray]')")
    group.add_argument("--ray", metavar="ADDRESS", nargs="?", const="local", default=None,
                       help="run on a Ray cluster, shards into --out DIR: no ADDRESS starts "
                            "one here, 'auto' joins `ray start`'s, or HOST:PORT; --trees "
                            "may then be a quoted pattern ('corpus/*.ptb')")
    group.add_argument("--actors", metavar="N", type=positive_integer,
                       help="with --ray: model actors (default: CPUs / --cpus-per-actor)")
    group.add_argument("--cpus-per-actor", metavar="K", type=positive_integer, default=1,
                       help="with --ray: CPUs and PoCL threads of each actor (default 1)")


def _usage(message: str, hint: str) -> UsageError:
    return UsageError(Diagnostic("E0011", message, None, "", hint))


def model_spec(args: argparse.Namespace, vocab: Vocab) -> ModelSpec:
    """The spec of the command line's model, weights, backend and options."""
    program = load_model(args.model, args)
    backend = args.backend or ("interp" if args.float64 else DEFAULT_BACKEND)
    settings = tuple(args.settings)
    if backend == "compiled":
        settings = compiler_settings(args) + settings
        # run's --verbose and --vector-width (serve has neither), as run reads them.
        if getattr(args, "verbose", False):
            settings += (("verbose", "on"),)
        if getattr(args, "vector_width", None) is not None:
            settings += (("vector_width", str(args.vector_width)),)
    elif (compiler_settings(args) or getattr(args, "verbose", False)
          or getattr(args, "vector_width", None) is not None):
        raise _usage("-O, --disable, --no-cache, --node-tile, --verbose and --vector-width "
                     "apply to the compiled backend", "drop them, or use --backend compiled")
    if backend == "compiled" and args.float64:
        raise _usage("the compiled backend computes in float32",
                     "use --backend interp for float64")
    options = BackendOptions(dtype="float64" if args.float64 else "float32",
                             device=args.device, settings=settings)
    choice = load_weights_for(args, program, np.dtype(options.dtype))
    # The single-process run's rules (cortexlang.inputs.provenance): a vocabulary saved with
    # the weights wins and must match --vocab; trained weights need one (E0524, E0525).
    reads_tokens = any(item.kind == "token" for item in program.inputs)
    given = vocab if args.vocab is not None else None
    chosen = choose_vocab(choice, given, args.vocab, reads_tokens=reads_tokens,
                          from_inputs=True).vocab
    vocab = chosen if chosen is not None else vocab
    return ModelSpec(source=program.source, path=program.path, weights=choice.weights,
                     vocab=vocab.tokens, unknown_id=vocab.unknown_id, sizes=tuple(args.sizes),
                     backend=backend,
                     options=options,
                     allow_nonfinite=bool(getattr(args, "allow_nonfinite", False)))


def run_on_ray(args: argparse.Namespace) -> int:
    """The `run --ray` job; 0 when every structure ran, 1 when some failed (all reported)."""
    started = time.perf_counter()
    if args.trees is None or args.out is None:
        raise _usage("--ray needs --trees FILES and --out DIR",
                     "give the input files (a quoted pattern) and a directory for the shards")
    if args.limit is not None:
        raise _usage("--limit does not apply with --ray", "pass fewer files instead")
    from cortexlang.ray.job import connect, corpus_tokens, run_job

    program = load_model(args.model, args)
    files = expand_patterns([args.trees])
    chunks = chunk_files(files, args.format)
    total = sum(chunk.rows for chunk in chunks)
    connected = connect(args.ray)
    try:
        import ray

        given = vocab_of(args)
        if given is not None:
            vocab = given
        else:
            vocab = merge_tokens(corpus_tokens(chunks, program.structure.max_children))
        capacity = vocabulary_capacity(program)
        if capacity is not None and any(item.kind == "token" for item in program.inputs):
            vocab.check_fits(capacity, source=args.vocab or args.trees)
        spec = model_spec(args, vocab)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = args.actors or max(1, cpus // args.cpus_per_actor)
        with _progress(total, not args.json) as progress:
            task = progress.add_task(f"running on {actors} actors", total=total)
            report = run_job(spec, chunks, files, args.out, actors=actors,
                             cpus_per_actor=args.cpus_per_actor, batch_size=args.chunk,
                             progress=lambda count: progress.advance(task, count))
    finally:
        if connected:
            import ray

            ray.shutdown()
    manifest = report.manifest
    summary = {"model": program.name, "files": len(files), "structures": total,
               "done": manifest.structures, "failed": len(manifest.failures),
               "shards": len(manifest.shards), "actors": actors,
               "cpus_per_actor": args.cpus_per_actor, "out": args.out,
               "seconds": {"job": report.seconds, "total": time.perf_counter() - started},
               "failures": [{"id": failure.id, "code": failure.code}
                            for failure in manifest.failures]}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        rate = manifest.structures / report.seconds if report.seconds else 0.0
        console = stdout_console()
        console.print(f"ran {manifest.structures} of {total} structures from {len(files)} "
                      f"files on {actors} actors ({args.cpus_per_actor} CPU each) in "
                      f"{report.seconds:.2f} s ({rate:.0f} structures/s)", markup=False)
        console.print(f"saved {len(manifest.shards)} shards and manifest.json in {args.out}",
                      markup=False)
    _print_failures(report.failures, args.out)
    return 1 if manifest.failures else 0


def _progress(total: int, visible: bool) -> Progress:
    console = stderr_console()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True,
                    disable=not (visible and console.is_terminal))


def _print_failures(failures: Sequence[Failure], directory: str) -> None:
    """The first failures with their located errors, on stderr as plain text."""
    if not failures:
        return
    for failure in failures[:SHOWN_FAILURES]:
        print(f"{failure.id} failed:\n{failure.error}", file=sys.stderr)
    more = len(failures) - SHOWN_FAILURES
    tail = f" ({more} more not shown)" if more > 0 else ""
    print(f"{len(failures)} structures failed{tail}; every failure is listed in "
          f"{os.path.join(directory, MANIFEST)}", file=sys.stderr)

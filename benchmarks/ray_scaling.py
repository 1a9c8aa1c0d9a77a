"""Beyond one process, measured: the Ray job on 1 and 2 actors, and Serve batched and not.

    python -m benchmarks.ray_scaling [--trees 10000] [--hidden 64] [--requests 400]

One local cluster of 2 CPUs serves both parts (started once, `address="local"`).

job:   `--trees` SST-shaped trees (cortexlang.inputs.generators) written as PTB files, scored by
       the TreeLSTM example with `run_job` on 1 actor, then on 2 (1 CPU and 1 PoCL thread
       each), batches of 256, then on 1 and 2 again; a first small run fills the kernel cache.
       Seconds are the job's wall time, actor start and compile included; "steady" is the
       throughput after the first batch reached the driver (every actor started by then);
       the ratios are 2 actors' best throughput over 1 actor's.
serve: `--requests` POSTs of one tree each from `--clients` threads on 127.0.0.1 (each request
       with a 60 s timeout), to the deployment with batches of up to 32 trees (5 ms wait), then
       with `max_batch_size=1` (every request its own run). Latencies are per request, client
       side; throughput is requests over the wall time of the whole load.

The machine's load average is printed with the results: on a shared machine, read the
figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from cortexlang.backends import BackendOptions
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.ptb import write_ptb
from cortexlang.inputs.weights import init_weights
from cortexlang.ray.corpus import chunk_files, expand_patterns, merge_tokens
from cortexlang.ray.model import ModelSpec

TREELSTM = str(Path(__file__).resolve().parents[1] / "examples" / "treelstm.cx")
VOCABULARY = 5000


def model_spec(hidden: int, vocab: tuple[str, ...]) -> ModelSpec:
    sizes = {"H": hidden, "V": VOCABULARY}
    program = load_program(TREELSTM, sizes)
    return ModelSpec(source=program.source, path=program.path,
                     weights=init_weights(program.params, 0), vocab=vocab,
                     sizes=tuple(sizes.items()), options=BackendOptions())


def write_corpus(directory: Path, count: int, files: int = 4) -> list[str]:
    vocab = generators.pseudo_vocab(VOCABULARY - 1)
    trees = generators.sst_like_trees(count, rng=0, vocab_size=VOCABULARY - 1)
    per_file = -(-count // files)
    for index in range(files):
        write_ptb(trees[index * per_file:(index + 1) * per_file],
                  directory / f"part{index}.ptb", vocab)
    return expand_patterns([str(directory / "*.ptb")])


def measure_job(directory: Path, count: int, hidden: int) -> dict[str, Any]:
    from cortexlang.ray.job import corpus_tokens, run_job

    files = write_corpus(directory, count)
    chunks = chunk_files(files)
    vocab = merge_tokens(corpus_tokens(chunks, 2))
    spec = model_spec(hidden, vocab.tokens)
    run_job(spec, chunks[:1], files, str(directory / "warmup"), actors=1)
    results: dict[str, Any] = {"trees": count, "hidden": hidden, "batch": 256, "runs": []}
    # 1, 2, 1, 2 actors: each count is measured early and late in the load of a shared machine.
    for attempt, actors in enumerate((1, 2, 1, 2)):
        done: list[tuple[float, int]] = []
        started = time.perf_counter()
        report = run_job(spec, chunks, files, str(directory / f"out{attempt}"), actors=actors,
                         progress=lambda rows, done=done: done.append((time.perf_counter(),
                                                                       rows)))
        assert report.manifest.structures == count and not report.failures
        # After the first batch reaches the driver every actor has started and compiled.
        first_time, first_rows = done[0]
        steady = (count - first_rows) / (done[-1][0] - first_time)
        results["runs"].append({"actors": actors, "seconds": report.seconds,
                                "trees_per_second": count / report.seconds,
                                "first_batch_seconds": first_time - started,
                                "steady_trees_per_second": steady})
    for key in ("trees_per_second", "steady_trees_per_second"):
        best = {actors: max(run[key] for run in results["runs"] if run["actors"] == actors)
                for actors in (1, 2)}
        results[f"ratio_{key}"] = best[2] / best[1]
    return results


def load_test(port: int, lines: list[str], requests: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            body = json.dumps({"tree": lines[index % len(lines)]}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body,
                                             method="POST")
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    answer.read()
            except OSError as error:
                with lock:
                    errors.append(str(error))
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    milliseconds = np.array(latencies) * 1e3
    return {"requests": requests, "clients": clients, "errors": len(errors),
            "p50_ms": float(np.percentile(milliseconds, 50)),
            "p99_ms": float(np.percentile(milliseconds, 99)),
            "requests_per_second": len(latencies) / wall}


def measure_serve(directory: Path, hidden: int, requests: int, clients: int) -> dict[str, Any]:
    from ray import serve

    from cortexlang.ray.serving import start_server

    files = write_corpus(directory, 500, files=1)
    lines = [line for line in Path(files[0]).read_text().split("\n") if line]
    vocab = merge_tokens([[token for line in lines for token in line.split()
                           if "(" not in token and ")" not in token]])
    spec = model_spec(hidden, vocab.tokens)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    results: dict[str, Any] = {"hidden": hidden}
    for label, batch in (("batched", 32), ("unbatched", 1)):
        start_server(spec, port=port, name=label, max_batch_size=batch,
                     batch_wait_timeout_s=0.005)
        load_test(port, lines, 2 * clients, clients)  # warm-up
        results[label] = {"max_batch_size": batch,
                          **load_test(port, lines, requests, clients)}
        serve.delete(label)
    serve.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=64, help="H of the job's model")
    parser.add_argument("--serve-hidden", type=int, default=256, help="H of the served model")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skip-job", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    args = parser.parse_args()
    import ray

    from cortexlang.ray.job import connect

    connect("local", num_cpus=2)
    results: dict[str, Any] = {"load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="cortexlang-ray-bench-") as scratch:
        if not args.skip_job:
            (Path(scratch) / "job").mkdir()
            results["job"] = measure_job(Path(scratch) / "job", args.trees, args.hidden)
        if not args.skip_serve:
            (Path(scratch) / "serve").mkdir()
            results["serve"] = measure_serve(Path(scratch) / "serve", args.serve_hidden,
                                             args.requests, args.clients)
    results["load_average_after"] = os.getloadavg()
    ray.shutdown()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

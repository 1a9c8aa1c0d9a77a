"""Two checkouts of cortexlang timed against each other in one run: is a change slower?

    python -m benchmarks.compare_checkouts --before ../old-checkout [--after .]
        [--models treelstm treegru] [--hidden 256 512] [--batch 1 10] [--rounds 4]

Each checkout is timed by its own virtual environment's Python (`CHECKOUT/.venv/bin/python`,
made by `make setup` there), in a fresh process per round, and the rounds alternate
before, after, before, after... so that a change in the machine's load falls on both sides.
A round compiles each cell's model with the default options, binds the same seeded weights,
linearizes the same SST test trees (or the bundled sample), runs one untimed pass and then
times `run_linearized` over every batch `--passes` times. Only the public pieces both sides
share are used: `bench.suite.load_model`, `init_weights`, `CompiledModel.linearize` and
`run_linearized`.

Printed per cell: the median, p10 and p90 of all samples of each side, the ratio of the
medians (after / before: below 1 is faster), and a verdict: "slower" only when the ratio is
above 1.05 and the p10-p90 ranges of the round medians do not overlap, "faster" likewise,
otherwise "same within noise".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

MARGIN = 0.05


def _worker(args: argparse.Namespace) -> None:
    """Runs inside one checkout's environment: time every cell, print JSON on stdout."""
    import time

    from cortexlang.bench import suite
    from cortexlang.inputs.load import load_structures
    from cortexlang.inputs.weights import init_weights
    from cortexlang.passes.pipeline import Options
    from cortexlang.runtime.devices import select_device

    device = select_device(None)
    source = Path(args.trees)
    trees = list(load_structures(source).structures[:args.trees_used])
    results: dict[str, list[float]] = {}
    for model in args.models:
        for hidden in args.hidden:
            program = suite.load_model(model, hidden)
            weights = init_weights(program.params, seed=0)
            compiled = suite._compiled(program, weights, device, Options())
            for batch in args.batch:
                batches = suite.model_batches(model, batch, trees, program, args.batches)
                linearized = [compiled.linearize(b) for b in batches]
                for item in linearized:
                    compiled.run_linearized(item)
                samples: list[float] = []
                for _ in range(args.passes):
                    for item in linearized:
                        started = time.perf_counter_ns()
                        compiled.run_linearized(item)
                        samples.append((time.perf_counter_ns() - started) / 1e6)
                results[f"{model} H={hidden} B={batch}"] = samples
    json.dump(results, sys.stdout)


def _python_of(checkout: Path) -> Path:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        sys.exit(f"error: {python} does not exist: run `make setup` in {checkout} first")
    return python


def _round(checkout: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    command = [str(_python_of(checkout)), str(Path(__file__).resolve()), "--worker",
               "--trees", str(args.trees), "--trees-used", str(args.trees_used),
               "--batches", str(args.batches), "--passes", str(args.passes),
               "--models", *args.models, "--hidden", *map(str, args.hidden),
               "--batch", *map(str, args.batch)]
    env = dict(os.environ, PYTHONPATH="")
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"error: the round in {checkout} failed:\n{done.stderr[-4000:]}")
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _verdict(before: list[list[float]], after: list[list[float]]) -> tuple[float, str]:
    b_all, a_all = np.concatenate(before), np.concatenate(after)
    ratio = float(np.median(a_all) / np.median(b_all))
    b_rounds = [float(np.median(r)) for r in before]
    a_rounds = [float(np.median(r)) for r in after]
    if ratio > 1 + MARGIN and min(a_rounds) > max(b_rounds):
        return ratio, "slower"
    if ratio < 1 - MARGIN and max(a_rounds) < min(b_rounds):
        return ratio, "faster"
    return ratio, "same within noise"


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent.parent
    shared = here.parent / "shared" / "data" / "sst" / "test.txt"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path)
    parser.add_argument("--after", type=Path, default=here)
    parser.add_argument("--models", nargs="+", default=["treelstm", "treegru"])
    parser.add_argument("--hidden", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--trees", type=Path,
                        default=shared if shared.exists() else here / "examples" / "data"
                        / "sst_shaped.ptb")
    parser.add_argument("--trees-used", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    if args.before is None:
        parser.error("--before CHECKOUT is required")
    rounds: dict[str, list[dict[str, list[float]]]] = {"before": [], "after": []}
    for number in range(args.rounds):
        for side in ("before", "after"):
            checkout = args.before if side == "before" else args.after
            print(f"round {number + 1}/{args.rounds}: {side} ({checkout})", file=sys.stderr)
            rounds[side].append(_round(checkout.resolve(), args))
    print(f"{'cell':<22} {'before ms (p10-p90)':>24} {'after ms (p10-p90)':>24} "
          f"{'after/before':>12}  verdict")
    report = {}
    for cell in rounds["before"][0]:
        before = [r[cell] for r in rounds["before"]]
        after = [r[cell] for r in rounds["after"]]
        ratio, verdict = _verdict(before, after)
        b, a = np.concatenate(before), np.concatenate(after)
        bp, ap = np.percentile(b, [10, 50, 90]), np.percentile(a, [10, 50, 90])
        print(f"{cell:<22} {bp[1]:>8.3f} ({bp[0]:.3f}-{bp[2]:.3f}) "
              f"{ap[1]:>8.3f} ({ap[0]:.3f}-{ap[2]:.3f}) {ratio:>11.2f}x  {verdict}")
        report[cell] = {"before_ms": bp.tolist(), "after_ms": ap.tolist(), "ratio": ratio,
                        "verdict": verdict, "samples_per_side": int(b.size)}
    if args.json:
        args.json.write_text(json.dumps({"before": str(args.before), "after": str(args.after),
                                         "cells": report}, indent=1))


if __name__ == "__main__":
    main()

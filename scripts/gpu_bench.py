"""Latency of the compiled models on one OpenCL device against PyTorch on a torch device.

Written for a GPU machine (run by scripts/gpu-check): every cell of (model, H, B) times

    cortexlang       `CompiledModel.run_linearized` on batches linearized beforehand
    cortexlang-e2e   `CompiledModel.run` from the structures (linearizing included)
    torch-eager      PyTorch node by node (benchmarks/baselines/torch_eager.py)
    torch-level      PyTorch batched by level (benchmarks/baselines/torch_level.py)

on the same batches and weights; the torch baselines synchronise the GPU before their call
returns, and every cortexlang call reads its outputs back, so each sample is a whole batch.
Each implementation gets a time budget per cell (one warm-up pass over the batches, then
samples until the budget is spent, at least `--min-samples`), so the whole run has a known
length. Every cell also checks that cortexlang's root outputs agree with torch-level's.

    python scripts/gpu_bench.py --device nvidia --torch-device cuda --json out/gpu-bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # the checkout's benchmarks/ package

from cortexlang.bench.config import BenchConfig  # noqa: E402
from cortexlang.bench.inputs import load_model, model_batches, tree_source  # noqa: E402
from cortexlang.inputs.load import load_structures  # noqa: E402
from cortexlang.inputs.weights import init_weights  # noqa: E402
from cortexlang.passes.pipeline import Options, run_pipeline  # noqa: E402
from cortexlang.runtime.devices import select_device  # noqa: E402
from cortexlang.runtime.execute import CompiledModel, device_limits  # noqa: E402

IMPLS = ("cortexlang", "cortexlang-e2e", "torch-eager", "torch-level")


def timed(run: Callable[[Any], object], items: Sequence[Any], budget_s: float,
          min_samples: int) -> list[float]:
    """Milliseconds per call: one untimed pass over `items`, then calls cycling through them
    until `budget_s` is spent and at least `min_samples` were taken."""
    for item in items:
        run(item)
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    index = 0
    while len(samples) < min_samples or time.perf_counter() < deadline:
        item = items[index % len(items)]
        started = time.perf_counter_ns()
        run(item)
        samples.append((time.perf_counter_ns() - started) / 1e6)
        index += 1
        if len(samples) >= 10 * max(min_samples, len(items)) and time.perf_counter() > deadline:
            break
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    p10, median, p90 = np.percentile(np.asarray(samples), [10, 50, 90])
    return {"median_ms": float(median), "p10_ms": float(p10), "p90_ms": float(p90),
            "samples": len(samples)}


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(theirs))), 1e-3)
    return float(np.max(np.abs(ours - theirs))) / scale


def machine(device: Any, torch_device: str) -> dict[str, Any]:
    import pyopencl

    info: dict[str, Any] = {
        "python": platform.python_version(), "numpy": np.__version__,
        "pyopencl": pyopencl.VERSION_TEXT, "host": platform.node(),
        "opencl_device": device.info.device_name, "opencl_driver": device.info.driver_version,
        "opencl_platform": device.info.platform_name,
        "compute_units": device.info.max_compute_units,
        "preferred_vector_width_float": device.info.preferred_vector_width_float}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_device"] = (torch.cuda.get_device_name(0) if torch_device.startswith("cuda")
                                and torch.cuda.is_available() else "cpu")
    except ImportError:
        info["torch"] = None
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", help="OpenCL device spec (default: PYOPENCL_CTX, a GPU)")
    parser.add_argument("--torch-device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--models", nargs="+", default=["treelstm", "treegru", "dagrnn"])
    parser.add_argument("--hidden", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds of timed calls per implementation and cell")
    parser.add_argument("--min-samples", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20, help="different batches per cell")
    parser.add_argument("--trees", help="tree file (default: as `cortexlang bench`)")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)

    from benchmarks.baselines import make_baseline

    if args.torch_device == "cpu":
        try:
            import torch

            # In one process with the OpenCL CPU driver, whose threads spin after each
            # launch, torch's own thread pool loses most of its time slices (measured on two
            # cores: 60 ms instead of 0.3 ms); one torch thread keeps the rehearsal readable.
            torch.set_num_threads(1)
        except ImportError:
            pass

    device = select_device(args.device)
    limits = device_limits(device)
    source = tree_source(BenchConfig(trees=args.trees))
    trees = list(load_structures(source).structures[:200])
    report: dict[str, Any] = {"machine": machine(device, args.torch_device),
                              "inputs": f"{len(trees)} trees of {source}; DAG-RNN 10x10 grids",
                              "limits": repr(limits), "cells": [], "skipped": []}
    print(f"device: {device.info.device_name} ({device.info.platform_name}); torch on "
          f"{report['machine'].get('torch_device')}; {report['inputs']}", flush=True)
    for model_name in args.models:
        for hidden in args.hidden:
            program = load_model(model_name, hidden)
            weights = init_weights(program.params, seed=0)
            started = time.perf_counter()
            result = run_pipeline(program, Options(), limits)
            compiled = CompiledModel(result, device)
            compiled.bind_weights(weights)
            build_s = time.perf_counter() - started
            baselines: dict[str, Any] = {}
            for impl in ("torch-eager", "torch-level"):
                try:
                    baselines[impl] = make_baseline(impl.replace("-", "_"), model_name,
                                                    weights, program.size("H"),
                                                    device=args.torch_device)
                except (ImportError, ValueError, RuntimeError) as error:
                    report["skipped"].append(f"{impl} {model_name} H={hidden}: {error}")
            for batch in args.batch:
                batches = model_batches(model_name, batch, trees, program, args.batches)
                cell: dict[str, Any] = {"model": model_name, "hidden": hidden, "batch": batch,
                                        "strategy": result.kernels.strategy,
                                        "build_s": build_s, "impl": {}}
                linearized = [compiled.linearize(b) for b in batches]
                cell["linearize_ms"] = 1e3 * float(np.median([lin.seconds
                                                              for lin in linearized]))
                runs: dict[str, tuple[Callable[[Any], object], Sequence[Any]]] = {
                    "cortexlang": (partial(compiled.run_linearized, states=False),
                                   linearized),
                    "cortexlang-e2e": (partial(compiled.run, states=False), batches)}
                for impl, baseline in baselines.items():
                    runs[impl] = (baseline.run, [baseline.prepare(b) for b in batches])
                for impl, (run, items) in runs.items():
                    try:
                        cell["impl"][impl] = summary(timed(run, items, args.budget,
                                                           args.min_samples))
                    except Exception as error:  # a failure is a result here, not the end
                        cell["impl"][impl] = {"error": f"{type(error).__name__}: {error}"}
                    if impl == "cortexlang":
                        cell["launches"] = compiled.last_launches
                ours = compiled.run(batches[0], states=False).outputs
                if "torch-level" in baselines:
                    theirs = baselines["torch-level"](batches[0])
                    cell["max_rel_error_vs_torch"] = max(
                        relative_error(ours[name], theirs[name])
                        for name in ours if name in theirs)
                report["cells"].append(cell)
                print(format_row(cell), flush=True)
                write_json(args.json, report)  # after every cell: a timeout keeps the rest
    print_table(report)
    write_json(args.json, report)
    if args.json:
        print(f"wrote {args.json}")
    bad = [c for c in report["cells"] if c.get("max_rel_error_vs_torch", 0.0) > 1e-3
           or any("error" in v for v in c["impl"].values())]
    return 1 if bad else 0


def write_json(path: str | None, report: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2) + "\n")


def _ms(cell: dict[str, Any], impl: str) -> str:
    value = cell["impl"].get(impl)
    if value is None:
        return "-"
    if "error" in value:
        return "FAILED"
    return f"{value['median_ms']:.3f}"


def format_row(cell: dict[str, Any]) -> str:
    level = cell["impl"].get("torch-level", {}).get("median_ms")
    ours = cell["impl"].get("cortexlang", {}).get("median_ms")
    speedup = f"{level / ours:.2f}x" if level and ours else "-"
    error = cell.get("max_rel_error_vs_torch")
    return (f"{cell['model']:9s} {cell['hidden']:4d} {cell['batch']:3d} "
            + " ".join(f"{_ms(cell, impl):>14s}" for impl in IMPLS)
            + f" {speedup:>8s} {cell.get('launches', '-')!s:>8s} "
            + (f"{error:9.1e}" if error is not None else f"{'-':>9s}"))


def print_table(report: dict[str, Any]) -> None:
    print("\nmilliseconds per batch (median); speedup = torch-level / cortexlang")
    print(f"{'model':9s} {'H':>4s} {'B':>3s} " + " ".join(f"{impl:>14s}" for impl in IMPLS)
          + f" {'speedup':>8s} {'launches':>8s} {'rel.err':>9s}")
    for cell in report["cells"]:
        print(format_row(cell))
    for line in report["skipped"]:
        print(f"skipped: {line}")


if __name__ == "__main__":
    sys.exit(main())

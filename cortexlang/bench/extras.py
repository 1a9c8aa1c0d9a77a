"""The benchmark's side measurements: the device's limits, linearizing many trees, compile
times and memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure

if TYPE_CHECKING:
    from cortexlang.bench.config import BenchConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def checkout_on_path() -> None:
    """Make the checkout's `benchmarks/` importable when running from a source checkout."""
    root = Path(__file__).resolve().parents[2]
    if (root / "benchmarks" / "__init__.py").exists() and str(root) not in sys.path:
        sys.path.append(str(root))


def measure_limits(device: Any, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Peak GFLOP/s, bandwidth and launch latency of the device (from benchmarks.machine)."""
    checkout_on_path()
    try:
        from benchmarks.machine import measure_machine
    except ImportError:
        return {"device": device.info.device_name, "note": "machine limits need the source "
                "checkout's benchmarks/ folder"}
    limits = measure_machine(device, quick=quick)
    values = asdict(limits) if hasattr(limits, "__dataclass_fields__") else dict(vars(limits))
    log(f"machine: {values.get('device_name')}: peak {values.get('peak_gflops', 0):.0f} "
        f"GFLOP/s, read bandwidth {values.get('read_bandwidth_gbs', 0):.1f} GB/s, launch+wait "
        f"{values.get('launch_wait_us', 0):.0f} us")
    return values


def extras(device: Any, config: BenchConfig, trees: list[Structure],
           log: Callable[[str], None]) -> dict[str, Any]:
    """Linearization of 10,000 SST-shaped trees, compile times, memory."""
    from cortexlang.runtime.linearize import linearize

    many = generators.sst_like_trees(2000 if config.quick else 10000, rng=1)
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        linearize(many, max_children=2)
        samples.append(time.perf_counter() - started)
    values: dict[str, Any] = {"linearize_trees": len(many),
                              "linearize_s": float(np.median(samples))}
    if config.quick:
        values["compile_note"] = "not measured with --quick (two fresh processes, seconds)"
    else:
        values.update(compile_times(config.device))
    values["peak_host_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    compiled = (f"compile cold {values['compile_cold_s']:.2f} s, cached "
                f"{values['compile_cached_s'] * 1e3:.0f} ms" if "compile_cold_s" in values
                else "compile not measured")
    log(f"linearize {len(many)} trees: {values['linearize_s'] * 1e3:.0f} ms; {compiled}")
    return values


_COMPILE_SCRIPT = """
import json, sys, time
started = time.perf_counter()
from cortexlang.frontend.check import load_program
from cortexlang.passes.pipeline import run_pipeline
from cortexlang.runtime.devices import select_device
from cortexlang.runtime.execute import CompiledModel, device_limits
device = select_device(sys.argv[2] if len(sys.argv) > 2 else None)
imported = time.perf_counter()
program = load_program(sys.argv[1])
model = CompiledModel(run_pipeline(program, None, device_limits(device)), device)
print(json.dumps({"compile_s": time.perf_counter() - imported, "cache_hit": model.cache_hit}))
"""


def compile_times(device_spec: str | None) -> dict[str, Any]:
    """Cold and cached compile of TreeLSTM in fresh processes (driver caches off)."""
    with tempfile.TemporaryDirectory() as cache:
        environment = dict(os.environ, CORTEXLANG_CACHE_DIR=cache, POCL_KERNEL_CACHE="0")
        command = [sys.executable, "-c", _COMPILE_SCRIPT, str(EXAMPLES / "treelstm.cx")]
        if device_spec:
            command.append(device_spec)
        results = []
        for _ in range(2):
            done = subprocess.run(command, env=environ_with_path(environment),
                                  capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                return {"compile_note": done.stderr.strip().splitlines()[-1:]}
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"compile_cold_s": results[0]["compile_s"], "compile_cached_s":
            results[1]["compile_s"], "compile_cached_hit": results[1]["cache_hit"]}


def environ_with_path(environment: dict[str, str]) -> dict[str, str]:
    """The subprocess imports cortexlang the way this process did."""
    root = str(Path(__file__).resolve().parents[2])
    return dict(environment, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]))

"""Where a compiled model's small-batch latency goes: linearizing, the host's share of a run,
and the device's.

For one model, hidden size and batch size (default: TreeLSTM, H=256, B=1 on the bench's
trees), in one process, alternating passes over the same batches:

- `linearize`: `CompiledModel.linearize` alone;
- `run`: `run_linearized` on linearized batches (the bench's `cortexlang` cell);
- `e2e`: `run` from the structures (the bench's `cortexlang-e2e`);
- `device`: from OpenCL profiling events on a second model bound to a profiling queue, the
  span from the first kernel's start to the last one's end, per run;
- the host thread's CPU time of `run` and `e2e` (what the host computes, without waiting);
- the host's parts of `run_linearized` (the same model, its methods wrapped with timers):
  preparing the upload, enqueueing the launches, enqueueing the read-back and waiting, and
  building the outputs.

`--pause-us N` also times `run` after N microseconds of host work (a Python loop), which
shows what the device's worker threads cost to wake once they have gone idle. Prints median
microseconds; the machine's load is not controlled, so compare numbers of one invocation.

    python -m benchmarks.latency_parts [--model treelstm] [--hidden 256] [--batch 1]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _median_us(samples: Sequence[float]) -> float:
    return float(np.median(samples)) * 1e6 if samples else float("nan")


def _spin(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def _timed(run: Callable[[Any], object], items: Sequence[Any], pause: float = 0.0,
           cpu: list[float] | None = None) -> list[float]:
    """Wall seconds of `run` on each item; `cpu` collects this thread's CPU seconds."""
    samples = []
    for item in items:
        if pause:
            _spin(pause)
        started, started_cpu = time.perf_counter(), time.thread_time()
        run(item)
        samples.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.thread_time() - started_cpu)
    return samples


class _Parts:
    """Wraps a model's run steps with timers (one list of seconds per step)."""

    STEPS = ("_prepare", "_launch", "_read")

    def __init__(self, model: Any) -> None:
        self.seconds: dict[str, list[float]] = {step: [] for step in self.STEPS}
        for step in self.STEPS:
            setattr(model, step, self._wrap(step, getattr(model, step)))

    def _wrap(self, step: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = method(*args, **kwargs)
            self.seconds[step].append(time.perf_counter() - started)
            return result
        return timed


def measure(model_name: str, hidden: int, batch: int, count: int, passes: int,
            pauses_us: Sequence[float]) -> dict[str, float]:
    """Median microseconds of every part (see the module docstring)."""
    from cortexlang.bench.config import BenchConfig
    from cortexlang.bench.inputs import load_model, model_batches, tree_source
    from cortexlang.bench.suite import _compiled
    from cortexlang.inputs.load import load_structures
    from cortexlang.inputs.weights import init_weights
    from cortexlang.passes.pipeline import Options
    from cortexlang.runtime.devices import select_device

    program = load_model(model_name, hidden)
    weights = init_weights(program.params, seed=0)
    trees = list(load_structures(tree_source(BenchConfig())).structures[:200])
    batches = model_batches(model_name, batch, trees, program, count)
    model = _compiled(program, weights, select_device(None), Options())
    profiled = _compiled(program, weights, select_device(None, profiling=True), Options())
    linearized = [model.linearize(b) for b in batches]
    samples: dict[str, list[float]] = {"linearize": [], "run": [], "e2e": [], "device": [],
                                       "run: host thread CPU": [],
                                       "e2e: host thread CPU": []}
    for pause in pauses_us:
        samples[f"run after {pause:g} us"] = []

    def run(item: Any) -> object:
        return model.run_linearized(item, states=False)

    def e2e(structures: Any) -> object:
        return model.run(structures, states=False)

    for item in linearized:      # warm-up
        run(item)
        profiled.run_linearized(item, states=False)
    gc.collect()
    gc.disable()
    try:
        for _ in range(passes):
            samples["linearize"] += _timed(model.linearize, batches)
            samples["run"] += _timed(run, linearized, cpu=samples["run: host thread CPU"])
            samples["e2e"] += _timed(e2e, batches, cpu=samples["e2e: host thread CPU"])
            for pause in pauses_us:
                samples[f"run after {pause:g} us"] += _timed(run, linearized, pause / 1e6)
            for item in linearized:
                profiled.run_linearized(item, states=False)
                profile = profiled.last_profile
                samples["device"].append((max(r.end_ns for r in profile) -
                                          min(r.start_ns for r in profile)) / 1e9)
        parts = _Parts(model)
        outputs_s = []
        for _ in range(passes):
            for item in linearized:
                started = time.perf_counter()
                run(item)
                outputs_s.append(time.perf_counter() - started)
    finally:
        gc.enable()
    result = {name: _median_us(values) for name, values in samples.items()}
    for step, values in parts.seconds.items():
        result[f"run: {step.strip('_')}"] = _median_us(values)
    wrapped = _median_us(outputs_s)
    result["run: the rest (outputs, checks)"] = wrapped - sum(
        result[f"run: {step.strip('_')}"] for step in _Parts.STEPS)
    result["e2e - device"] = result["e2e"] - result["device"]
    result["e2e / run"] = result["e2e"] / result["run"]
    result["launches"] = float(model.last_launches)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="treelstm")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--batches", type=int, default=50, help="different batches cycled")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--pause-us", type=float, nargs="*", default=[],
                        help="also time runs after this much host work")
    args = parser.parse_args(argv)
    result = measure(args.model, args.hidden, args.batch, args.batches, args.passes,
                     args.pause_us)
    print(f"{args.model} H={args.hidden} B={args.batch}, median us "
          f"({args.passes} passes over {args.batches} batches)")
    for name, value in result.items():
        print(f"  {name:34s} {value:9.2f}")


if __name__ == "__main__":
    main()

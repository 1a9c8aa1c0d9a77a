"""The benchmark: cortexlang against the reference interpreter and framework baselines.

Protocol (after the Cortex paper): TreeLSTM, TreeGRU, TreeFC and MV-RNN on SST test trees (or
any tree file), DAG-RNN on 10 x 10 grids; hidden sizes 256 and 512 (MV-RNN, which carries an
H x H matrix per node, at a quarter of that); batches of 1 and 10 structures; float32. Every
implementation runs the same batches with the same weights: one untimed pass over all batches
as warm-up, then several timed passes, one sample per batch; cells report the median, p10 and
p90 milliseconds per batch.

Following the paper's protocol, latency and linearization are reported apart: the
`cortexlang` cell is `CompiledModel.run_linearized` on a linearized batch (uploading the
index arrays, launching, reading the outputs back), the batch's linearization is its
`linearize_ms`, and `cortexlang-e2e` times `CompiledModel.run` from the structures, both
together. Likewise the baselines' per-batch host preparation (index arrays, tensors) is
outside their time. The interpreter and every baseline run in a fresh process each, on the
same batches and weights: frameworks' thread pools keep spinning after their work and would
slow whatever runs next in the same process. Baselines live in the source checkout's
`benchmarks/` folder; those whose framework is not installed are skipped and listed.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cortexlang.bench.work import model_work
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.weights import init_weights
from cortexlang.ir.checked import CheckedProgram
from cortexlang.passes.pipeline import Options

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHARED_SST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst" / "test.txt"
BUNDLED_TREES = EXAMPLES / "data" / "sst_shaped.ptb"
MODELS = ("treelstm", "treegru", "treefc", "mvrnn", "dagrnn")
BASELINES = {"numpy-nodes": "numpy_nodes", "torch-eager": "torch_eager",
             "torch-level": "torch_level", "jax-level": "jax_level"}
IMPLEMENTATIONS = ("cortexlang", "cortexlang-e2e", "interp") + tuple(BASELINES)


@dataclass
class Record:
    """One measured cell (a JSON record of `--json`)."""

    model: str
    hidden: int
    batch: int
    impl: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    gflops: float
    floor_ms: float
    flops_per_batch: float
    launches: int | None = None
    notes: str = ""
    linearize_ms: float | None = None


@dataclass
class AblationRow:
    """The full pipeline with one optimisation switched off (or none: "all on")."""

    disabled: str
    model: str
    hidden: int
    batch: int
    median_ms: float
    ratio: float
    launches: int
    bytes_moved: int


@dataclass
class BenchConfig:
    models: tuple[str, ...] = MODELS
    hiddens: tuple[int, ...] = (256, 512)
    batches: tuple[int, ...] = (1, 10)
    trees: str | None = None
    device: str | None = None
    passes: int = 5
    trees_used: int = 200
    baselines: bool = True
    ablation: bool = True
    quick: bool = False

    @staticmethod
    def quick_config() -> BenchConfig:
        """Seconds, not minutes: proves the benchmark works end to end (CI runs it)."""
        return BenchConfig(models=("treelstm", "dagrnn"), hiddens=(64,), batches=(1, 10),
                           passes=2, trees_used=40, quick=True)


@dataclass
class BenchReport:
    machine: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    ablation: list[AblationRow] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    inputs: str = ""

    def to_json(self) -> str:
        return json.dumps([asdict(record) for record in self.records], indent=2)


# ---------------------------------------------------------------------------------------------
# Inputs and models


def tree_source(config: BenchConfig) -> Path:
    if config.trees is not None:
        return Path(config.trees)
    return SHARED_SST if SHARED_SST.exists() else BUNDLED_TREES


def model_sizes(model: str, hidden: int) -> dict[str, int]:
    if model == "mvrnn":
        return {"H": max(8, hidden // 4)}
    if model == "dagrnn":
        return {"H": hidden, "X": hidden}
    return {"H": hidden}


def load_model(model: str, hidden: int) -> CheckedProgram:
    return load_program(str(EXAMPLES / f"{model}.cx"), model_sizes(model, hidden))


def model_batches(model: str, batch: int, trees: list[Structure], program: CheckedProgram,
                  count: int) -> list[list[Structure]]:
    if model == "dagrnn":
        rng = np.random.default_rng(0)
        features = program.size("X")
        return [[generators.grid(10, 10, features, rng) for _ in range(batch)]
                for _ in range(count)]
    usable = max(1, min(count, len(trees) // batch))
    return [trees[i * batch:(i + 1) * batch] for i in range(usable)]


# ---------------------------------------------------------------------------------------------
# Timing


def time_batches(run: Callable[[Any], object], batches: Sequence[Any], passes: int) -> list[float]:
    """One untimed pass over all batches, then `passes` timed passes: milliseconds."""
    for batch in batches:
        run(batch)
    samples: list[float] = []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(passes):
            for batch in batches:
                started = time.perf_counter_ns()
                run(batch)
                samples.append((time.perf_counter_ns() - started) / 1e6)
    finally:
        if enabled:
            gc.enable()
    return samples


def _summary(samples: list[float]) -> tuple[float, float, float]:
    p10, median, p90 = np.percentile(np.asarray(samples), [10, 50, 90])
    return float(median), float(p10), float(p90)


# ---------------------------------------------------------------------------------------------
# The run


def _compiled(program: CheckedProgram, weights: dict[str, np.ndarray], device: Any,
              options: Options) -> Any:
    from cortexlang.passes.pipeline import run_pipeline
    from cortexlang.runtime.execute import CompiledModel, device_limits

    model = CompiledModel(run_pipeline(program, options, device_limits(device)), device)
    model.bind_weights(weights)
    return model


def _bytes_moved(model: Any, batch: Sequence[Structure]) -> int:
    """An estimate of device-memory traffic per batch: every launch reads the weights its
    kernel reads, and each node writes its states and reads its children's."""
    from cortexlang.ir.executable import Role
    from cortexlang.runtime.plan import run_layout

    executable = model.executable
    linearized = model.linearize(batch)
    layout = run_layout(executable, linearized, linearized.num_nodes)
    plan = _launches(model, linearized, layout)
    buffers = {buffer.ref: buffer for buffer in executable.buffers}
    state_bytes = 4 * sum(buffer.row_size for buffer in executable.buffers_of(Role.STATE))
    total = 0
    for launch in plan:
        for ref in executable.kernel(launch.kernel).args:
            buffer = buffers[ref]
            if ref.role in (Role.WEIGHT, Role.WEIGHT_T, Role.UNIFORM):
                total += buffer.fixed_bytes
            elif ref.role is Role.TABLE:
                total += 4 * buffer.row_size * launch.nodes
        total += launch.nodes * state_bytes * (1 + executable.max_children)
    return total


def _launches(model: Any, linearized: Any, layout: Any) -> list[Any]:
    """The launches a model makes for a linearized batch (see `runtime.plan.launch_plan`)."""
    from cortexlang.runtime.plan import launch_plan

    return launch_plan(model.executable, linearized.batch_len, layout.num_leaf_batches,
                       len(layout.head_nodes), layout.first_fused)


def run_bench(config: BenchConfig, log: Callable[[str], None] = print) -> BenchReport:
    """Measure every (model, hidden, batch, implementation) cell of `config`."""
    from cortexlang.inputs.load import load_structures
    from cortexlang.runtime.devices import select_device

    device = select_device(config.device)
    machine = measure_limits(device, config.quick, log)
    report = BenchReport(machine)
    source = tree_source(config)
    loaded = load_structures(source)
    trees = list(loaded.structures[:config.trees_used])
    report.inputs = f"{len(trees)} trees of {source}"
    impls = ["interp"] + (_available_baselines(report) if config.baselines else [])
    peak_gflops = machine.get("peak_gflops") or 0.0
    bandwidth = machine.get("read_bandwidth_gbs") or machine.get("bandwidth_gbs") or 0.0
    for model_name in config.models:
        for hidden in config.hiddens:
            program = load_model(model_name, hidden)
            weights = init_weights(program.params, seed=0)
            work = model_work(program)
            heads_per_node = any(o.selector == "all" for o in program.outputs)
            compiled = _compiled(program, weights, device, Options())
            for batch in config.batches:
                batches = model_batches(model_name, batch, trees, program,
                                        cell_batches(config.quick, batch))
                flops = float(np.mean([work.batch_flops(b, heads_per_node) for b in batches]))
                floor = max(flops / (peak_gflops * 1e6) if peak_gflops else 0.0,
                            work.weight_bytes / (bandwidth * 1e6) if bandwidth else 0.0)
                cell = _Cell(report, log, model_name, hidden, batch, flops, floor)
                linearized = [compiled.linearize(b) for b in batches]
                linearize_ms = float(np.median([lin.seconds for lin in linearized])) * 1e3
                samples = time_batches(partial(_run_linearized, compiled), linearized,
                                       config.passes)
                cell.record("cortexlang", samples, compiled.last_launches,
                            linearize_ms=linearize_ms)
                samples = time_batches(partial(_run_outputs, compiled), batches, config.passes)
                cell.record("cortexlang-e2e", samples, compiled.last_launches,
                            notes="linearizing included")
                for impl in impls:
                    job = _Job(impl, model_name, hidden, batch, str(source),
                               config.trees_used, config.quick, config.passes)
                    outcome = measure_isolated(job)
                    if isinstance(outcome, str):
                        note = f"{impl} skipped for {model_name}: {outcome}"
                        if note not in report.skipped:
                            report.skipped.append(note)
                        continue
                    samples, notes = outcome
                    cell.record(impl, samples, notes=notes)
            if config.ablation and model_name == config.models[0] and \
                    hidden == config.hiddens[0]:
                batch = max(config.batches)
                batches = model_batches(model_name, batch, trees, program,
                                        6 if config.quick else 20)
                report.ablation = ablate(program, weights, device, batches, config, log)
    report.extras = extras(device, config, trees, log)
    return report


@dataclass
class _Cell:
    """One (model, hidden, batch) cell being measured: adds a record per implementation."""

    report: BenchReport
    log: Callable[[str], None]
    model: str
    hidden: int
    batch: int
    flops: float
    floor: float

    def record(self, impl: str, samples: list[float], launches: int | None = None,
               notes: str = "", linearize_ms: float | None = None) -> None:
        median, p10, p90 = _summary(samples)
        self.report.records.append(Record(
            self.model, self.hidden, self.batch, impl, median, p10, p90,
            self.flops / (median * 1e6), self.floor, self.flops, launches, notes,
            linearize_ms))
        extra = f" (+ linearize {linearize_ms:.3f} ms)" if linearize_ms is not None else ""
        self.log(f"{self.model:9s} H={self.hidden:<4d} B={self.batch:<3d} {impl:14s} "
                 f"{median:9.3f} ms{extra}")


def cell_batches(quick: bool, batch: int) -> int:
    """How many different batches a cell cycles through."""
    return 8 if quick else (100 if batch == 1 else 20)


def _run_outputs(model: Any, batch: Sequence[Structure]) -> object:
    return model.run(batch, states=False)


def _run_linearized(model: Any, linearized: Any) -> object:
    return model.run_linearized(linearized, states=False)


# ---------------------------------------------------------------------------------------------
# The interpreter and the baselines, each in a process of its own


@dataclass(frozen=True)
class _Job:
    """One cell of one implementation, rebuilt in the child process exactly as the parent
    built it (same trees, batches and weights)."""

    impl: str
    model: str
    hidden: int
    batch: int
    trees: str
    trees_used: int
    quick: bool
    passes: int


def measure_isolated(job: _Job) -> tuple[list[float], str] | str:
    """(samples in ms, notes), or why the implementation was skipped; in a fresh process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(_measure_job, job).result()


def _measure_job(job: _Job) -> tuple[list[float], str] | str:
    from cortexlang.inputs.load import load_structures
    from cortexlang.interp import interpret

    program = load_model(job.model, job.hidden)
    weights = init_weights(program.params, seed=0)
    trees = list(load_structures(job.trees).structures[:job.trees_used])
    batches = model_batches(job.model, job.batch, trees, program,
                            cell_batches(job.quick, job.batch))
    if job.impl == "interp":
        few = batches[:2 if job.quick else 4]
        samples = time_batches(partial(interpret, program, weights=weights), few, 1)
        return samples, f"{len(few)} batches, 1 pass"
    _checkout_on_path()
    try:
        from benchmarks.baselines import make_baseline

        baseline = make_baseline(BASELINES[job.impl], job.model, weights, program.size("H"))
        prepared = [baseline.prepare(b) for b in batches]
    except (ImportError, ValueError, KeyError) as error:
        return str(error)
    return time_batches(baseline.run, prepared, job.passes), baseline.notes


def ablate(program: CheckedProgram, weights: dict[str, np.ndarray], device: Any,
           batches: list[list[Structure]], config: BenchConfig,
           log: Callable[[str], None]) -> list[AblationRow]:
    """The full pipeline, then each optimisation switched off alone."""
    rows: list[AblationRow] = []
    full_ms = 0.0
    for disabled in ("",) + Options.names():
        options = Options().without(disabled) if disabled else Options()
        model = _compiled(program, weights, device, options)
        samples = time_batches(partial(_run_outputs, model), batches, config.passes)
        median = _summary(samples)[0]
        full_ms = full_ms or median
        rows.append(AblationRow(disabled or "(all on)", program.name, program.size("H"),
                                len(batches[0]), median, median / full_ms,
                                model.last_launches, _bytes_moved(model, batches[0])))
        log(f"ablation {disabled or '(all on)':20s} {median:9.3f} ms")
    return rows


def _checkout_on_path() -> None:
    """Make the checkout's `benchmarks/` importable when running from a source checkout."""
    root = Path(__file__).resolve().parents[2]
    if (root / "benchmarks" / "__init__.py").exists() and str(root) not in sys.path:
        sys.path.append(str(root))


def _available_baselines(report: BenchReport) -> list[str]:
    """The baselines whose code and framework are here; the others are listed as skipped."""
    _checkout_on_path()
    try:
        import benchmarks.baselines  # noqa: F401
    except ImportError:
        report.skipped.append("all framework baselines: they live in the source checkout's "
                              "benchmarks/ folder, which this installation does not have")
        return []
    import importlib.util

    available = []
    for impl, module in BASELINES.items():
        framework = {"torch_eager": "torch", "torch_level": "torch",
                     "jax_level": "jax"}.get(module)
        if framework is not None and importlib.util.find_spec(framework) is None:
            report.skipped.append(f"{impl}: {framework} is not installed "
                                  f"(make bench installs the optional baselines)")
            continue
        available.append(impl)
    return available


def measure_limits(device: Any, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Peak GFLOP/s, bandwidth and launch latency of the device (from benchmarks.machine)."""
    _checkout_on_path()
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
    values.update(compile_times(config.device))
    values["peak_host_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"linearize {len(many)} trees: {values['linearize_s'] * 1e3:.0f} ms; compile cold "
        f"{values.get('compile_cold_s', float('nan')):.2f} s, cached "
        f"{values.get('compile_cached_s', float('nan')) * 1e3:.0f} ms")
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

"""The benchmark: cortexlang against the reference interpreter and framework baselines.

Protocol (after the Cortex paper): TreeLSTM, TreeGRU, TreeFC and MV-RNN on SST test trees (or
any tree file), DAG-RNN on 10 x 10 grids; hidden sizes 256 and 512 (MV-RNN, which carries an
H x H matrix per node, at a quarter of that); batches of 1 and 10 structures; float32. Every
implementation runs the same batches with the same weights: one untimed pass over all batches
as warm-up, then timed passes (one sample per batch) until the medians of the last three
passes agree within 5% (`cortexlang.bench.timing`; a cell that never settles carries a
pyperf-style instability warning); cells report the median, p10 and p90 milliseconds per
batch over every timed pass.

A cell is checked against physics: faster than its floor (the FLOPs a run cannot avoid at
the device's peak, or the weights it reads at its read bandwidth: `cortexlang.bench.work`),
or `cortexlang-e2e` (linearizing included) faster than `cortexlang` (the same run without
it), cannot be right; such cells are flagged as measurement errors in the table and the
JSON, not reported as speed.

Following the paper's protocol, latency and linearization are reported apart: the
`cortexlang` cell is `CompiledModel.run_linearized` on a linearized batch (handing the
index arrays to the device, launching, reading the outputs back), the batch's linearization is its
`linearize_ms`, and `cortexlang-e2e` times `CompiledModel.run` from the structures, both
together. Likewise the baselines' per-batch host preparation (index arrays, tensors) is
outside their time. The interpreter and every baseline run in a fresh process each, on the
same batches and weights: frameworks' thread pools keep spinning after their work and would
slow whatever runs next in the same process. Baselines live in the source checkout's
`benchmarks/` folder; those whose framework is not installed are skipped and listed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from cortexlang.bench.config import BenchConfig
from cortexlang.bench.extras import extras, measure_limits
from cortexlang.bench.host import describe_host
from cortexlang.bench.inputs import (
    BASELINES,
    cell_batches,
    load_model,
    model_batches,
    time_batches,
    tree_source,
)
from cortexlang.bench.timing import Timing
from cortexlang.bench.work import model_work, run_work
from cortexlang.bench.workers import Job, Workers, available_baselines
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.weights import init_weights
from cortexlang.ir.checked import CheckedProgram
from cortexlang.passes.pipeline import Options

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
    passes: int = 0
    stable: bool = True
    spread: float = 0.0          # of the last pass medians: (max - min) / median
    flags: list[str] = field(default_factory=list)   # measurement errors found in the cell


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
class BenchReport:
    """Everything one run measured. `machine` holds the device's limits (peak, bandwidth,
    launch latency), `host` the CPU, device and versions, `warnings` the unstable cells and
    the measurement errors."""

    machine: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    ablation: list[AblationRow] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    inputs: str = ""
    host: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One object: host, limits, config, inputs, records, ablation, extras, warnings and
        what was skipped."""
        return json.dumps({
            "host": self.host, "limits": self.machine, "config": self.config,
            "inputs": self.inputs, "records": [asdict(record) for record in self.records],
            "ablation": [asdict(row) for row in self.ablation], "extras": self.extras,
            "warnings": self.warnings, "skipped": self.skipped}, indent=2, default=str)


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

    device = select_device(config.device, vector_width=config.vector_width)
    machine = measure_limits(device, config.quick, log)
    report = BenchReport(machine, host=describe_host(device), config=asdict(config))
    source = tree_source(config)
    loaded = load_structures(source)
    trees = list(loaded.structures[:config.trees_used])
    report.inputs = f"{len(trees)} trees of {source}"
    impls = ["interp"] + (available_baselines(report.skipped) if config.baselines else [])
    if config.quick:
        # A framework's process takes seconds to start (torch: 3-10 s here): --quick keeps
        # the interpreter and numpy, which prove the path end to end.
        slow = [impl for impl in impls if impl not in ("interp", "numpy-nodes")]
        impls = [impl for impl in impls if impl not in slow]
        if slow:
            report.skipped.append(f"{', '.join(slow)}: not run with --quick (each starts a "
                                  "framework in a process of its own; run without --quick)")
    if config.ablate is not None and config.ablation:
        left = [name for name in Options.names() if name not in config.ablate]
        if left:
            report.skipped.append(
                f"ablation rows for {', '.join(left)}: --quick ablates only "
                f"{', '.join(config.ablate)} (each row is a fresh OpenCL build when the "
                "kernel caches are empty); run without --quick for every optimisation")
    workers = Workers()
    try:
        # The processes start (imports, a framework's start-up) while the first model
        # compiles; `_measure_cells` waits for them before it times anything.
        workers.start(impls)
        _measure_cells(config, report, device, trees, str(source), impls, workers, log)
    finally:
        workers.close()
    report.extras = extras(device, config, trees, log)
    return report


def _measure_cells(config: BenchConfig, report: BenchReport, device: Any,
                   trees: list[Structure], source: str, impls: list[str], workers: Workers,
                   log: Callable[[str], None]) -> None:
    """Every cell of `config` (cortexlang here, the others in `workers`), and the ablation."""
    machine = report.machine
    peak_gflops = machine.get("peak_gflops") or 0.0
    bandwidth = machine.get("read_bandwidth_gbs") or machine.get("bandwidth_gbs") or 0.0
    for model_name in config.models:
        for hidden in config.hiddens:
            program = load_model(model_name, hidden)
            weights = init_weights(program.params, seed=0)
            work = model_work(program)
            heads_per_node = any(o.selector == "all" for o in program.outputs)
            compiled = _compiled(program, weights, device, Options())
            necessary = run_work(compiled.result.recursive, program)
            workers.ready()   # no process starting beside a timed cell
            for batch in config.batches:
                batches = model_batches(model_name, batch, trees, program,
                                        cell_batches(config.quick, batch))
                flops = float(np.mean([work.batch_flops(b, heads_per_node) for b in batches]))
                run_flops = float(np.mean([necessary.batch_flops(b, heads_per_node)
                                           for b in batches]))
                floor = max(run_flops / (peak_gflops * 1e6) if peak_gflops else 0.0,
                            necessary.weight_bytes / (bandwidth * 1e6) if bandwidth else 0.0)
                cell = _Cell(report, log, model_name, hidden, batch, flops, floor)
                linearized = [compiled.linearize(b) for b in batches]
                linearize_ms = float(np.median([lin.seconds for lin in linearized])) * 1e3
                timing = time_batches(partial(_run_linearized, compiled), linearized,
                                      config.passes, config.max_passes)
                cell.record("cortexlang", timing, compiled.last_launches,
                            linearize_ms=linearize_ms)
                timing = time_batches(partial(_run_outputs, compiled), batches, config.passes,
                                      config.max_passes)
                cell.record("cortexlang-e2e", timing, compiled.last_launches,
                            notes="linearizing included")
                for impl in impls:
                    job = Job(impl, model_name, hidden, batch, source,
                               config.trees_used, config.quick, config.passes,
                               config.max_passes)
                    outcome = workers.measure(job)
                    if isinstance(outcome, str):
                        note = f"{impl} skipped for {model_name}: {outcome}"
                        if note not in report.skipped:
                            report.skipped.append(note)
                        continue
                    timing, notes = outcome
                    cell.record(impl, timing, notes=notes)
                cell.check()
            if config.ablation and model_name == config.models[0] and \
                    hidden == config.hiddens[0]:
                batch = max(config.batches)
                batches = model_batches(model_name, batch, trees, program,
                                        6 if config.quick else 20)
                report.ablation = ablate(program, weights, device, batches, config, log)


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

    def record(self, impl: str, timing: Timing, launches: int | None = None,
               notes: str = "", linearize_ms: float | None = None) -> None:
        median, p10, p90 = timing.summary()
        record = Record(
            self.model, self.hidden, self.batch, impl, median, p10, p90,
            self.flops / (median * 1e6), self.floor, self.flops, launches, notes,
            linearize_ms, timing.passes, timing.stable, timing.spread)
        self.report.records.append(record)
        warning = timing.warning(self.label(impl))
        if warning is not None and impl != "interp":   # the interpreter runs one pass
            self.report.warnings.append(warning)
        extra = f" (+ linearize {linearize_ms:.3f} ms)" if linearize_ms is not None else ""
        self.log(f"{self.model:9s} H={self.hidden:<4d} B={self.batch:<3d} {impl:14s} "
                 f"{median:9.3f} ms{extra}" + ("" if timing.stable else
                                                 f"  (unstable: {100 * timing.spread:.0f}%)"))

    def label(self, impl: str) -> str:
        return f"{self.model} H={self.hidden} B={self.batch} {impl}"

    def check(self) -> None:
        """Flag what cannot be right: a cell faster than its floor, and end to end faster
        than the run it contains (see the module docstring)."""
        mine = {record.impl: record for record in self.report.records
                if (record.model, record.hidden, record.batch) ==
                (self.model, self.hidden, self.batch)}
        for record in mine.values():
            if record.median_ms < record.floor_ms:
                self.flag(record, f"faster than its floor ({record.median_ms:.3f} < "
                                  f"{record.floor_ms:.3f} ms)")
        run, e2e = mine.get("cortexlang"), mine.get("cortexlang-e2e")
        if run is not None and e2e is not None and e2e.median_ms < run.median_ms:
            self.flag(e2e, f"end to end faster than its run ({e2e.median_ms:.3f} < "
                           f"{run.median_ms:.3f} ms)")

    def flag(self, record: Record, what: str) -> None:
        record.flags.append(what)
        self.report.warnings.append(f"MEASUREMENT ERROR: {self.label(record.impl)} is {what}; "
                                    "its number is not a speed (rerun on a quiet machine)")


def _run_outputs(model: Any, batch: Sequence[Structure]) -> object:
    return model.run(batch, states=False)


def _run_linearized(model: Any, linearized: Any) -> object:
    return model.run_linearized(linearized, states=False)


def ablate(program: CheckedProgram, weights: dict[str, np.ndarray], device: Any,
           batches: list[list[Structure]], config: BenchConfig,
           log: Callable[[str], None]) -> list[AblationRow]:
    """The full pipeline, then each optimisation switched off alone (one off by default,
    `unroll_recursion`, switched on alone: its row is "+name")."""
    rows: list[AblationRow] = []
    full_ms = 0.0
    names = Options.names() if config.ablate is None else tuple(
        name for name in Options.names() if name in config.ablate)
    for disabled in ("",) + names:
        options = Options().without(disabled) if disabled else Options()
        if disabled and not getattr(Options(), disabled):
            options, disabled = Options().with_enabled(disabled), f"+{disabled}"
        model = _compiled(program, weights, device, options)
        timing = time_batches(partial(_run_outputs, model), batches, config.passes,
                              config.max_passes)
        median = timing.summary()[0]
        full_ms = full_ms or median
        rows.append(AblationRow(disabled or "(all on)", program.name, program.size("H"),
                                len(batches[0]), median, median / full_ms,
                                model.last_launches, _bytes_moved(model, batches[0])))
        log(f"ablation {disabled or '(all on)':20s} {median:9.3f} ms")
    return rows



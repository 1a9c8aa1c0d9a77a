"""Show a benchmark report: tables in the terminal, a PNG chart, and JSON records."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from cortexlang.bench.suite import IMPLEMENTATIONS, BenchReport, Record

FRAMEWORKS = ("torch-eager", "torch-level", "jax-level", "numpy-nodes")


def best_baseline(records: Sequence[Record]) -> Record | None:
    """The fastest framework baseline of one cell (the interpreter is not a baseline to
    beat: it is slow on purpose)."""
    candidates = [record for record in records if record.impl in FRAMEWORKS]
    return min(candidates, key=lambda record: record.median_ms, default=None)


def cells(report: BenchReport) -> dict[tuple[str, int, int], list[Record]]:
    grouped: dict[tuple[str, int, int], list[Record]] = {}
    for record in report.records:
        grouped.setdefault((record.model, record.hidden, record.batch), []).append(record)
    return grouped


SHORT = {"torch-eager": "torch nodes", "torch-level": "torch level", "jax-level": "jax level",
         "numpy-nodes": "numpy nodes"}


def compact_table(report: BenchReport) -> Table:
    """The latency table in under 100 columns: cortexlang (run, end to end, linearizing),
    the best framework baseline, the speedup, cortexlang against its floor, and a `!` on
    cells with a measurement error or an unstable timing (listed below the table)."""
    table = Table(title="latency per batch, median ms (--wide: every implementation)",
                  box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for column in ("model", "H", "B", "cortex", "e2e", "linear.", "best baseline",
                   "speedup", "/floor", "!"):
        table.add_column(column, justify="left" if column in ("model", "best baseline", "!")
                         else "right", no_wrap=True)
    for (model, hidden, batch), records in cells(report).items():
        by_impl = {record.impl: record for record in records}
        ours, e2e = by_impl.get("cortexlang"), by_impl.get("cortexlang-e2e")
        best = best_baseline(records)
        doubtful = any(record.flags or not record.stable for record in records
                       if record.impl != "interp")
        table.add_row(
            model, str(hidden), str(batch), _ms(ours), _ms(e2e),
            f"{ours.linearize_ms:.3f}" if ours and ours.linearize_ms is not None else "-",
            f"{best.median_ms:.3f} {SHORT.get(best.impl, best.impl)}" if best else "-",
            f"{best.median_ms / ours.median_ms:.1f}x" if ours and best else "-",
            f"{ours.median_ms / ours.floor_ms:.1f}x" if ours and ours.floor_ms else "-",
            "!" if doubtful else "")
    return table


def _ms(record: Record | None) -> str:
    return f"{record.median_ms:.3f}" if record is not None else "-"


def latency_table(report: BenchReport) -> Table:
    """One row per (model, hidden, batch): every implementation's median, cortexlang's
    linearization (apart from its latency, as the protocol asks; `cortexlang-e2e` includes
    it), the ratio of the best baseline to cortexlang, and cortexlang against the floor."""
    present = [impl for impl in IMPLEMENTATIONS
               if any(record.impl == impl for record in report.records)]
    table = Table(title="latency per batch, median ms (p10-p90 in the JSON)")
    for column in ("model", "H", "B"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for impl in present:
        table.add_column(impl, justify="right")
    table.add_column("linearize ms", justify="right")
    table.add_column("best baseline / cortexlang", justify="right")
    table.add_column("cortexlang GFLOP/s", justify="right")
    table.add_column("floor ms", justify="right")
    table.add_column("cortexlang / floor", justify="right")
    for (model, hidden, batch), records in cells(report).items():
        by_impl = {record.impl: record for record in records}
        ours = by_impl.get("cortexlang")
        best = best_baseline(records)
        row = [model, str(hidden), str(batch)]
        row += [f"{by_impl[impl].median_ms:.3f}" if impl in by_impl else "-" for impl in present]
        row.append(f"{ours.linearize_ms:.3f}" if ours and ours.linearize_ms is not None
                   else "-")
        row.append(f"{best.median_ms / ours.median_ms:.1f}x ({best.impl})"
                   if ours and best else "-")
        row.append(f"{ours.gflops:.1f}" if ours else "-")
        row.append(f"{ours.floor_ms:.3f}" if ours else "-")
        row.append(f"{ours.median_ms / ours.floor_ms:.1f}x" if ours and ours.floor_ms else "-")
        table.add_row(*row)
    return table


def ablation_table(report: BenchReport) -> Table:
    first = report.ablation[0]
    table = Table(title=f"ablation: {first.model} H={first.hidden} B={first.batch}, one "
                        "optimisation off at a time", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("switched off", "median ms", "vs all on", "launches", "est. bytes moved"):
        table.add_column(column, justify="left" if column == "switched off" else "right")
    for row in report.ablation:
        table.add_row(row.disabled, f"{row.median_ms:.3f}", f"{row.ratio:.2f}x",
                      str(row.launches), f"{row.bytes_moved / 1e6:.1f} MB")
    return table


def print_report(report: BenchReport, console: Console, wide: bool = False) -> None:
    """The tables; `wide` shows every implementation's column (over 100 characters)."""
    machine = report.machine
    say = partial(_say, console)
    planned = report.host.get("device", {}).get("preferred_vector_width_float", "?")
    native = report.host.get("device", {}).get("native_vector_width_float") or planned
    say(f"device: {machine.get('device_name', machine.get('device', '?'))}, kernels planned "
        f"for vector width {planned}" + (f" (forced; the device's own: {native})"
                                         if native != planned else "")
        + f"; inputs: {report.inputs}")
    say(f"peak {machine.get('peak_gflops', 0):.0f} GFLOP/s (best of our GEMM sweep "
        f"{machine.get('sweep_gflops', 0):.0f} and {machine.get('blas_name', 'BLAS')} "
        f"{machine.get('blas_gflops', 0):.0f}), read bandwidth "
        f"{machine.get('read_bandwidth_gbs', 0):.1f} GB/s, launch+wait "
        f"{machine.get('launch_wait_us', 0):.0f} us")
    if report.config.get("quick"):
        say("QUICK RUN: indicative numbers only (small sizes, few batches and passes, a "
            "partial ablation; see `skipped`); run without --quick for numbers to quote")
    console.print(latency_table(report) if wide else compact_table(report))
    if report.ablation:
        console.print(ablation_table(report))
    extras = report.extras
    if extras:
        compile_text = (f"cold {extras['compile_cold_s']:.2f} s, cached "
                        f"{extras['compile_cached_s'] * 1e3:.0f} ms"
                        if "compile_cold_s" in extras else "not measured")
        say(f"linearize {extras.get('linearize_trees')} SST-shaped trees: "
            f"{extras.get('linearize_s', 0) * 1e3:.0f} ms; TreeLSTM compile: {compile_text}; "
            f"peak host memory {extras.get('peak_host_memory_mb', 0):.0f} MB")
    for note in report.skipped:
        say(f"skipped: {note}")
    for warning in report.warnings:
        say(warning)


def _say(console: Console, text: str) -> None:
    """A line of text wrapped to 100 columns (the compact tables' width)."""
    console.print(textwrap.fill(text, width=100, subsequent_indent="  "), markup=False,
                  highlight=False)


def write_chart(report: BenchReport, path: str | Path) -> str | None:
    """A PNG of latency per cell and implementation (log scale); None if matplotlib is
    missing, else the path written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    grouped = cells(report)
    impls = [impl for impl in IMPLEMENTATIONS
             if any(record.impl == impl for record in report.records)]
    labels = [f"{model}\nH={hidden} B={batch}" for model, hidden, batch in grouped]
    figure, axes = plt.subplots(figsize=(max(8, 1.1 * len(labels)), 5))
    width = 0.8 / max(1, len(impls))
    for position, impl in enumerate(impls):
        values = [next((r.median_ms for r in records if r.impl == impl), float("nan"))
                  for records in grouped.values()]
        axes.bar([i + position * width for i in range(len(labels))], values, width, label=impl)
    axes.set_yscale("log")
    axes.set_ylabel("ms per batch (median, log scale)")
    axes.set_xticks([i + width * (len(impls) - 1) / 2 for i in range(len(labels))])
    axes.set_xticklabels(labels, fontsize=7)
    axes.legend(fontsize=8)
    axes.set_title(f"latency on {report.machine.get('device_name', 'the device')}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)

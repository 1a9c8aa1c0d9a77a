"""Show a benchmark report: tables in the terminal, a PNG chart, and JSON records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
                        "optimisation off at a time")
    for column in ("switched off", "median ms", "vs all on", "launches", "est. bytes moved"):
        table.add_column(column, justify="left" if column == "switched off" else "right")
    for row in report.ablation:
        table.add_row(row.disabled, f"{row.median_ms:.3f}", f"{row.ratio:.2f}x",
                      str(row.launches), f"{row.bytes_moved / 1e6:.1f} MB")
    return table


def print_report(report: BenchReport, console: Console) -> None:
    machine = report.machine
    console.print(f"device: {machine.get('device_name', machine.get('device', '?'))}; "
                  f"peak {machine.get('peak_gflops', 0):.0f} GFLOP/s "
                  f"({machine.get('peak_kernel', 'n/a')}), read bandwidth "
                  f"{machine.get('read_bandwidth_gbs', 0):.1f} GB/s, launch+wait "
                  f"{machine.get('launch_wait_us', 0):.0f} us; inputs: {report.inputs}",
                  markup=False)
    console.print(latency_table(report))
    if report.ablation:
        console.print(ablation_table(report))
    extras = report.extras
    if extras:
        console.print(
            f"linearize {extras.get('linearize_trees')} SST-shaped trees: "
            f"{extras.get('linearize_s', 0) * 1e3:.0f} ms; TreeLSTM compile: cold "
            f"{extras.get('compile_cold_s', float('nan')):.2f} s, cached "
            f"{extras.get('compile_cached_s', float('nan')) * 1e3:.0f} ms; peak host memory "
            f"{extras.get('peak_host_memory_mb', 0):.0f} MB", markup=False)
    for note in report.skipped:
        console.print(f"skipped: {note}", markup=False)


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

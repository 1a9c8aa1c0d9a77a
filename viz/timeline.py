"""Picture of a run: the launches of one batch of structures on a timeline, measured.

`measure_run` compiles for a device, binds weights, runs the batch once to warm up (build,
first-touch of buffers) and once measured on a profiling queue; it returns the device's
start and end time of every launch (`LaunchRecord`s from the runtime). `draw_timeline` puts
one row per kernel and one bar per launch, its length the measured time, labelled with the
batch it covered; the row label sums the kernel's launches. Positions are pinned (neato), so
the x axis is time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cortexlang.inputs.structure import Structure
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.kernels import KernelProgram
from cortexlang.passes.pipeline import CompileResult
from cortexlang.runtime.execute import CompiledModel, LaunchRecord

from . import style
from .dot import Graph

WIDTH_INCHES = 14.0
ROW_INCHES = 0.55
MAX_LAUNCHES = 400
AXIS_TICKS = 5


@dataclass(frozen=True)
class RunMeasurement:
    """One measured run: the device, its launches (in enqueue order), host times."""

    device: str
    structures: int
    nodes: int
    launches: tuple[LaunchRecord, ...]
    linearize_seconds: float
    compute_seconds: float


def measure_run(result: CompileResult, device: object, structures: Sequence[Structure],
                weights: Mapping[str, np.ndarray], *, use_cache: bool = True) -> RunMeasurement:
    """Run `structures` on `device` (a runtime `Device` with a profiling queue) twice and
    return the second run's launches. Raises what the runtime raises (build failures,
    input errors)."""
    model = CompiledModel(result, device, use_cache=use_cache)  # type: ignore[arg-type]
    model.bind_weights(weights)
    model.run(structures)
    outputs = model.run(structures)
    timings = outputs.timings if hasattr(outputs, "timings") else {}
    info = getattr(device, "info", None)
    name = (f"{info.device_name} ({info.device_type}, {info.platform_name})"
            if info is not None else str(device))
    return RunMeasurement(name, len(structures), sum(s.num_nodes for s in structures),
                          tuple(model.last_profile), float(timings.get("linearize", 0.0)),
                          float(timings.get("compute", 0.0)))


def _milliseconds(nanoseconds: float) -> str:
    return f"{nanoseconds / 1e6:.3f} ms"


def draw_timeline(measurement: RunMeasurement, kernels: KernelProgram) -> Graph:
    """One row per kernel, one bar per launch, x = measured device time."""
    launches = list(measurement.launches[:MAX_LAUNCHES])
    total_ns = sum(launch.end_ns - launch.start_ns for launch in measurement.launches)
    graph = style.new_graph(
        "timeline", f"one run of {measurement.structures} structures ({measurement.nodes} "
        f"nodes) on {measurement.device}\n{len(measurement.launches)} launches, "
        f"{_milliseconds(total_ns)} on the device; linearized in "
        f"{measurement.linearize_seconds * 1e3:.3f} ms on the host",
        layout="neato", splines="line")
    graph.node_defaults.update(fixedsize=True, fontsize=9)
    if not launches:
        graph.node("empty", "no launches were recorded", shape="plaintext", style="",
                   pos="0,0!")
        return graph
    origin = min(launch.start_ns for launch in launches)
    span = max(max(launch.end_ns for launch in launches) - origin, 1)
    scale = WIDTH_INCHES / span
    over = {kernel.name: kernel.over for kernel in kernels.kernels}
    names = [kernel.name for kernel in kernels.kernels]
    names += sorted({launch.kernel for launch in launches} - set(names))
    rows = {name: index for index, name in enumerate(names)}
    for name, row in rows.items():
        own = [launch for launch in measurement.launches if launch.kernel == name]
        spent = sum(launch.end_ns - launch.start_ns for launch in own)
        plural = "launch" if len(own) == 1 else "launches"
        graph.node(f"row_{name}", f"{name}\n{len(own)} {plural}, {_milliseconds(spent)}",
                   shape="plaintext", style="", width=2.2, height=ROW_INCHES,
                   pos=f"{-1.3:.3f},{-row * ROW_INCHES:.3f}!", href=f"#opencl-{name}")
    for index, launch in enumerate(launches):
        start = (launch.start_ns - origin) * scale
        width = max((launch.end_ns - launch.start_ns) * scale, 0.04)
        row = rows[launch.kernel]
        heads = over.get(launch.kernel) is BatchRange.HEADS
        batch = "whole run" if launch.batch < 0 else "heads" if heads else f"b{launch.batch}"
        colour = "#d9d9d9" if heads or launch.batch < 0 else style.batch_colour(launch.batch)
        graph.node(f"launch{index}", batch if width > 0.3 else "", shape="box",
                   width=f"{width:.4f}", height=ROW_INCHES * 0.7,
                   pos=f"{start + width / 2:.4f},{-row * ROW_INCHES:.3f}!",
                   fillcolor=colour, penwidth=0.5,
                   tooltip=f"{launch.kernel}, {batch}, {launch.nodes} nodes: "
                           f"{_milliseconds(launch.end_ns - launch.start_ns)} from "
                           f"{_milliseconds(launch.start_ns - origin)}")
    bottom = -(len(rows) - 0.3) * ROW_INCHES
    for tick in range(AXIS_TICKS + 1):
        x = WIDTH_INCHES * tick / AXIS_TICKS
        graph.node(f"tick{tick}", _milliseconds(span * tick / AXIS_TICKS), shape="plaintext",
                   style="", width=0.9, height=0.25, pos=f"{x:.3f},{bottom:.3f}!")
    axis = bottom + 0.2
    graph.node("axis_start", "", shape="point", width=0.01, pos=f"0,{axis:.3f}!")
    graph.node("axis_end", "", shape="point", width=0.01, pos=f"{WIDTH_INCHES:.3f},{axis:.3f}!")
    graph.edge("axis_start", "axis_end", color="#969696", tooltip="device time")
    if len(measurement.launches) > len(launches):
        graph.node("more", f"\u2026 {len(measurement.launches) - len(launches)} more launches "
                   "(see the text form)", shape="plaintext", style="", width=3, height=0.3,
                   pos=f"{WIDTH_INCHES / 2:.3f},{bottom - 0.4:.3f}!")
    return graph


def format_run(measurement: RunMeasurement) -> str:
    """The text form: every launch with its batch, nodes and times."""
    lines = [f"device {measurement.device}",
             f"{measurement.structures} structures, {measurement.nodes} nodes",
             f"linearize {measurement.linearize_seconds * 1e3:.3f} ms, compute "
             f"{measurement.compute_seconds * 1e3:.3f} ms (host wall time)",
             f"{len(measurement.launches)} launches:"]
    origin = min((launch.start_ns for launch in measurement.launches), default=0)
    for launch in measurement.launches:
        batch = "run" if launch.batch < 0 else str(launch.batch)
        lines.append(f"  {launch.kernel:<24} batch {batch:>4}  nodes {launch.nodes:>5}  "
                     f"start {(launch.start_ns - origin) / 1e3:>10.1f} us  "
                     f"time {(launch.end_ns - launch.start_ns) / 1e3:>8.1f} us")
    return "\n".join(lines) + "\n"

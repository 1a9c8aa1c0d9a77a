"""Picture of stage 3, the kernel IR: each kernel, its buffers, local memory, launch geometry,
and the order of the launches for one batch of structures.

Drawn from the `KernelProgram`. Kernels are the rows of a table in the middle, in launch
order: what they cover, the
NDRange of a launch, the work-group size, vector widths, the weights they keep in local memory
(with bytes used against the device's local memory), their phases and .cx lines. Buffers they
read stand on the left (weights blue, index arrays orange, token ids light orange), buffers
they write on the right (states green, temporaries grey, outputs pink); a weight copied into
local memory once per work-group has a thick blue edge. Along the bottom, the launch order of
one run, and the planner's decisions.
"""

from __future__ import annotations

from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BufferRef
from cortexlang.ir.kernels import Kernel, KernelProgram

from . import style
from .dot import Graph
from .escape import Html, escape_html

FLOAT_BYTES = 4
_OVER = {BatchRange.LEAF: "each leaf batch", BatchRange.INTERNAL: "each internal batch",
         BatchRange.ALL: "each batch", BatchRange.HEADS: "the output nodes, once",
         BatchRange.RUN: "the whole run, once"}


KERNELS_NODE = "kernels"


def kernel_port(kernel: str) -> str:
    """The port of a kernel's row in the kernels table (edges attach to it)."""
    return f"kernel_{kernel}"


def launch_geometry(kernel: Kernel, strategy: str) -> str:
    """The NDRange of one launch, in words."""
    if strategy == "cooperative" and kernel.over is BatchRange.RUN:
        return (f"{kernel.groups} work-group{'s' if kernel.groups > 1 else ''} of 1 "
                "work-item, sharing each batch's tasks")
    if kernel.over is BatchRange.RUN:
        size = kernel.local_size or 1
        return f"one work-group of {size} work-items"
    local = kernel.local_size if kernel.local_size is not None else "driver's choice"
    return (f"{kernel.units} work-items \u00d7 \u2308nodes / {kernel.node_tile}\u2309 tiles; "
            f"work-group {local}")


def local_bytes(kernel: Kernel, buffers: dict[BufferRef, L.Buffer]) -> int:
    """Bytes of local memory the kernel's cached weights take."""
    return sum(buffers[ref].row_size * FLOAT_BYTES for ref in kernel.cached_params
               if ref in buffers)


def _names(refs: tuple[BufferRef, ...]) -> str:
    return ", ".join(ref.ir_text for ref in refs)


def _row(text: object, *, bold: bool = False, colour: str | None = None) -> str:
    body = escape_html(text)
    if bold:
        body = Html(f"<B>{body}</B>")
    if colour is not None:
        body = Html(f'<FONT COLOR="{colour}">{body}</FONT>')
    return f'<TR><TD ALIGN="LEFT">{body}</TD></TR>'


def _kernel_label(kernel: Kernel, program: KernelProgram, buffers: dict[BufferRef, L.Buffer],
                  local_memory: int | None) -> Html:
    rows = [_row(f"kernel {kernel.name}", bold=True),
            _row(f"runs over {_OVER[kernel.over]}"),
            _row(f"launch: {launch_geometry(kernel, program.strategy)}")]
    if kernel.node_tile > 1:
        rows.append(_row(f"each work-item computes {kernel.node_tile} nodes (node tile)"))
    if kernel.partial_tiles:
        rows.append(_row("a partial tile runs as sub-tiles of "
                         + ", ".join(map(str, kernel.partial_tiles))))
    if kernel.widths:
        rows.append(_row("vector widths: " + ", ".join(f"{key} \u00d7{width}"
                                                       for key, width in kernel.widths)))
    if kernel.row_tiles:
        rows.append(_row("row tiles: " + ", ".join(f"{tile.key} \u00d7{tile.rows} rows"
                                                   for tile in kernel.row_tiles)))
    if kernel.k_unrolled:
        rows.append(_row("dot products along k by 4: "
                         + ", ".join(sorted({key for key, _ in kernel.k_unrolled}))))
    if kernel.dot_chains:
        rows.append(_row("partial sums: " + ", ".join(
            f"{chains.key} \u00d7{chains.split} ({chains.nodes} node"
            f"{'s' if chains.nodes != 1 else ''})" for chains in kernel.dot_chains)))
    if kernel.cached_params:
        used = local_bytes(kernel, buffers)
        limit = f" of {local_memory} B" if local_memory else ""
        rows.append(_row(f"local memory: {_names(kernel.cached_params)} ({used} B{limit})",
                         colour="#08519c"))
    else:
        rows.append(_row("local memory: none (weights read from global memory)"))
    for phase in kernel.phases:
        line = f", line {phase.span.line}" if phase.span is not None else ""
        rows.append(_row(f"phase {phase.rule}.{phase.index}{line}: stores "
                         f"{_names(phase.stores)}"))
    if kernel.source_lines:
        rows.append(_row(".cx lines " + ", ".join(map(str, kernel.source_lines))))
    return Html('<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">' + "".join(rows)
                + "</TABLE>")


def _launch_order(program: KernelProgram) -> list[str]:
    """One line per step of a run, in order (kernels of one section repeat per batch)."""
    if program.strategy == "cooperative":
        kernel = program.kernels[0]
        sections = " \u2192 ".join(over.value for over, _, _ in kernel.sections) or \
            kernel.over.value
        return [f"1 launch: {kernel.name}, {kernel.groups} work-group(s) looping over every "
                f"batch ({sections}), claiming tasks; a counter of finished tasks between "
                "batches and phases"]
    steps: list[tuple[BatchRange, list[str]]] = []
    for name, over in program.launches:
        if steps and steps[-1][0] == over:
            steps[-1][1].append(name)
        else:
            steps.append((over, [name]))
    arrow = " \u2192 "
    return [f"{number}. for {_OVER[over]}: {arrow.join(names)}"
            for number, (over, names) in enumerate(steps, start=1)]


def draw_kernels(program: KernelProgram, before: KernelProgram | None = None) -> Graph:
    """Kernels, buffers, local memory, geometry and launch order of `program`."""
    limits = dict(program.limits.items())
    device = ", ".join(f"{key} {value}" for key, value in program.limits.items())
    graph = style.new_graph("kernels", f"{program.name}: kernels \u2014 {program.strategy} "
                            f"strategy, node tile {program.node_tile}\n(device: {device})",
                            rankdir="LR", newrank=True, nodesep=0.25, ranksep=0.9)
    buffers = {buffer.ref: buffer for buffer in program.buffers}
    old = {kernel.name: kernel for kernel in before.kernels} if before is not None else None
    written = {ref for kernel in program.kernels for ref in kernel.writes}
    used = {ref for kernel in program.kernels for ref in kernel.reads + kernel.writes}

    def buffer_node(cluster: Graph, buffer: L.Buffer) -> None:
        role = style.role_of(buffer.ref)
        kind = "int" if buffer.integer else "float"
        cluster.node(f"buffer_{buffer.ref.ir_text}",
                     f"{buffer.ref.ir_text}\n{kind}[{buffer.rows.value}]"
                     f"[{buffer.row_size}]", shape="box", fillcolor=style.ROLE_COLOURS[role],
                     tooltip=style.ROLE_NAMES.get(role, role))

    inputs = graph.subgraph("read_only", label="read only: weights, inputs, index arrays",
                            style="rounded", color="#bdbdbd")
    outputs = graph.subgraph("written", label="written: states, temporaries, outputs",
                             style="rounded", color="#bdbdbd")
    for buffer in program.buffers:
        if buffer.ref in used:
            buffer_node(outputs if buffer.ref in written else inputs, buffer)
    # The kernels are the rows of one table, so that they stand in launch order whatever
    # the layout does; edges attach to a kernel's row by its port.
    rows: list[str] = []
    for kernel in program.kernels:
        border = "1"
        colour = "#636363"
        if old is not None and old.get(kernel.name) != kernel:
            border, colour = "3", style.CHANGED_COLOUR
        label = _kernel_label(kernel, program, buffers, limits.get("local_mem_size"))
        rows.append(f'<TR><TD PORT="{escape_html(kernel_port(kernel.name))}" BORDER="{border}" '
                    f'COLOR="{colour}" BGCOLOR="#fffbe6" '
                    f'HREF="#opencl-{escape_html(kernel.name)}" '
                    f'TOOLTIP="kernel {escape_html(kernel.name)}: see its OpenCL">{label}</TD>'
                    "</TR>")
        port = kernel_port(kernel.name)
        for ref in kernel.reads:
            if ref in kernel.cached_params:
                graph.edge(f"buffer_{ref.ir_text}", KERNELS_NODE, "to local memory once",
                           headport=f"{port}:w", color="#08519c", fontcolor="#08519c", penwidth=3)
            elif ref not in kernel.writes:
                # A written buffer read here (a state read by the heads) must not pull the
                # written column to the left.
                graph.edge(f"buffer_{ref.ir_text}", KERNELS_NODE, headport=f"{port}:w",
                           color="#969696", constraint=ref not in written)
        for ref in kernel.writes:
            graph.edge(KERNELS_NODE, f"buffer_{ref.ir_text}",
                       "reads and writes" if ref in kernel.reads else "writes",
                       tailport=f"{port}:e", color=style.RECURSION_COLOUR,
                       fontcolor=style.RECURSION_COLOUR)
    title = (f"{len(program.kernels)} kernel{'s' if len(program.kernels) != 1 else ''}, "
             "in launch order")
    graph.node(KERNELS_NODE, Html(
        '<TABLE BORDER="0" CELLSPACING="10" CELLPADDING="4">'
        f"<TR><TD><B>{escape_html(title)}</B></TD></TR>" + "".join(rows) + "</TABLE>"),
        shape="plaintext", style="")
    order = _launch_order(program)
    lines = "".join(_row(line) for line in order)
    decisions = "".join(_row(f"\u2022 {decision}", colour="#525252")
                        for decision in program.decisions)
    graph.node("launch_order", Html(
        '<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" BGCOLOR="#f7f7f7">'
        + _row("launch order of one run (a batch of structures)", bold=True) + lines
        + (_row("decisions", bold=True) + decisions if decisions else "") + "</TABLE>"),
        shape="plaintext", style="")
    graph.edge(KERNELS_NODE, "launch_order", style="invis")
    return graph

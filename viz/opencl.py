"""Picture of stage 4, the generated OpenCL: each kernel linked to the kernel IR it came from,
the loop-IR phases it computes and the .cx lines those phases came from.

The OpenCL printer opens every kernel with a comment `// kernel NAME: ...; .cx lines ...`;
`kernel_ranges` finds each kernel's lines in the source by that comment, so the explorer can
anchor and link them. The picture reads left to right: OpenCL kernel (with its line range),
kernel IR, phases, source lines (with their text). Nodes link into the explorer's page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import Role
from cortexlang.ir.kernels import KernelProgram
from cortexlang.ir.recursive import SOURCE_KINDS, RecursiveProgram, RuleProgram

from . import style
from .dot import Graph
from .escape import shorten

_KERNEL_COMMENT = re.compile(r"^// kernel ([A-Za-z_][A-Za-z0-9_]*)\b")
_KERNEL_SIGNATURE = re.compile(r"__kernel\s+void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def phase_lines(phase: L.Phase, recursive: RecursiveProgram | None = None,
                phases: Sequence[L.Phase] = ()) -> tuple[int, ...]:
    """The .cx lines a phase computes: its span's line and its stores' (a phase fuses the
    operators of several statements).

    With the recursive program, also the lines of every operator the phase computes: the
    operators its stored values depend on in its rule, back to sources and to values that
    another of `phases` stores (`i, o, u = split(...)` has no store of its own, yet the
    phase that stores `h` computes it)."""
    found = {phase.span.line} if phase.span is not None else set()
    for stmt in L.walk_stmts(phase.body):
        if isinstance(stmt, L.Store) and stmt.span is not None:
            found.add(stmt.span.line)
    rule = next((rule for rule in recursive.rules() if rule.kind == phase.rule), None) \
        if recursive is not None else None
    if rule is not None:
        found.update(_computed_lines(rule, phase, phases))
    return tuple(sorted(found))


def _stored_ops(rule: RuleProgram, phase: L.Phase) -> set[str]:
    """The rule's operators whose values `phase` stores (a state's result, a temporary)."""
    results = dict(rule.results)
    names = set()
    for stored in phase.stores:
        name = stored.name
        if stored.role is Role.STATE and name in results:
            names.add(results[name])
        elif stored.role is Role.TEMP and name.startswith(f"{rule.kind}_"):
            names.add(name[len(rule.kind) + 1:])
    return names


def _computed_lines(rule: RuleProgram, phase: L.Phase,
                    phases: Sequence[L.Phase]) -> set[int]:
    ops = rule.op_map()
    elsewhere = {name for other in phases if other is not phase and other.rule == phase.rule
                 for name in _stored_ops(rule, other)}
    pending = list(_stored_ops(rule, phase))
    seen: set[str] = set()
    lines: set[int] = set()
    while pending:
        name = pending.pop()
        op = ops.get(name)
        if name in seen or op is None or op.kind in SOURCE_KINDS:
            continue
        seen.add(name)
        if op.span is not None:
            lines.add(op.span.line)
        pending.extend(arg for arg in op.args if arg not in elsewhere)
    return lines


def kernel_ranges(source: str) -> dict[str, tuple[int, int]]:
    """Each kernel's first and last line (from 1) in the OpenCL source: from its
    `// kernel NAME` comment (or its signature) to the line before the next kernel."""
    lines = source.split("\n")
    starts: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        match = _KERNEL_COMMENT.match(line.strip())
        if match is not None:
            starts.append((number, match.group(1)))
            continue
        match = _KERNEL_SIGNATURE.search(line)
        if match is not None and not any(name == match.group(1) for _, name in starts):
            starts.append((number, match.group(1)))
    ranges: dict[str, tuple[int, int]] = {}
    for index, (start, name) in enumerate(starts):
        end = starts[index + 1][0] - 1 if index + 1 < len(starts) else len(lines)
        while end > start and not lines[end - 1].strip():
            end -= 1
        ranges[name] = (start, end)
    return ranges


def draw_opencl(source: str, kernels: KernelProgram, cx_source: str = "",
                recursive: RecursiveProgram | None = None) -> Graph:
    """OpenCL kernels -> kernel IR -> phases -> .cx lines, each node a link in the explorer."""
    graph = style.new_graph("opencl", f"{kernels.name}: generated OpenCL "
                            f"({len(source.splitlines())} lines), traced back to the .cx "
                            "source", rankdir="LR", nodesep=0.2)
    ranges = kernel_ranges(source)
    cx_lines = cx_source.split("\n")
    opencl = graph.subgraph("opencl", label="OpenCL C", style="rounded", color="#bdbdbd")
    ir = graph.subgraph("kernel_ir", label="kernel IR", style="rounded", color="#bdbdbd")
    phases = graph.subgraph("phases", label="loop IR phases", style="rounded", color="#bdbdbd")
    lines = graph.subgraph("cx", label=".cx source", style="rounded", color="#bdbdbd")
    drawn_phases: set[str] = set()
    drawn_lines: set[int] = set()
    for kernel in kernels.kernels:
        first, last = ranges.get(kernel.name, (0, 0))
        where = f"lines {first}\u2013{last}" if first else "not found in the source"
        opencl.node(f"cl_{kernel.name}", f"__kernel {kernel.name}\n{where}", shape="box",
                    fontname=style.MONO, fillcolor="#f0f0f0", href=f"#opencl-{kernel.name}",
                    tooltip=f"the OpenCL of {kernel.name}")
        ir.node(f"ir_{kernel.name}", f"kernel {kernel.name}\nover {kernel.over.value}",
                shape="box", style="rounded,filled", fillcolor="#fffbe6", href="#stage-kernels",
                tooltip="the kernel IR stage")
        graph.edge(f"cl_{kernel.name}", f"ir_{kernel.name}", "printed from")
        for phase in kernel.phases:
            key = f"{kernel.name}_{phase.rule}.{phase.index}"
            if key not in drawn_phases:
                drawn_phases.add(key)
                stores = ", ".join(ref.ir_text for ref in phase.stores)
                phases.node(f"phase_{key}", f"phase {phase.rule}.{phase.index}\nstores "
                            f"{stores}", shape="box", style="rounded,filled",
                            fillcolor="#eef5fb", href="#stage-loops")
            graph.edge(f"ir_{kernel.name}", f"phase_{key}")
            for line in phase_lines(phase, recursive, kernel.phases) or kernel.source_lines:
                if line not in drawn_lines:
                    drawn_lines.add(line)
                    text = cx_lines[line - 1] if 0 < line <= len(cx_lines) else ""
                    lines.node(f"line_{line}", f"line {line}: {shorten(text.strip(), 60)}",
                               shape="box", fontname=style.MONO, fillcolor="#fff2ae",
                               href=f"#cx-{line}", tooltip=text.strip() or f"line {line}")
                graph.edge(f"phase_{key}", f"line_{line}")
    return graph

"""Picture of stage 2, the loop IR: the loop nest, which loops are sequential and which are
parallel, and which accesses are indirect.

Drawn from the `LoopProgram`. Each loop is a box around its body: the loop over batches is
*sequential* (solid, bold: one batch after another, because a parent needs its children), the
loops over the nodes of a batch and over units are *parallel* (dashed). Inside are the phases
and all their statements: a phase of more than `MAX_STATEMENTS_PER_PHASE` continues in boxes
below it, each labelled "part k of n". An index loaded from memory (`child0 = children[node * 2]`,
a node's token id) is an orange hexagon, and its orange edges lead to the statements
that access a buffer through it: the indirect accesses of the recursion. The buffers stand on
the left, coloured by role, with the index arrays' reads and every store drawn.

With `before` (the loop program before a pass), statements and buffers the pass added or
changed are outlined in red.
"""

from __future__ import annotations

import textwrap
from typing import Any

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BATCH_RANGE_BUFFERS, BufferRef
from cortexlang.ir.loop_walk import loads, statements, variables, walk

from . import style
from .dot import Graph
from .escape import Html, escape_html

LOOP_TITLES = {
    L.LoopKind.BATCHES: "SEQUENTIAL over batches: one height after another (a parent needs "
                        "its children)",
    L.LoopKind.NODES: "PARALLEL over the nodes of the batch",
    L.LoopKind.UNITS: "PARALLEL over units",
    L.LoopKind.GROUPS: "PARALLEL over the groups of the batch (recursion unrolled: two heights "
                       "per batch)",
    L.LoopKind.MEMBERS: "SEQUENTIAL over the group's members, one work-item: inlined children, "
                        "then their parent (no barrier between them)",
}
_LOOP_STYLE: dict[L.LoopKind, dict[str, Any]] = {
    L.LoopKind.BATCHES: {"style": "bold,filled", "fillcolor": "#fff7dc", "color": "#8c6d00"},
    L.LoopKind.NODES: {"style": "dashed,filled", "fillcolor": "#eef5fb", "color": "#2171b5"},
    L.LoopKind.UNITS: {"style": "dashed,filled", "fillcolor": "#f7fbff", "color": "#6baed6"},
    L.LoopKind.GROUPS: {"style": "dashed,filled", "fillcolor": "#eef5fb", "color": "#2171b5"},
    L.LoopKind.MEMBERS: {"style": "bold,filled", "fillcolor": "#fff7dc", "color": "#8c6d00"},
}


def statement_text(stmt: L.Let | L.Store) -> str:
    """One statement as the loop IR's printer writes it."""
    if isinstance(stmt, L.Let):
        return f"{'int' if stmt.integer else 'float'} {stmt.name} = {L.format_expr(stmt.value)}"
    note = f"    # {stmt.note}" if stmt.note else ""
    return (f"{stmt.buffer.ir_text}[{L.format_expr(stmt.index)}] = "
            f"{L.format_expr(stmt.value)}{note}")


def _exprs(stmt: L.Let | L.Store) -> list[L.Expr]:
    return [stmt.value] if isinstance(stmt, L.Let) else [stmt.index, stmt.value]


# Per-batch bounds: uniform over a batch, so an index computed from them is not a gather.
BATCH_BOUNDS = BATCH_RANGE_BUFFERS


def loaded_index(stmt: L.Stmt) -> BufferRef | None:
    """The buffer an integer `Let` loads a per-node index from (`child0 = children[...]`,
    a node's token id), or None: accesses through such a variable are indirect."""
    if not isinstance(stmt, L.Let) or not stmt.integer:
        return None
    buffers = [load.buffer for load in loads(stmt.value) if load.buffer not in BATCH_BOUNDS]
    return buffers[0] if buffers else None


def indirect_loads(expr: L.Expr, index_vars: dict[str, BufferRef]) -> list[L.Load]:
    """The loads in `expr` whose index goes through memory: it loads, or uses an index
    variable loaded from memory."""
    found = []
    for load in loads(expr):
        if loads(load.index) or variables(load.index) & index_vars.keys():
            found.append(load)
    return found


def _own_statements(stmts: tuple[L.Stmt, ...]) -> list[L.Let | L.Store]:
    """The statements of a block, inside its loops and conditionals but not inside a nested
    phase (which draws its own indirect edges)."""
    blocks = walk(stmts, lambda node: isinstance(node, L.Loop | L.If))
    return [stmt for stmt in blocks if isinstance(stmt, L.Let | L.Store)]


class _Box:
    """A box being drawn (a phase, a loop, a branch) and the cluster statements go into now.

    A phase with more than `MAX_STATEMENTS_PER_PHASE` statements is drawn as several boxes,
    one under the other: when its part is full, the phase and every box open inside it are
    continued in new clusters (labelled "continued"), and `cluster` moves to the innermost."""

    def __init__(self, cluster: Graph, parent: _Box | None, label: str,
                 attrs: dict[str, Any], continued: str) -> None:
        self.cluster = cluster
        self.parent = parent
        self.label = label
        self.attrs = attrs
        self.continued = continued      # the label suffix of a continuation box
        self.part_size = 0              # phases only: statements per box (0: no limit)
        self.parts = 1
        self.part = 1
        self.shown = 0                  # statements drawn into the current part


class _LoopDrawer:
    def __init__(self, graph: Graph, program: L.LoopProgram, before: L.LoopProgram | None):
        self.graph = graph
        self.count = 0
        self.index_vars: dict[str, BufferRef] = {}   # index variables in scope -> their buffer
        self.old_texts: set[str] | None = None
        if before is not None:
            self.old_texts = {statement_text(stmt) for stmt in statements(before.body)
                              if isinstance(stmt, (L.Let, L.Store))}
        self.buffer_ports: dict[BufferRef, str] = {}
        self.definitions: dict[str, str] = {}   # variable -> node, in the current scope

    def _fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def _open(self, outer: _Box, prefix: str, label: str, continued: str = " (continued)",
              **attrs: Any) -> _Box:
        """A new box inside `outer`'s current cluster."""
        cluster = outer.cluster.subgraph(self._fresh(prefix), label=label, **attrs)
        return _Box(cluster, outer, label, attrs, continued)

    def _continue(self, phase: _Box, innermost: _Box) -> None:
        """Start the next part of `phase`: a new phase box under the full one, with every box
        from the phase down to `innermost` opened again inside it."""
        chain = [innermost]
        while chain[-1] is not phase:
            parent = chain[-1].parent
            assert parent is not None, "a continued box lies inside its phase"
            chain.append(parent)
        phase.part += 1
        phase.shown = 0
        assert phase.parent is not None
        outer = phase.parent.cluster
        for box in reversed(chain):
            suffix = box.continued.format(part=phase.part, parts=phase.parts)
            box.cluster = outer.subgraph(self._fresh("continued"), label=box.label + suffix,
                                         **box.attrs)
            outer = box.cluster

    def block(self, box: _Box, stmts: tuple[L.Stmt, ...],
              phase: _Box | None = None) -> tuple[str | None, str | None]:
        """Draw `stmts` into `box`, in program order from top to bottom, every statement;
        returns the first and the last node drawn (None, None when nothing was). Inside a
        `phase`, its parts fill up and continue in new boxes."""
        first: str | None = None
        last: str | None = None
        outer_scope = dict(self.index_vars)

        def follow(start: str | None, end: str | None) -> None:
            nonlocal first, last
            if start is None:
                return
            if last is not None:
                self.graph.edge(last, start, style="invis", weight=10)
            first = first or start
            last = end

        for stmt in stmts:
            if isinstance(stmt, (L.Let, L.Store)):
                if phase is not None and phase.part_size:
                    if phase.shown >= phase.part_size:
                        self._continue(phase, box)
                    phase.shown += 1
                node = self.statement(box.cluster, stmt)
                follow(node, node)
            elif isinstance(stmt, L.Loop):
                follow(*self.loop(box, stmt, phase))
            elif isinstance(stmt, L.Phase):
                follow(*self.phase(box, stmt))
            elif isinstance(stmt, L.If):
                inner = self._open(box, "if", f"if {L.format_expr(stmt.condition)}",
                                   style="rounded", color="#d94801")
                follow(*self.block(inner, stmt.then, phase))
                if stmt.otherwise:
                    other = self._open(box, "else", "else", style="rounded", color="#d94801")
                    follow(*self.block(other, stmt.otherwise, phase))
        self.index_vars = outer_scope
        return first, last

    def phase(self, outer: _Box, phase: L.Phase) -> tuple[str | None, str | None]:
        """A phase's box (continued in more boxes when it is long); one orange edge per index
        variable it accesses buffers through."""
        line = f", line {phase.span.line}" if phase.span is not None else ""
        statements = _own_statements(phase.body)
        box = self._open(outer, "phase", f"phase {phase.rule}.{phase.index}{line}: stores "
                         f"{', '.join(ref.ir_text for ref in phase.stores)}",
                         continued=" (continued, part {part} of {parts})",
                         style="rounded,filled", fillcolor="white", color="#636363")
        limit = style.MAX_STATEMENTS_PER_PHASE
        if len(statements) > limit:
            box.parts = -(-len(statements) // limit)
            box.part_size = -(-len(statements) // box.parts)   # parts of even length
            box.cluster.attrs["label"] = f"{box.label} (part 1 of {box.parts})"
        first_box = box.cluster.name
        first, last = self.block(box, phase.body, box)
        through: dict[str, set[str]] = {}
        for stmt in statements:
            for expr in _exprs(stmt):
                for load in indirect_loads(expr, self.index_vars):
                    for variable in variables(load.index) & self.index_vars.keys():
                        through.setdefault(variable, set()).add(load.buffer.ir_text)
        for variable in sorted(through):
            source = self.definitions.get(variable)
            if source is not None and first is not None:
                self.graph.edge(source, first, f"via {variable}: "
                                f"{', '.join(sorted(through[variable]))}", lhead=first_box,
                                color=style.INDIRECT_COLOUR, fontcolor=style.INDIRECT_COLOUR,
                                style="dashed", penwidth=1.5)
        return first, last

    def loop(self, outer: _Box, loop: L.Loop,
             phase: _Box | None = None) -> tuple[str | None, str | None]:
        header = (f"for {loop.var} in {L.format_expr(loop.start)} .. "
                  f"{L.format_expr(loop.stop)}")
        bounds = loads(loop.start) + loads(loop.stop)
        note = " (bounds loaded per batch)" if bounds else ""
        box = self._open(outer, "loop", f"{header}\n{LOOP_TITLES[loop.kind]}{note}",
                         fontname=style.FONT, **_LOOP_STYLE[loop.kind])
        return self.block(box, loop.body, phase)

    def statement(self, cluster: Graph, stmt: L.Let | L.Store) -> str:
        text = statement_text(stmt)
        name = self._fresh("s")
        indirect = [load for expr in _exprs(stmt) for load in indirect_loads(expr,
                                                                             self.index_vars)]
        is_index = loaded_index(stmt) is not None
        # Long statements wrap (continuation lines indented), never cut.
        pieces = textwrap.wrap(text, 78, subsequent_indent="    ", break_on_hyphens=False)
        wrapped = '<BR ALIGN="LEFT"/>'.join(escape_html(piece) for piece in pieces or [text])
        rows = [f'<TR><TD ALIGN="LEFT"><FONT FACE="{style.MONO}">'
                f'{wrapped}<BR ALIGN="LEFT"/></FONT></TD></TR>']
        if indirect:
            targets = ", ".join(sorted({load.buffer.ir_text for load in indirect}))
            rows.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{style.INDIRECT_COLOUR}" '
                        f'POINT-SIZE="9">indirect: {escape_html(targets)}</FONT></TD></TR>')
        label = Html('<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">'
                     + "".join(rows) + "</TABLE>")
        attrs: dict[str, object] = {"shape": "box", "tooltip": text, "margin": "0.05"}
        if is_index:
            attrs.update(shape="hexagon", fillcolor=style.ROLE_COLOURS["index"])
        elif isinstance(stmt, L.Store):
            attrs["fillcolor"] = style.ROLE_COLOURS[style.role_of(stmt.buffer)]
        if self.old_texts is not None and text not in self.old_texts:
            attrs = style.changed(attrs)
        cluster.node(name, label, **attrs)
        if is_index:
            for load in loads(stmt.value):
                if load.buffer in self.buffer_ports:
                    self.graph.edge("buffers", name, "load", tailport=self.buffer_ports[
                        load.buffer], color=style.INDIRECT_COLOUR,
                        fontcolor=style.INDIRECT_COLOUR)
        if isinstance(stmt, L.Let):
            self.definitions[stmt.name] = name
            buffer = loaded_index(stmt)
            if buffer is not None:
                self.index_vars[stmt.name] = buffer
            else:
                self.index_vars.pop(stmt.name, None)
        return name


def draw_loops(program: L.LoopProgram, before: L.LoopProgram | None = None) -> Graph:
    """The loop nest of `program`; with `before`, what the last pass changed is outlined."""
    graph = style.new_graph("loops", f"{program.name}: loop IR (node tile "
                            f"{program.node_tile})", rankdir="TB", newrank=True)
    drawer = _LoopDrawer(graph, program, before)
    old = {buffer.ref: buffer for buffer in before.buffers} if before is not None else None
    rows = []
    for number, buffer in enumerate(program.buffers):
        kind = "int" if buffer.integer else "float"
        role = style.role_of(buffer.ref)
        port = f"b{number}"
        drawer.buffer_ports[buffer.ref] = port
        border = ""
        if old is not None and old.get(buffer.ref) != buffer:
            border = f' COLOR="{style.CHANGED_COLOUR}" BORDER="3"'
        rows.append(f'<TR><TD PORT="{port}" ALIGN="LEFT" BGCOLOR="{style.ROLE_COLOURS[role]}"'
                    f'{border}>{escape_html(buffer.ref.ir_text)}</TD><TD ALIGN="LEFT" '
                    f'BGCOLOR="{style.ROLE_COLOURS[role]}"{border}>'
                    f"{escape_html(f'{kind}[{buffer.rows.value}][{buffer.row_size}]')}</TD></TR>")
    graph.node("buffers", Html('<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" '
                               'CELLPADDING="3"><TR><TD COLSPAN="2"><B>buffers</B></TD></TR>'
                               + "".join(rows) + "</TABLE>"), shape="plaintext", style="")
    # The top-level loops run one after another, and are drawn so: the leaf loop above the
    # internal loop, the buffers beside the first. (Side by side, Graphviz's crossing
    # minimisation is free to put either loop on the left.)
    tops = graph.subgraph("top_rank", cluster=False, rank="same")
    tops.node("buffers")
    first, _ = drawer.block(_Box(graph, None, "", {}, ""), program.body)
    if first is not None:
        tops.node(first)
    return graph

"""Picture of stage 1, the recursive program: node-indexed operators and recursion edges.

Drawn from the `RecursiveProgram`. Each rule is a cluster of operators in SSA form (weights
blue, token lookups orange). The reads of the children's states are one row of cells at the
top of the internal rule, outlined by child, child 0 left of child 1 for every state (one
table node: Graphviz keeps cells in order, but may swap separate nodes in a cluster).

Between the rules sit the states: the *recursion cut*, what a parent reads of its
children. A rule's results flow into the states; the states flow, along dashed recursion
edges coloured by child, into the internal rule's reads. After recursive refactoring the
cut moves: the new states (such as `h_W = W @ h`, computed at the end of each child's own
step) are drawn with a double outline and the recursion edges now start from them.

With `before` (the program before a pass) every operator or state the pass added or changed
is outlined in red, and the operators it removed are listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortexlang.ir.operators import operator_of
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram

from . import style
from .dot import Graph
from .escape import Html, escape_html, shorten
from .program import shape_text

MAX_OPS_PER_RULE = 90


def _shape(op: Op) -> str:
    return shape_text(op.shape)


def op_label(op: Op) -> str:
    """What an operator computes, in a few words."""
    kind = op.kind
    if kind == "param":
        return f"{op.attr('param')}\n{_shape(op)}"
    if kind == "uniform":
        return f"uniform {op.attr('name')}\n{_shape(op)}"
    if kind == "lookup":
        moduli = op.attr("moduli") or ()
        index = f"{op.attr('input')}(n)" + "".join(f" % {m}" for m in moduli)
        return f"{op.attr('param')}[{index}]\n{_shape(op)}"
    if kind == "input":
        return f"{op.attr('input')}(n)"
    if kind == "const":
        return f"{op.attr('value'):g}"
    if kind == "child_state":
        return f"{op.attr('state')} of child {op.attr('child')}"
    if kind == "child_exists":
        return f"has child {op.attr('child')}"
    if kind == "child_is_leaf":
        return f"child {op.attr('child')} is a leaf"
    if kind == "own_state":
        return f"own {op.attr('state')}"
    if kind == "num_children":
        return "num_children(n)"
    operator = operator_of(op)
    if operator is not None:
        what = operator.label
    elif kind == "slice":
        what = f"[{op.attr('start')}:{op.attr('stop')}]"
    else:
        what = kind
    return f"{op.name} = {what}\n{_shape(op)}"


def _op_attrs(op: Op) -> dict[str, object]:
    line = f" (line {op.span.line})" if op.span is not None else ""
    attrs: dict[str, object] = {"tooltip": f"{op.name}: {op.kind}{line}"}
    if op.kind in ("param", "uniform"):
        attrs.update(shape="box", fillcolor=style.ROLE_COLOURS[op.kind])
    elif op.kind == "lookup":
        attrs.update(shape="box", fillcolor=style.ROLE_COLOURS["words"])
    elif op.kind == "input":
        attrs.update(shape="box", fillcolor=style.ROLE_COLOURS["input"])
    elif op.kind == "const":
        attrs.update(shape="plaintext", style="")
    elif op.kind in ("child_exists", "child_is_leaf", "num_children"):
        attrs.update(shape="box", fillcolor=style.ROLE_COLOURS["index"], fontsize=9)
    elif op.kind == "own_state":
        attrs.update(shape="box", fillcolor=style.ROLE_COLOURS["state"])
    else:
        attrs.update(shape="ellipse", ordering="in")
    return attrs


def refactored_states(program: RecursiveProgram) -> dict[str, str]:
    """States that hold a weight times another state (`h_W` -> "W @ h"): the products that
    recursive refactoring moved into each child's step."""
    found: dict[str, str] = {}
    ops = program.leaf.op_map()
    results = dict(program.leaf.results)
    producers = {name: state for state, name in program.leaf.results}
    for state, result in program.leaf.results:
        op = ops.get(result)
        if op is None or op.kind != "matmul":
            continue
        weight, operand = ops.get(op.args[0]), op.args[1]
        if weight is not None and weight.kind == "param" and operand in producers \
                and results.get(producers[operand]) == operand:
            found[state] = f"{weight.attr('param')} @ {producers[operand]}"
    return found


def children_order(ops: tuple[Op, ...] | list[Op]) -> list[Op]:
    """The reads of the children's states, in the left-to-right order the picture draws
    them: grouped by state (in order of first read), child 0 first within each state. (A
    product such as `A[right(n)] @ a[left(n)]` then still has its matrix on the left.)"""
    reads = [op for op in ops if op.kind == "child_state"]
    states = list(dict.fromkeys(str(op.attr("state")) for op in reads))
    return sorted(reads, key=lambda op: (states.index(str(op.attr("state"))),
                                         int(op.attr("child"))))


@dataclass(frozen=True)
class Drawn:
    """Where an operator is drawn: its node, and the port of its cell when it is one cell of
    the row of children's states."""

    node: str
    port: str | None = None

    def tail(self) -> dict[str, object]:
        return {"tailport": f"{self.port}:s"} if self.port else {}

    def head(self) -> dict[str, object]:
        return {"headport": f"{self.port}:n"} if self.port else {}


def _children_row(cluster: Graph, rule: RuleProgram, reads: list[Op],
                  old_ops: set[Op] | None) -> dict[str, Drawn]:
    """The reads of the children's states as one row of cells in one node, in
    `children_order`. (Separate nodes in a cluster may be swapped by Graphviz's crossing
    minimisation, whatever ordering constraints they carry; cells of one table may not.)"""
    cells, drawn = [], {}
    name = f"{rule.kind}_children"
    for number, op in enumerate(reads):
        port = f"r{number}"
        line = f" (line {op.span.line})" if op.span is not None else ""
        colour = style.child_colour(int(op.attr("child")))
        border = "2"
        if old_ops is not None and op not in old_ops:
            colour, border = style.CHANGED_COLOUR, "3"
        cells.append(f'<TD PORT="{port}" BGCOLOR="{style.ROLE_COLOURS["state"]}" '
                     f'COLOR="{colour}" BORDER="{border}" '
                     f'TOOLTIP="{escape_html(f"{op.name}: child_state{line}")}">'
                     f"{escape_html(op_label(op))}</TD>")
        drawn[op.name] = Drawn(name, port)
    cluster.node(name, Html('<TABLE BORDER="0" CELLSPACING="6" CELLPADDING="4"><TR>'
                            + "".join(cells) + "</TR></TABLE>"), shape="plaintext", style="")
    return drawn


def _draw_rule(graph: Graph, rule: RuleProgram, title: str,
               before: RuleProgram | None) -> dict[str, Drawn]:
    """The rule's cluster; returns op name -> where it is drawn."""
    cluster = graph.subgraph(f"rule_{rule.kind}", label=title, style="rounded",
                             color="#888888")
    old_ops = set(before.ops) if before is not None else None
    shown = rule.ops[:MAX_OPS_PER_RULE]
    reads = children_order(shown)
    nodes = _children_row(cluster, rule, reads, old_ops) if reads else {}
    for op in shown:
        if op.name in nodes:
            continue
        attrs = _op_attrs(op)
        if old_ops is not None and op not in old_ops:
            attrs = style.changed(attrs)
        nodes[op.name] = Drawn(cluster.node(f"{rule.kind}_{op.name}", op_label(op), **attrs))
    by_name = rule.op_map()
    for op in shown:
        for arg in op.args:
            if arg in nodes:
                cluster.edge(nodes[arg].node, nodes[op.name].node, _shape(by_name[arg]),
                             **nodes[arg].tail())
    hidden = len(rule.ops) - MAX_OPS_PER_RULE
    if hidden > 0:
        cluster.node(f"{rule.kind}_more", f"\u2026 {hidden} more operators "
                     "(see the text form)", shape="note", fillcolor="#f7f7f7")
    if before is not None:
        removed = sorted({op.name for op in before.ops} - {op.name for op in rule.ops})
        if removed:
            cluster.node(f"{rule.kind}_removed", shorten(
                f"removed by this pass: {', '.join(removed)}", 90), shape="note",
                fillcolor="#fde0dd", color=style.CHANGED_COLOUR)
    return nodes


def draw_recursive(program: RecursiveProgram, before: RecursiveProgram | None = None) -> Graph:
    """The recursive program; with `before`, what the last pass changed is outlined."""
    cut = ", ".join(sorted({state for state, _ in program.recursion_edges()})) or "none"
    unrolled = "" if program.unroll is None else \
        f"; unrolled: {program.unroll.depth} heights per step"
    graph = style.new_graph(
        "recursive", f"{program.name}: recursive program \u2014 leaves "
        f"{'specialised' if program.specialized else 'share a conditional rule'}; "
        f"recursion cut: {cut}{unrolled}", rankdir="TB", newrank=True)
    old_states = {state.name for state in before.states} if before is not None else None
    moved = refactored_states(program)
    read = {state for state, _ in program.recursion_edges()}
    children_row = graph.subgraph("children_states", cluster=False, rank="min")
    states_row = graph.subgraph("states", cluster=False, rank="max")
    state_nodes: dict[str, str] = {}
    child_nodes: dict[str, str] = {}
    # The children's states in the order the internal rule's row of reads draws them.
    first_read = list(dict.fromkeys(str(op.attr("state"))
                                    for op in children_order(program.internal.ops)))
    for state in sorted(program.states, key=lambda state: first_read.index(state.name)
                        if state.name in first_read else len(first_read)):
        label = f"state {state.name}\n{shape_text(state.shape)}"
        attrs: dict[str, object] = {"shape": "box", "style": "filled,bold",
                                    "fillcolor": style.ROLE_COLOURS["state"]}
        if state.name in moved:
            label = f"state {state.name} = {moved[state.name]}\n{shape_text(state.shape)}\n" \
                    "refactored: computed in the child's own step"
            attrs["peripheries"] = 2
        if old_states is not None and state.name not in old_states:
            attrs = style.changed(attrs)
        state_nodes[state.name] = states_row.node(f"state_{state.name}", label, **attrs)
        if state.name in read:
            written = "(written one level below)" if program.unroll is None else \
                "(an odd-height child: just before,\nby the same work-item; else a step below)"
            child_nodes[state.name] = children_row.node(
                f"children_{state.name}", f"{state.name} of the children\n{written}",
                **{**attrs, "style": "filled,dashed"})
            graph.edge(state_nodes[state.name], child_nodes[state.name],
                       "next level" if program.unroll is None else "same step or next",
                       style="dashed", constraint=False, color=style.RECURSION_COLOUR,
                       fontcolor=style.RECURSION_COLOUR)

    top = list(child_nodes.values())
    for left, right in zip(top, top[1:], strict=False):
        children_row.edge(left, right, style="invis")
    if program.uniforms:
        cluster = graph.subgraph("uniforms", label="uniforms: computed once per weights",
                                 style="rounded,filled", fillcolor="#f2f0f7")
        old = set(before.uniforms) if before is not None else None
        for op in program.uniforms:
            attrs = _op_attrs(op)
            if old is not None and op not in old:
                attrs = style.changed(attrs)
            cluster.node(f"uniform_{op.name}", op_label(op), **attrs)

    titles = {"leaf": "leaf rule (node n)" if program.specialized
              else "leaf rule (chosen per node by a conditional)",
              "internal": "internal rule (node n)", "heads": "output heads (every output node)"}
    rule_nodes: dict[str, dict[str, Drawn]] = {}
    for rule in program.rules():
        old_rule = None
        if before is not None:
            old_rule = {r.kind: r for r in before.rules()}.get(rule.kind)
        rule_nodes[rule.kind] = _draw_rule(graph, rule, titles[rule.kind], old_rule)

    for rule in (program.leaf, program.internal):
        nodes = rule_nodes[rule.kind]
        for state_name, result in rule.results:
            if result in nodes:
                graph.edge(nodes[result].node, state_nodes[state_name], f"writes {state_name}",
                           color=style.RECURSION_COLOUR, fontcolor=style.RECURSION_COLOUR)
    internal = rule_nodes["internal"]
    for op in program.internal.ops:
        if op.kind == "child_state" and op.name in internal:
            child = int(op.attr("child"))
            graph.edge(child_nodes[op.attr("state")], internal[op.name].node, style="dashed",
                       penwidth=1.6, color=style.child_colour(child),
                       tooltip=f"recursion edge: a parent reads {op.attr('state')} of its "
                               f"child {child}", **internal[op.name].head())
    if program.heads is not None:
        heads = rule_nodes["heads"]
        for op in program.heads.ops:
            if op.kind == "own_state" and op.name in heads:
                graph.edge(state_nodes[op.attr("state")], heads[op.name].node, "final value",
                           style="dashed", constraint=False)
    return graph


def recursive_lines(program: RecursiveProgram) -> tuple[int, ...]:
    """The .cx lines the operators came from."""
    return tuple(sorted({op.span.line for rule in program.rules() for op in rule.ops
                         if op.span is not None}))

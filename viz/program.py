"""Picture of stage 0, the checked program: one dataflow graph per rule, shapes on the edges.

Drawn from the `CheckedProgram` itself. Each statement is a box (a state: green, a local:
white) fed by the tree of its typed expression; parameters are blue, reads of a child's state
are coloured by child, and every edge carries the shape of the value that flows along it.
"""

from __future__ import annotations

from cortexlang.ir import checked as ir
from cortexlang.ir.operators import operator_named

from . import style
from .dot import Graph
from .escape import Html, escape_html


def shape_text(shape: tuple[int, ...]) -> str:
    """`[3, 8]`, or `scalar`."""
    return "[" + ", ".join(str(size) for size in shape) + "]" if shape else "scalar"


def _child(child: ir.ChildRef) -> str:
    return f"child {child.index}" if isinstance(child, ir.ChildAt) else f"child {child.var}"


def _condition(condition: ir.Condition) -> str:
    if isinstance(condition, ir.IsLeaf):
        return "isleaf(n)" if condition.child is None else f"isleaf({_child(condition.child)})"
    return f"num_children(n) {condition.op} {condition.value}"


def _index(index: ir.IndexExpr) -> str:
    if isinstance(index, ir.IndexMod):
        return f"{_index(index.index)} % {index.modulus}"
    return f"{index.input}(n)"


class _RuleDrawer:
    """Draws one rule (or the outputs) into a cluster; shared leaves are drawn once."""

    def __init__(self, cluster: Graph, prefix: str, states: set[str]) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.states = states
        self.count = 0
        self.shared: dict[str, str] = {}
        self.defined: dict[str, str] = {}   # local or state name -> its statement's node
        # Reads of child states: state -> {child index: (placeholder node, label, tooltip)}.
        self.children: dict[str, dict[int, tuple[str, str, str]]] = {}

    def order_children(self) -> None:
        """Draw the child-state reads. Graphviz's crossing minimisation may swap two
        separate nodes, so the children of one state share a row of ports, child 0 on the
        left; edges leave from the child's port. A state read from one child is a node."""
        for name, children in self.children.items():
            if len(children) == 1:
                (index, (placeholder, label, tooltip)), = children.items()
                self.cluster.node(placeholder, label, shape="invhouse", penwidth=2,
                                  fillcolor=style.ROLE_COLOURS["state"],
                                  color=style.child_colour(index), tooltip=tooltip)
                continue
            row = self.cluster.node(f"{self.prefix}_children_{name}", Html(
                '<TABLE BORDER="0" CELLBORDER="2" CELLSPACING="6"><TR>' + "".join(
                    f'<TD PORT="c{index}" BGCOLOR="{style.ROLE_COLOURS["state"]}" '
                    f'COLOR="{style.child_colour(index)}" TOOLTIP="{escape_html(tooltip)}">'
                    f"{escape_html(label)}</TD>"
                    for index, (_, label, tooltip) in sorted(children.items()))
                + "</TR></TABLE>"), shape="plaintext", style="")
            ports = {placeholder: f"c{index}:s"
                     for index, (placeholder, _, _) in children.items()}
            for edge in self.cluster.edge_items():
                if edge.tail in ports:
                    edge.attrs["tailport"] = ports[edge.tail]
                    edge.tail = row

    def _fresh(self) -> str:
        self.count += 1
        return f"{self.prefix}_e{self.count}"

    def _shared(self, key: str, label: str, **attrs: object) -> str:
        if key not in self.shared:
            self.shared[key] = self.cluster.node(f"{self.prefix}_{key}", label, **attrs)
        return self.shared[key]

    def expression(self, expr: ir.TypedExpr) -> str:
        """The node computing `expr` (created with its operands)."""
        if isinstance(expr, ir.Param):
            return self._shared(f"param_{expr.name}", f"{expr.name}\n{shape_text(expr.shape)}",
                                shape="box", fillcolor=style.ROLE_COLOURS["param"])
        if isinstance(expr, ir.State) and expr.child is not None:
            index = expr.child.index if isinstance(expr.child, ir.ChildAt) else 0
            placeholder = f"{self.prefix}_state_{expr.name}_{_child(expr.child)}"
            self.children.setdefault(expr.name, {})[index] = (
                placeholder, f"{expr.name}[{_child(expr.child)}]",
                f"the final state {expr.name} of {_child(expr.child)}")
            return placeholder
        if isinstance(expr, (ir.State, ir.Local)) and expr.name in self.defined:
            return self.defined[expr.name]
        if isinstance(expr, ir.State):
            return self._shared(f"own_{expr.name}", f"{expr.name} (final)", shape="box",
                                fillcolor=style.ROLE_COLOURS["state"])
        if isinstance(expr, ir.Lookup):
            name = self.cluster.node(self._fresh(), f"{expr.param}[{_index(expr.index)}]",
                                     shape="box", fillcolor=style.ROLE_COLOURS["words"],
                                     tooltip="a row of the table, selected by the token")
            return name
        if isinstance(expr, ir.NodeInput):
            return self._shared(f"input_{expr.name}", f"{expr.name}(n)", shape="box",
                                fillcolor=style.ROLE_COLOURS["input"])
        if isinstance(expr, ir.NumChildren):
            return self._shared("num_children", "num_children(n)", shape="box",
                                fillcolor=style.ROLE_COLOURS["index"])
        if isinstance(expr, ir.Const):
            text = f"{expr.value:g}" if not expr.shape else \
                f"fill({expr.value:g}, {shape_text(expr.shape)})"
            return self.cluster.node(self._fresh(), text, shape="plaintext", style="")
        return self._operator(expr)

    def _operator(self, expr: ir.TypedExpr) -> str:
        operands: list[ir.TypedExpr]
        if isinstance(expr, ir.Unary):
            label, operands = operator_named(expr.op).label, [expr.arg]
        elif isinstance(expr, ir.Binary):
            label, operands = operator_named(expr.op).label, [expr.lhs, expr.rhs]
        elif isinstance(expr, ir.MatMul):
            label, operands = operator_named("matmul").label, [expr.lhs, expr.rhs]
        elif isinstance(expr, ir.Concat):
            label, operands = operator_named("concat").label, list(expr.parts)
        elif isinstance(expr, ir.Slice):
            label, operands = f"[{expr.start}:{expr.stop}]", [expr.arg]
        elif isinstance(expr, ir.ChildReduce):
            label, operands = f"{expr.op} over children {expr.var}", [expr.body]
        elif isinstance(expr, ir.Select):
            label, operands = f"if {_condition(expr.condition)}", [expr.then, expr.otherwise]
        else:
            raise AssertionError(f"unhandled expression {expr!r}")
        # Operands first, in order, then the operator: with `ordering="in"` Graphviz then
        # keeps operand 0 (child 0, the left operand) to the left of operand 1.
        sources = [self.expression(operand) for operand in operands]
        node = self.cluster.node(self._fresh(), label, shape="ellipse", ordering="in")
        for position, (operand, source) in enumerate(zip(operands, sources, strict=True)):
            edge_label = shape_text(operand.shape)
            if isinstance(expr, ir.Select):
                edge_label = f"{'then' if position == 0 else 'else'} {edge_label}"
            self.cluster.edge(source, node, edge_label)
        return node

    def statement(self, target: str, value: ir.TypedExpr, line: int | None,
                  is_state: bool) -> None:
        where = f" (line {line})" if line is not None else ""
        attrs: dict[str, object] = {"shape": "box", "style": "filled,bold" if is_state else
                                    "filled", "tooltip": f"{target}{where}"}
        if is_state:
            attrs["fillcolor"] = style.ROLE_COLOURS["state"]
        source = self.expression(value)
        node = self.cluster.node(self._fresh(), f"{target}{where}", **attrs)
        self.cluster.edge(source, node, shape_text(value.shape))
        self.defined[target] = node


def draw_program(program: ir.CheckedProgram) -> Graph:
    """The dataflow graph of every rule and output of `program`."""
    graph = style.new_graph("program", f"{program.name}: checked program "
                            f"({program.structure.kind}, at most "
                            f"{program.structure.max_children} children)", rankdir="TB")
    states = {state.name for state in program.states}
    rules = [program.leaf, program.internal] if program.leaf_explicit else [program.internal]
    for rule in rules:
        title = f"{rule.kind} rule ({rule.node})" if program.leaf_explicit else \
            f"internal rule ({rule.node}), also run by leaves"
        cluster = graph.subgraph(f"rule_{rule.kind}", label=title, style="rounded",
                                 color="#888888")
        drawer = _RuleDrawer(cluster, rule.kind, states)
        for statement in rule.statements:
            line = statement.span.line if statement.span is not None else None
            drawer.statement(statement.target, statement.value, line,
                             statement.target in states)
        drawer.order_children()
    if program.outputs:
        cluster = graph.subgraph("outputs", label="outputs", style="rounded", color="#888888")
        drawer = _RuleDrawer(cluster, "outputs", states)
        for output in program.outputs:
            line = output.span.line if output.span is not None else None
            drawer.statement(f"{output.name}[{output.selector}]", output.value, line, False)
    return graph


def program_lines(program: ir.CheckedProgram) -> tuple[int, ...]:
    """The .cx lines of the rules' statements and the outputs."""
    spans = [statement.span for rule in (program.leaf, program.internal)
             for statement in rule.statements] + [output.span for output in program.outputs]
    return tuple(sorted({span.line for span in spans if span is not None}))

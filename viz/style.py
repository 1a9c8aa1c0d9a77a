"""Colours and shapes shared by every picture, so that a weight, a state or an index array
looks the same in each stage, and what a pass changed is marked the same way everywhere."""

from __future__ import annotations

from cortexlang.ir.buffers import BufferRef

from .dot import Graph

FONT = "Helvetica"
MONO = "Courier"

# Buffer roles of the loop and kernel IRs, as their printers spell them (`BufferRef.spelled_role`).
ROLE_COLOURS = {
    "param": "#c6dbef",      # weights
    "uniform": "#dadaeb",    # node-independent values computed once per weights
    "state": "#c7e9c0",      # per-node states
    "temp": "#e5e5e5",       # temporaries
    "input": "#fff2ae",      # per-node vector inputs
    "words": "#fdd0a2",      # token ids: an indirect index into a table
    "index": "#fdae6b",      # the linearizer's arrays: children, batch_start, ...
    "output": "#fbb4c4",     # output heads
    "sync": "#bdbdbd",       # the cooperative kernel's task and barrier counters
}
ROLE_NAMES = {"param": "weights", "uniform": "uniforms", "state": "states",
              "temp": "temporaries", "input": "node inputs", "words": "token ids",
              "index": "index arrays", "output": "outputs", "sync": "counters"}
INDIRECT_COLOUR = "#d94801"
RECURSION_COLOUR = "#238b45"
CHANGED_COLOUR = "#d62728"
CHILD_COLOURS = ("#2171b5", "#cb181d", "#6a51a3", "#238b45", "#d94801", "#525252")

# One colour per batch (height) of the linearizer; cycles after twelve.
BATCH_COLOURS = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462",
                 "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f")

# Guards that keep pictures readable for the largest inputs.
MAX_NODES_PER_GRAPH = 240
MAX_STATEMENTS_PER_PHASE = 40   # per box: a longer phase continues in more boxes


def role_of(buffer: BufferRef) -> str:
    """The colour role of a loop-IR buffer: its role as the IR prints it, token ids apart
    from the other index arrays; variants such as `param_t` (transposed weights) as their
    base."""
    role = buffer.spelled_role
    if role in ROLE_COLOURS:
        return role
    base = role.split("_")[0]
    return base if base in ROLE_COLOURS else "temp"


def batch_colour(batch: int) -> str:
    return BATCH_COLOURS[batch % len(BATCH_COLOURS)]


# Past the 12 colours, batches differ by their border: solid, dashed, dotted, bold, ...
BATCH_BORDERS = ("filled", "filled,dashed", "filled,dotted", "filled,bold")


def batch_border(batch: int) -> str:
    """The node style of `batch`: the colour cycle it is in picks the border."""
    return BATCH_BORDERS[(batch // len(BATCH_COLOURS)) % len(BATCH_BORDERS)]


def child_colour(child: int) -> str:
    return CHILD_COLOURS[child % len(CHILD_COLOURS)]


PAD_INCHES = 0.6


def new_graph(name: str, title: str, **attrs: object) -> Graph:
    """A graph with the house style and `title` on top."""
    # pad: Graphviz sizes the canvas by the nodes and clusters; an edge routed around a
    # cluster (the dashed recursion edges) can bulge past that box and be clipped.
    graph = Graph(name, {"label": title, "labelloc": "t", "fontname": FONT, "fontsize": 16,
                         "compound": True, "pad": PAD_INCHES, **attrs})
    graph.node_defaults = {"fontname": FONT, "fontsize": 11, "style": "filled",
                           "fillcolor": "white"}
    graph.edge_defaults = {"fontname": FONT, "fontsize": 9, "color": "#555555"}
    return graph


def changed(attrs: dict[str, object]) -> dict[str, object]:
    """`attrs` marked as changed by the pass just run: a thick red outline."""
    return {**attrs, "color": CHANGED_COLOUR, "penwidth": 2.5}

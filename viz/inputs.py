"""Pictures of the inputs as the runtime sees them.

`draw_trees`: the input structures of one batch as read (original node ids, tokens at the
leaves), work flowing from the leaves up to the root.

`draw_linearized`: the same structures after the linearizer: every node carries its new id,
its colour is its batch, and each height is one row across all structures (a batch is a row:
nodes of equal height from different trees run together). Leaves are boxes on the bottom row,
numbered first. Beside the trees stand the arrays the kernels index: `batch_start` and
`batch_len` (one row per batch, in the batch's colour) and `children` (one row per node).
Both are drawn from the `Structure` and `Linearized` objects themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cortexlang.inputs.structure import Structure
from cortexlang.runtime.linearize import Linearized

from . import style
from .dot import Graph
from .escape import Html, escape_html, shorten

MAX_ARRAY_COLUMNS = 160
BAND_COLUMNS = 40


def _title(structure: Structure, index: int) -> str:
    meta = structure.meta
    where = f" ({meta['path']}:{meta['line']})" if "path" in meta and "line" in meta else ""
    return f"structure {index}{where}: {structure.num_nodes} nodes"


def token_text(structure: Structure, node: int) -> str:
    """The token of a node as read (or its word id where the input had no text)."""
    if structure.tokens and node < len(structure.tokens) and structure.tokens[node] is not None:
        return shorten(str(structure.tokens[node]), 24)
    word = int(structure.words[node]) if node < structure.words.shape[0] else -1
    return f"word {word}" if word >= 0 else ""


def leaf_order(structure: Structure) -> list[int]:
    """The leaves in reading order: depth first from the root, children in position order
    (for a DAG, each leaf once)."""
    order: list[int] = []
    seen: set[int] = set()
    pending = [structure.root]
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        present = [int(child) for child in structure.children[node] if child >= 0]
        if not present:
            order.append(node)
        pending.extend(reversed(present))
    return order


def keep_reading_order(graph: Graph, names: Sequence[str]) -> None:
    """Invisible edges that hold `names` (nodes of one rank) left to right in this order."""
    for left, right in zip(names, names[1:], strict=False):
        graph.edge(left, right, style="invis")


def _edges(graph: Graph, children: np.ndarray, name: object, tree: int) -> None:
    for node in range(children.shape[0]):
        for position, child in enumerate(children[node]):
            if child >= 0:
                graph.edge(f"{name}{tree}_{int(child)}", f"{name}{tree}_{node}",
                           color=style.child_colour(position), arrowsize=0.6,
                           tooltip=f"child {position}")


def draw_trees(structures: Sequence[Structure], *, hidden: int = 0) -> Graph:
    """The structures as read: original ids, tokens at leaves, data flowing to the root.
    `hidden` counts structures of the input left out of the picture."""
    graph = style.new_graph("trees", f"input: {len(structures)} structure"
                            f"{'s' if len(structures) != 1 else ''} (original node ids; "
                            "edges run from child to parent, as the work flows)",
                            rankdir="BT")
    for index, structure in enumerate(structures):
        cluster = graph.subgraph(f"tree{index}", label=_title(structure, index),
                                 style="rounded", color="#bdbdbd")
        leaves = structure.is_leaf()
        for node in range(structure.num_nodes):
            root = " (root)" if node == structure.root else ""
            if leaves[node]:
                label = f"{node}{root}\n{token_text(structure, node)}"
                cluster.node(f"t{index}_{node}", label, shape="box", fillcolor="#f7f7f7")
            else:
                cluster.node(f"t{index}_{node}", f"{node}{root}", shape="ellipse",
                             ordering="in")
        _edges(graph, structure.children, "t", index)
        # Leaves on one row, in reading order: the sentence reads along the bottom.
        row = cluster.subgraph(f"leaves{index}", cluster=False, rank="same")
        names = [f"t{index}_{leaf}" for leaf in leaf_order(structure)]
        for name in names:
            row.node(name)
        keep_reading_order(row, names)
    if hidden:
        graph.node("hidden", f"\u2026 {hidden} more structures in the input, not in this batch",
                   shape="note", fillcolor="#f7f7f7")
    return graph


def _band_table(title: str, row_names: Sequence[str], columns: Sequence[Sequence[object]],
                colours: Sequence[str]) -> str:
    """A transposed array: one column per entry (coloured), one row per field; long arrays
    wrap into bands of `BAND_COLUMNS` columns and stop after `MAX_ARRAY_COLUMNS`."""
    shown = list(range(min(len(columns), MAX_ARRAY_COLUMNS)))
    bands = [shown[start:start + BAND_COLUMNS] for start in range(0, len(shown), BAND_COLUMNS)]
    width = min(len(shown), BAND_COLUMNS) + 1
    parts = [f'<TR><TD COLSPAN="{width}" ALIGN="LEFT"><B>{escape_html(title)}</B></TD></TR>']
    for band in bands or [[]]:
        for field, name in enumerate(row_names):
            cells = "".join(f'<TD BGCOLOR="{colours[index]}">'
                            f"{escape_html(columns[index][field])}</TD>" for index in band)
            parts.append(f'<TR><TD ALIGN="LEFT"><I>{escape_html(name)}</I></TD>{cells}</TR>')
    if len(columns) > len(shown):
        parts.append(f'<TR><TD COLSPAN="{width}" ALIGN="LEFT">\u2026 {len(columns) - len(shown)}'
                     " more columns (see the text form)</TD></TR>")
    return ('<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="2">'
            + "".join(parts) + "</TABLE>")


def batch_of(linearized: Linearized) -> np.ndarray:
    """The batch number of every (new) node id."""
    batches = np.zeros(linearized.num_nodes, dtype=np.int64)
    for batch in range(linearized.num_batches):
        start = int(linearized.batch_start[batch])
        batches[start:start + int(linearized.batch_len[batch])] = batch
    return batches


def draw_linearized(linearized: Linearized, structures: Sequence[Structure]) -> Graph:
    """The structures renumbered by the linearizer, coloured by batch, with its arrays."""
    mode = "dynamic batching" if linearized.dynamic_batching else "one node per batch"
    graph = style.new_graph(
        "linearized", f"linearized: {linearized.num_nodes} nodes of {linearized.num_trees} "
        f"structures in {linearized.num_batches} batches ({mode}); leaves are ids 0.."
        f"{linearized.num_leaves - 1}\ncolour = batch (a contiguous range of ids), row = height"
        + ("; unrolled: a batch is two heights" if linearized.unroll_depth > 1 else ""),
        rankdir="BT",
        newrank=True)
    batches = batch_of(linearized)
    heights = linearized.height
    rows: dict[int, Graph] = {}
    top = int(heights.max(initial=0)) if linearized.num_nodes else 0
    for height in range(top + 1):
        rows[height] = graph.subgraph(f"height{height}", cluster=False, rank="same")
        members = np.flatnonzero(heights == height)
        ids = f"ids {int(members[0])}..{int(members[-1])}" if members.size else "empty"
        if members.size and linearized.unroll_depth > 1:   # a batch holds two heights
            ids = f"{members.size} nodes"
        kind = "leaves" if height == 0 else "internal"
        first = int(batches[members[0]]) if members.size else 0
        batch = f"batch {first}" if linearized.dynamic_batching else "batches"
        rows[height].node(f"row{height}", f"height {height}: {batch}\n{ids} ({kind})",
                          shape="plaintext", style="", fontsize=10)
    for height in range(top):
        graph.edge(f"row{height}", f"row{height + 1}", style="invis")
    clusters = [graph.subgraph(f"tree{index}", label=_title(structure, index),
                               style="rounded", color="#bdbdbd")
                for index, structure in enumerate(structures)]
    for node in range(linearized.num_nodes):
        tree = int(linearized.tree_of[node])
        old = int(linearized.old_id[node])
        node_batch = int(batches[node])
        colour = style.batch_colour(node_batch)
        tooltip = f"new id {node}, batch {node_batch}, height {int(heights[node])}; structure " \
                  f"{tree} node {old}"
        leaf = linearized.num_children[node] == 0
        text = token_text(structures[tree], old) if leaf and tree < len(structures) else ""
        # More batches than colours: the batch number is in the label and the border
        # changes with each cycle of colours, so no two batches look alike.
        many = linearized.num_batches > len(style.BATCH_COLOURS)
        number = f"{node} \u00b7 b{node_batch}" if many else str(node)
        label = f"{number}\n{text}" if text else number
        name = f"n{node}"
        clusters[tree].node(name, label, shape="box" if leaf else "ellipse",
                            fillcolor=colour, tooltip=tooltip, ordering="in",
                            style=style.batch_border(node_batch) if many else None)
        rows[int(heights[node])].node(name)
        for position, child in enumerate(linearized.children[node]):
            if child >= 0:
                graph.edge(f"n{int(child)}", name, color=style.child_colour(position),
                           arrowsize=0.6, tooltip=f"children[{node}, {position}] = {child}")
    for tree, structure in enumerate(structures):
        first = int(linearized.node_offset[tree])
        keep_reading_order(clusters[tree], [f"n{int(linearized.new_id[first + leaf])}"
                                            for leaf in leaf_order(structure)])
    batch_columns = [(batch, int(linearized.batch_start[batch]),
                      int(linearized.batch_len[batch]),
                      int(heights[int(linearized.batch_start[batch])])
                      if linearized.batch_len[batch] else "")
                     for batch in range(linearized.num_batches)]
    batch_table = _band_table("batch_start, batch_len (one column per batch)",
                              ("b", "batch_start", "batch_len", "height"), batch_columns,
                              [style.batch_colour(b) for b in range(linearized.num_batches)])
    node_columns = [[node] + [int(child) for child in linearized.children[node]]
                    + [int(linearized.tree_of[node]), int(linearized.old_id[node])]
                    for node in range(linearized.num_nodes)]
    node_table = _band_table(
        "children (one column per node; -1: none)", ["node"] + [f"children[{k}]" for k in
                                               range(linearized.max_children)]
        + ["structure", "old id"], node_columns,
        [style.batch_colour(int(batches[node])) for node in range(linearized.num_nodes)])
    arrays = graph.subgraph("arrays_rank", cluster=False, rank="min")
    arrays.node("arrays", Html('<TABLE BORDER="0" CELLSPACING="6"><TR><TD>' + batch_table
                               + "</TD></TR><TR><TD>" + node_table + "</TD></TR></TABLE>"),
                shape="plaintext", style="")
    graph.edge("arrays", "row0", style="invis")
    return graph

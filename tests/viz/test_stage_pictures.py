"""Each stage's picture holds the nodes, edges and labels a student needs, drawn from that
stage's own IR (TreeFC with H = 4 and the sentiment TreeLSTM, both small)."""

from __future__ import annotations

import dataclasses
import re

from cortexlang.viz import style
from cortexlang.viz.dot import Graph, render
from cortexlang.viz.kernels import draw_kernels
from cortexlang.viz.loops import draw_loops, loaded_index
from cortexlang.viz.opencl import draw_opencl, kernel_ranges
from cortexlang.viz.program import draw_program
from cortexlang.viz.recursive import draw_recursive, refactored_states

from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import WEIGHT_ROLES
from cortexlang.ir.loop_walk import statements
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits

from .conftest import needs_graphviz, records, small_program


def labels(graph: Graph) -> dict[str, str]:
    return {name: str(attrs.get("label", "")) for name, attrs in graph.nodes()}


def edges(graph: Graph) -> list[tuple[str, str, str]]:
    return [(tail, head, str(attrs.get("label", ""))) for tail, head, attrs in graph.edges()]


def test_program_picture_has_a_dataflow_graph_per_rule_with_shapes() -> None:
    program = small_program()
    graph = draw_program(program)
    text = graph.source()
    assert "cluster_rule_leaf" in text and "cluster_rule_internal" in text
    names = labels(graph)
    assert "W\n[4, 4]" in names.values()
    # The children's states share one row of ports, child 0 first (on the left).
    row = next(label for label in names.values() if "h[child 0]" in label)
    assert row.index('PORT="c0"') < row.index("h[child 0]") < row.index('PORT="c1"') \
        < row.index("h[child 1]")
    assert {attrs.get("tailport") for _, _, attrs in graph.edges()} >= {"c0:s", "c1:s"}
    assert any(label.startswith("h (line") for label in names.values())
    # The product W @ (h_l + h_r): both operands arrive with their shapes.
    matmul = next(name for name, label in names.items() if label == "@")
    into_matmul = {label for _, head, label in edges(graph) if head == matmul}
    assert into_matmul == {"[4, 4]", "[4]"}


def test_recursive_picture_shows_recursion_edges_and_the_refactored_cut() -> None:
    steps = records(small_program())
    before = steps["fold_constants"].ir
    after = steps["refactor_recursion"].ir
    assert refactored_states(after) == {"h_W": "W @ h"}
    graph = draw_recursive(after, before)
    nodes = dict(graph.nodes())
    refactored = nodes["state_h_W"]
    assert "refactored" in str(refactored["label"])
    assert refactored["color"] == style.CHANGED_COLOUR          # new in this pass
    assert nodes["state_h"].get("color") != style.CHANGED_COLOUR
    # The recursion now carries h_W from each child: one dashed edge per child, by colour.
    recursion = [(tail, head, attrs) for tail, head, attrs in graph.edges()
                 if tail == "children_h_W"]
    assert len(recursion) == 2
    assert {attrs["color"] for _, _, attrs in recursion} == {style.child_colour(0),
                                                             style.child_colour(1)}
    # They end at the cells of the row of the children's reads, child 0's cell first.
    row = str(nodes["internal_children"]["label"])
    cells = dict(re.findall(r'PORT="(\w+)"[^>]*>([^<]*)</TD>', row))
    assert {head for _, head, _ in recursion} == {"internal_children"}
    reads = [cells[str(attrs["headport"]).removesuffix(":n")] for _, _, attrs in recursion]
    assert sorted(reads) == ["h_W of child 0", "h_W of child 1"]
    assert row.index("h_W of child 0") < row.index("h_W of child 1")
    removed = str(nodes["internal_removed"]["label"])
    assert removed.startswith("removed by this pass:") and "t4" in removed
    # Before refactoring, the cut was h.
    old = draw_recursive(before)
    assert "recursion cut: h" in str(old.attrs["label"])
    assert "children_h" in dict(old.nodes())


def test_loops_picture_marks_sequential_parallel_and_indirect_accesses() -> None:
    steps = records(small_program("sentiment"))
    program = steps["lower_loops"].ir
    graph = draw_loops(program)
    text = graph.source()
    assert text.count("SEQUENTIAL over batches") == 2      # leaf batches, internal batches
    assert "PARALLEL over the nodes of the batch" in text
    assert "PARALLEL over units" in text
    index_lets = [stmt for stmt in statements(program.body) if loaded_index(stmt)]
    assert {stmt.name for stmt in index_lets} >= {"child0", "child1"}
    hexagons = [attrs for _, attrs in graph.nodes() if attrs.get("shape") == "hexagon"]
    assert any("children[node * 2]" in str(attrs["tooltip"]) for attrs in hexagons)
    via = [label for _, _, label in edges(graph) if label.startswith("via child")]
    assert any("state:h" in label for label in via) and any("state:c" in label for label in via)
    assert "indirect: state:c, state:h" in text or "indirect: state:h" in text
    assert all(attrs.get("lhead", "").startswith("cluster_phase") for _, _, attrs in
               graph.edges() if str(attrs.get("label", "")).startswith("via "))


def test_loops_picture_outlines_what_dense_intermediates_changed() -> None:
    steps = records(small_program("sentiment"))
    graph = draw_loops(steps["dense_intermediates"].ir, steps["lower_loops"].ir)
    changed = [attrs for _, attrs in graph.nodes() if attrs.get("color") == style.CHANGED_COLOUR]
    assert any("slot" in str(attrs.get("tooltip", "")) for attrs in changed)
    buffers = str(dict(graph.nodes())["buffers"]["label"])
    assert f'COLOR="{style.CHANGED_COLOUR}"' in buffers     # the temporary's rows changed


def test_kernels_picture_level_strategy() -> None:
    result = run_pipeline(small_program("sentiment"), Options().without("fuse_levels"))
    graph = draw_kernels(result.kernels)
    nodes = dict(graph.nodes())
    table = str(nodes["kernels"]["label"])
    positions = [table.index(f'PORT="kernel_{kernel.name}"') for kernel in
                 result.kernels.kernels]
    assert positions == sorted(positions)                  # rows in launch order
    writes = {(tail, head, str(attrs.get("tailport"))) for tail, head, attrs in graph.edges()}
    reads = {(tail, str(attrs.get("headport"))) for tail, head, attrs in graph.edges()
             if head == "kernels"}
    for kernel in result.kernels.kernels:
        assert f"kernel {kernel.name}</B>" in table
        assert f'HREF="#opencl-{kernel.name}"' in table
        for buffer in kernel.writes:
            assert ("kernels", f"buffer_{buffer.ir_text}", f"kernel_{kernel.name}:e") in writes
        for buffer in set(kernel.reads) - set(kernel.writes):
            assert (f"buffer_{buffer.ir_text}", f"kernel_{kernel.name}:w") in reads
    assert "launch: " in table
    assert "buffer_children" in nodes and "buffer_words:word" in nodes
    assert any(name.startswith("buffer_param") and "U" in name for name in nodes)
    order = str(nodes["launch_order"]["label"])
    assert "for each leaf batch: leaf_phase0" in order
    assert "for each internal batch: internal_phase0" in order
    assert "heads_phase0 \u2192 heads_phase1" in order


def test_kernels_picture_shows_local_memory_of_a_persistent_kernel() -> None:
    gpu = DeviceLimits(max_work_group_size=256, local_mem_size=65536, is_gpu=True)
    result = run_pipeline(small_program(), Options(), gpu)
    kernel = next(kernel for kernel in result.kernels.kernels if kernel.over is BatchRange.RUN)
    if not kernel.cached_params:   # draw the local-memory case whatever the planner chose
        weight = next(ref for ref in kernel.reads if ref.role in WEIGHT_ROLES)
        kernel = dataclasses.replace(kernel, cached_params=(weight,))
    program = dataclasses.replace(result.kernels, kernels=(kernel,))
    graph = draw_kernels(program)
    label = str(dict(graph.nodes())["kernels"]["label"])
    assert "one work-group of 256 work-items" in label
    cached = kernel.cached_params[0]
    size = program.buffers[[b.ref for b in program.buffers].index(cached)]
    assert f"local memory: {cached.ir_text} ({size.row_size * 4} B of 65536 B)" in label
    assert ("buffer_" + cached.ir_text, "kernels",
            "to local memory once") in edges(graph)


def test_opencl_picture_links_each_kernel_to_its_ir_and_source_lines() -> None:
    program = small_program("sentiment")
    result = run_pipeline(program, Options().without("fuse_levels"))
    ranges = kernel_ranges(result.source)
    assert set(ranges) == {kernel.name for kernel in result.kernels.kernels}
    lines = result.source.split("\n")
    for name, (first, last) in ranges.items():
        assert lines[first - 1].startswith(f"// kernel {name}")
        assert first < last
    graph = draw_opencl(result.source, result.kernels, program.source)
    nodes = dict(graph.nodes())
    for name in ranges:
        assert nodes[f"cl_{name}"]["href"] == f"#opencl-{name}"
        assert (f"cl_{name}", f"ir_{name}", "printed from") in edges(graph)
    cx = [str(attrs["label"]) for name, attrs in graph.nodes() if name.startswith("line_")]
    assert any("h = sigmoid(o) * tanh(c)" in label for label in cx)


@needs_graphviz
def test_every_stage_picture_renders() -> None:
    program = small_program("sentiment")
    result = run_pipeline(program, Options())
    for graph in (draw_program(program), draw_recursive(result.recursive),
                  draw_loops(result.loops), draw_kernels(result.kernels),
                  draw_opencl(result.source, result.kernels, program.source)):
        assert render(graph.source(), "svg").startswith(b"<?xml")


def test_loop_statements_wrap_and_the_leaf_loop_comes_first() -> None:
    """Every statement is drawn whole (long ones wrap), and the leaf loop is drawn before
    (above) the internal loop: an invisible edge runs from the first into the second."""
    from cortexlang.viz.loops import statement_text

    program = run_pipeline(small_program("treelstm"), Options()).loops
    graph = draw_loops(program)
    labels = {name: str(attrs.get("label", "")) for name, attrs in graph.nodes()}
    assert not any("\u2026" in label for label in labels.values())
    lets = [stmt for stmt in statements(program.body) if isinstance(stmt, L.Let)]
    longest = max((statement_text(stmt) for stmt in lets), key=len)
    assert len(longest) > 78
    assert any('<BR ALIGN="LEFT"/>' in label for label in labels.values())
    leaf_loop, internal_loop = program.body[0], program.body[1]
    assert isinstance(leaf_loop, L.Loop) and isinstance(internal_loop, L.Loop)
    ties = [(tail, head) for tail, head, attrs in graph.edges() if attrs.get("style") == "invis"
            and attrs.get("weight") == 10]
    assert ties


def test_a_fused_phase_traces_every_line_it_computes() -> None:
    """TreeLSTM's internal phase stores h and c (lines 24, 25) and computes the gates of
    line 23 on the way, which has no store of its own: the trace names all three."""
    from cortexlang.viz.opencl import phase_lines

    result = run_pipeline(small_program("treelstm"), Options())
    phases = [stmt for stmt in statements(result.loops.body) if isinstance(stmt, L.Phase)]
    internal = next(phase for phase in phases if phase.rule == "internal")
    gates, cell, hidden = (statement.span.line for statement
                           in result.program.internal.statements[:3])
    assert {gates, cell, hidden} <= set(phase_lines(internal, result.recursive, phases))
    assert gates not in phase_lines(internal)

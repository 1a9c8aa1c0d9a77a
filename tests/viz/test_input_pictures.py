"""The inputs as the runtime sees them: trees as read, the linearizer's numbering, batches
and arrays, and the run's launches on a timeline."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from cortexlang.viz import style
from cortexlang.viz.dot import render
from cortexlang.viz.inputs import batch_of, draw_linearized, draw_trees, leaf_order
from cortexlang.viz.timeline import RunMeasurement, draw_timeline, format_run

from cortexlang.inputs.structure import Structure
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.kernels import KernelProgram
from cortexlang.runtime.execute import LaunchRecord
from cortexlang.runtime.linearize import linearize

from .conftest import HOSTILE_TOKENS, needs_graphviz


def test_trees_picture_keeps_ids_tokens_and_reading_order(trees: list[Structure]) -> None:
    graph = draw_trees(trees, hidden=3)
    nodes = dict(graph.nodes())
    # Tree 0: ("<b>&, (a"b<script>, back\slash)); PTB numbers nodes depth first.
    assert nodes["t0_0"]["label"] == f"0\n{HOSTILE_TOKENS[0]}"
    assert nodes["t0_0"]["shape"] == "box"
    assert str(nodes["t0_4"]["label"]).startswith("4 (root)")
    assert leaf_order(trees[0]) == [0, 1, 2]
    child_edges = {(tail, head) for tail, head, attrs in graph.edges()
                   if attrs.get("style") != "invis"}
    assert ("t0_1", "t0_3") in child_edges and ("t0_3", "t0_4") in child_edges
    assert "3 more structures" in str(nodes["hidden"]["label"])


def test_linearized_picture_numbers_colours_and_arrays(trees: list[Structure]) -> None:
    linearized = linearize(trees, max_children=2)
    graph = draw_linearized(linearized, trees)
    nodes = dict(graph.nodes())
    batches = batch_of(linearized)
    assert linearized.num_leaves == 5 and linearized.num_batches == 3
    for node in range(linearized.num_nodes):
        attrs = nodes[f"n{node}"]
        assert attrs["fillcolor"] == style.batch_colour(int(batches[node]))
        assert attrs["shape"] == ("box" if node < linearized.num_leaves else "ellipse")
    # Leaves first, with their tokens; the roots last.
    assert nodes["n0"]["label"] == f"0\n{HOSTILE_TOKENS[0]}"
    assert [int(root) for root in linearized.roots] == [7, 6]
    # Every child edge of the children array is drawn, child to parent.
    drawn = {(tail, head) for tail, head, attrs in graph.edges() if attrs.get("style") != "invis"}
    for node in range(linearized.num_nodes):
        for child in linearized.children[node]:
            if child >= 0:
                assert (f"n{child}", f"n{node}") in drawn
    # One row (rank) per height, and the arrays beside the trees.
    source = graph.source()
    assert source.count('rank="same"') == 3
    arrays = str(nodes["arrays"]["label"])
    assert "batch_start" in arrays and "batch_len" in arrays and "children[1]" in arrays
    starts = " ".join(str(int(value)) for value in linearized.batch_start)
    assert starts == "0 5 7"
    assert "height 0: batch 0\nids 0..4 (leaves)" == nodes["row0"]["label"]


@needs_graphviz
def test_input_pictures_render_hostile_tokens(trees: list[Structure]) -> None:
    linearized = linearize(trees, max_children=2)
    for graph in (draw_trees(trees), draw_linearized(linearized, trees)):
        svg = render(graph.source(), "svg").decode("utf-8")
        texts = {element.text for element in ElementTree.fromstring(svg).iter(
            "{http://www.w3.org/2000/svg}text")}
        assert set(HOSTILE_TOKENS) <= texts


def test_without_dynamic_batching_every_node_is_a_batch(trees: list[Structure]) -> None:
    linearized = linearize(trees, max_children=2, dynamic_batching=False)
    graph = draw_linearized(linearized, trees)
    colours = {str(attrs["fillcolor"]) for name, attrs in graph.nodes()
               if name.startswith("n") and name[1:].isdigit()}
    assert len(colours) == min(linearized.num_nodes, len(style.BATCH_COLOURS))
    assert "one node per batch" in str(graph.attrs["label"])


def _measurement() -> RunMeasurement:
    launches = (LaunchRecord("leaf_phase0", 0, 5, 1_000, 3_000),
                LaunchRecord("internal_phase0", 1, 2, 4_000, 5_000),
                LaunchRecord("internal_phase0", 2, 1, 6_000, 9_000),
                LaunchRecord("heads_phase0", 0, 8, 9_500, 10_000))
    return RunMeasurement("Test Device (CPU, Test)", 2, 8, launches, 1e-4, 2e-4)


def test_timeline_has_a_row_per_kernel_and_a_bar_per_launch() -> None:
    measurement = _measurement()
    kernels = KernelProgram("m", "level", (), (), (("leaf_phase0", BatchRange.LEAF),), 1)
    graph = draw_timeline(measurement, kernels)
    nodes = dict(graph.nodes())
    assert graph.attrs["layout"] == "neato"
    assert str(nodes["row_internal_phase0"]["label"]) == "internal_phase0\n2 launches, 0.004 ms"
    bars = [nodes[f"launch{index}"] for index in range(4)]
    widths = [float(str(bar["width"])) for bar in bars]
    assert widths[2] == pytest.approx(3 * widths[1], rel=1e-3)    # length is measured time
    xs = [float(str(bar["pos"]).split(",")[0]) for bar in bars]
    assert xs == sorted(xs)                                         # in time order
    assert "internal_phase0, b2, 1 nodes" in str(bars[2]["tooltip"])
    assert "4 launches" in str(graph.attrs["label"])
    text = format_run(measurement)
    assert text.count("internal_phase0") == 2 and "batch    2" in text


@needs_graphviz
def test_timeline_renders_with_pinned_positions() -> None:
    kernels = KernelProgram("m", "level", (), (), (), 1)
    svg = render(draw_timeline(_measurement(), kernels).source(), "svg").decode("utf-8")
    assert "leaf_phase0" in svg and "heads_phase0" in svg


@pytest.mark.opencl
def test_measured_run_records_every_launch(opencl_device: object) -> None:
    from cortexlang.viz.timeline import measure_run

    from cortexlang.inputs.weights import init_weights
    from cortexlang.passes.pipeline import Options, run_pipeline
    from cortexlang.runtime.devices import select_device
    from cortexlang.runtime.execute import device_limits

    from .conftest import small_program, small_trees

    device = select_device(profiling=True)
    program = small_program()
    result = run_pipeline(program, Options().without("fuse_levels"), device_limits(device))
    trees = small_trees()
    measurement = measure_run(result, device, trees, init_weights(program.params, 0))
    linearized = linearize(trees, max_children=2)
    batches = {"leaf": [0], "internal": [1, 2]}     # 5 leaves, then heights 1 and 2
    expected = [(kernel, batch) for section in ("leaf", "internal")
                for batch in batches[section]
                for kernel, over in result.kernels.launches if over.value == section]
    assert [(launch.kernel, launch.batch) for launch in measurement.launches] == expected
    assert [launch.nodes for launch in measurement.launches if launch.batch == 1][0] == \
        int(linearized.batch_len[1])
    assert all(launch.end_ns >= launch.start_ns for launch in measurement.launches)
    assert np.isfinite(measurement.linearize_seconds)


def test_batches_beyond_the_colours_differ_by_label_and_border() -> None:
    from cortexlang.inputs import generators

    chain = generators.chain(len(style.BATCH_COLOURS) + 3, rng=0)
    linearized = linearize([chain], max_children=2)
    assert linearized.num_batches > len(style.BATCH_COLOURS)
    graph = draw_linearized(linearized, [chain])
    looks = {}
    for name, attrs in graph.nodes():
        if name.startswith("n") and name[1:].isdigit():
            node = int(name[1:])
            assert f"b{int(linearized.height[node])}" in str(attrs["label"])
            looks.setdefault((attrs["fillcolor"], attrs.get("style")), set()).add(
                int(linearized.height[node]))
    assert all(len(batches) == 1 for batches in looks.values()), looks

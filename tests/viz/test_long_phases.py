"""A long phase is drawn whole: every statement of a generated 60-statement rule appears in
the loops picture's SVG text, in continued boxes of at most MAX_STATEMENTS_PER_PHASE."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ElementTree

from cortexlang.viz import style
from cortexlang.viz.loops import draw_loops, statement_text

from cortexlang.frontend.check import check_source
from cortexlang.ir import loop_walk
from cortexlang.ir import loops as L
from cortexlang.passes.pipeline import Options, run_pipeline

from .conftest import needs_graphviz

STATEMENTS = 60


def long_rule_source(statements: int) -> str:
    """A TreeFC-like model whose internal rule is a chain of `statements` elementwise steps
    (each its own statement of one phase in the loop IR)."""
    lines = ["model LongRule", "sizes H = 4, V = 16", "structure binary_tree",
             "param Emb[V, H], b[H]", "input word: token", "state h[H]",
             "leaf n:", "    h = Emb[word(n)]",
             "internal n:", "    t0 = h[left(n)] + h[right(n)]"]
    lines += [f"    t{number} = tanh(t{number - 1} + b)" for number in range(1, statements)]
    lines += [f"    h = t{statements - 1}", "output h[root]"]
    return "\n".join(lines) + "\n"


def svg_texts(svg: bytes) -> list[str]:
    """The text elements of an SVG (Graphviz writes runs of spaces as no-break spaces)."""
    namespace = "{http://www.w3.org/2000/svg}"
    return [(element.text or "").replace("\xa0", " ")
            for element in ElementTree.fromstring(svg).iter(f"{namespace}text")]


@needs_graphviz
def test_every_statement_of_a_long_phase_is_in_the_picture() -> None:
    program = check_source(long_rule_source(STATEMENTS), "long_rule.cx")
    loops = run_pipeline(program, Options(), stop_after="lower_loops")
    phase = max((stmt for stmt in loop_walk.statements(loops.body) if isinstance(stmt, L.Phase)),
                key=lambda stmt: len(list(loop_walk.statements(stmt.body))))
    statements = [statement_text(stmt) for stmt in loop_walk.statements(phase.body)
                  if isinstance(stmt, (L.Let, L.Store))]
    assert len(statements) >= STATEMENTS > style.MAX_STATEMENTS_PER_PHASE
    assert all(len(text) < 78 for text in statements)       # one line of text each
    graph = draw_loops(loops)
    svg = subprocess.run(["dot", "-Tsvg"], input=graph.source().encode(), capture_output=True,
                         check=True, timeout=60).stdout
    texts = svg_texts(svg)
    missing = [text for text in statements if text not in texts]
    assert not missing, missing
    assert not any("more statements" in text for text in texts)
    # Split into even parts, each part's box says which it is.
    parts = -(-len(statements) // style.MAX_STATEMENTS_PER_PHASE)
    labels = [text for text in texts if text.startswith(f"phase {phase.rule}.{phase.index}")]
    assert len(labels) == parts, labels
    assert labels[0].endswith(f"(part 1 of {parts})")
    assert all(label.endswith(f"(continued, part {part} of {parts})")
               for part, label in enumerate(labels[1:], start=2))

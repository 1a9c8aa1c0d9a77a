"""Every label is escaped once, by escape_label (DOT strings) or escape_html (HTML and DOT
HTML-like labels): hostile text must neither break the DOT nor the page, and must come out
of Graphviz as the same text."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from cortexlang.viz.dot import Graph, Left, render
from cortexlang.viz.escape import Html, escape_html, escape_label, html_lines, shorten

from .conftest import needs_graphviz

HOSTILE = ['a"b<script>', '"<b>&', "back\\slash\\n", "&lt;not an entity", "tab\there",
           "bell\x07", "quote ' apostrophe", "</text></svg>"]
SVG = "{http://www.w3.org/2000/svg}"


def test_escape_label_quotes_backslashes_and_entities() -> None:
    assert escape_label('a"b<script>') == 'a\\"b<script>'
    assert escape_label("back\\slash") == "back\\\\slash"
    assert escape_label("x & y") == "x &amp; y"
    assert escape_label("two\nlines") == "two\\nlines"
    assert escape_label("two\nlines", align="left") == "two\\llines\\l"
    assert "\x07" not in escape_label("bell\x07")


def test_escape_html_makes_markup_inert() -> None:
    assert escape_html('a"b<script>') == "a&quot;b&lt;script&gt;"
    assert escape_html('"<b>&') == "&quot;&lt;b&gt;&amp;"
    assert escape_html("it's") == "it&#39;s"
    assert escape_html("\x00\x1f") == "\ufffd\ufffd"
    already = Html("<B>bold</B>")
    assert escape_html(already) is already
    assert html_lines("a<\nb") == 'a&lt;<BR ALIGN="LEFT"/>b'


def test_shorten_keeps_short_text_and_marks_cuts() -> None:
    assert shorten("short") == "short"
    assert shorten("x" * 100, 10) == "x" * 9 + "\u2026"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_in_dot_source(text: str) -> None:
    graph = Graph("g")
    graph.node(text, text, tooltip=text)
    graph.node("html", Html(f"<B>{escape_html(text)}</B>"))
    graph.edge(text, "html", Left(text))
    source = graph.source()
    # Every quoted string stays closed: the only unescaped quotes delimit strings.
    for line in source.splitlines():
        unescaped = line.replace('\\\\', "").replace('\\"', "")
        assert unescaped.count('"') % 2 == 0, line


@needs_graphviz
def test_hostile_labels_survive_graphviz() -> None:
    graph = Graph("g")
    for number, text in enumerate(HOSTILE):
        graph.node(f"plain{number}", text.replace("\\n", ""), tooltip=text)
        graph.node(f"html{number}", Html(f"<I>{escape_html(text)}</I>"))
        graph.edge(f"plain{number}", f"html{number}", text)
    svg = render(graph.source(), "svg").decode("utf-8")
    root = ElementTree.fromstring(svg)  # well-formed XML whatever the labels held
    texts = {element.text for element in root.iter(f"{SVG}text")}
    assert 'a"b<script>' in texts
    assert '"<b>&' in texts
    assert "&lt;not an entity" in texts
    assert "</text></svg>" in texts
    assert "<script>" not in svg

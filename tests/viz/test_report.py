"""The HTML page: every view in order, escaped text, inline SVG with unique ids, links
from the OpenCL to the kernel IR and the .cx lines, diffs between passes."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from cortexlang.viz.explorer import explore
from cortexlang.viz.report import inline_svg, render_html

from .conftest import HOSTILE_TOKENS, small_program, small_trees


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.scripts += tag == "script"
        self.ids += [value for key, value in attrs if key == "id" and value]


def _page() -> str:
    exploration = explore(small_program(), structures=small_trees())
    return render_html(exploration, {}, {}, title='viz <of> "TreeFC"', details="a & b")


def test_page_lists_every_view_and_escapes_everything() -> None:
    page = _page()
    collector = _Collector()
    collector.feed(page)
    assert collector.scripts == 1                         # ours only; tokens stay text
    assert len(collector.ids) == len(set(collector.ids))  # no duplicate anchors
    for name in ("program", "recursive", "refactor_recursion", "loops", "kernels", "opencl",
                 "inputs", "linearized", "run"):
        assert f'id="view-{name}"' in page
    assert "viz &lt;of&gt; &quot;TreeFC&quot;" in page and "a &amp; b" in page
    assert "&quot;&lt;b&gt;&amp;" in page                # the token "<b>& in the text form
    assert "a&quot;b&lt;script&gt;" in page and HOSTILE_TOKENS[1] not in page
    assert 'id="cx-19"' in page and 'id="stage-kernels"' in page
    assert re.search(r'id="opencl-forward"', page)
    assert 'href="#cx-19"' in page                         # kernel -> .cx line
    assert "diff from 04_fold_constants" in page           # refactoring's diff
    assert page.count("Graphviz") >= 5                      # no svgs given: DOT + hint


def test_inline_svg_drops_the_prolog_and_prefixes_ids() -> None:
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "x" "y">\n<!-- g -->\n'
           '<svg><g id="graph0"><g id="node1"><a xlink:href="#opencl-k"><text>t</text></a>'
           "</g></g></svg>")
    inlined = inline_svg(svg, "v03-")
    assert inlined.startswith("<svg>")
    assert 'id="v03-graph0"' in inlined and 'id="v03-node1"' in inlined
    assert 'xlink:href="#opencl-k"' in inlined

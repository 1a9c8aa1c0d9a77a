"""The HTML explorer: one self-contained page showing every view in order.

Each view is a section: its number, name, status, compile time and one-line note; then its
picture (inline SVG; the DOT text where Graphviz is missing) beside its text form and the .cx
source with the lines it refers to highlighted; then the diff of its text from the step
before (passes of one stage). A table of contents lists every view with its status and time,
and a search box filters the views and marks the matches. The model source stands at the top
with one anchor per line (`#cx-12`), which the pictures and the OpenCL link to.

Everything is escaped with `escape_html`; the page loads nothing from outside.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from . import style
from .dot import INSTALL_HINT
from .escape import Html, escape_html
from .explorer import Exploration, View
from .opencl import kernel_ranges

MAX_DIFF_LINES = 800
_SVG_PROLOG = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", re.DOTALL)
_SVG_ID = re.compile(r'\sid="([^"]*)"')

STYLE = """
:root { --line: #d0d7de; --muted: #57606a; --changed: #d62728; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 0; color: #1f2328; background: #f6f8fa; }
header { position: sticky; top: 0; z-index: 2; background: #24292f; color: white;
         padding: 8px 16px; display: flex; gap: 16px; align-items: center; height: 46px; }
header h1 { font-size: 17px; margin: 0; white-space: nowrap; }
header .meta { color: #c9d1d9; font-size: 12px; flex: 1 1 0; min-width: 0; overflow: hidden;
               text-overflow: ellipsis; white-space: nowrap; }
header input { padding: 5px 8px; width: 280px; border-radius: 6px;
               border: 1px solid #57606a; }
#search-count { color: #c9d1d9; font-size: 12px; min-width: 90px; }
.layout { display: grid; grid-template-columns: 270px minmax(0, 1fr); }
nav { position: sticky; top: 46px; align-self: start; height: calc(100vh - 46px);
      overflow: auto; padding: 10px; border-right: 1px solid var(--line); background: white; }
nav ol { list-style: none; padding: 0; margin: 0; }
nav li a { display: flex; justify-content: space-between; gap: 6px; padding: 3px 6px;
           border-radius: 5px; color: inherit; text-decoration: none; font-size: 12.5px;
           white-space: nowrap; }
nav li a span:first-child { overflow: hidden; text-overflow: ellipsis; }
nav li a.skipped, nav li a.unavailable { color: #8c959f; }
nav li a:hover { background: #eaeef2; }
nav .time { color: var(--muted); font-size: 11px; white-space: nowrap; }
main { padding: 12px 18px 60px; min-width: 0; }
section.view, section.source-all, section.summary { background: white;
  border: 1px solid var(--line); border-radius: 8px; margin: 0 0 14px; padding: 8px 14px; }
section.source-all details, section.summary details { margin: 0; }
section h2 { font-size: 16px; margin: 2px 0 4px; display: flex; gap: 10px;
             align-items: baseline; flex-wrap: wrap; }
.badge { font-size: 11px; padding: 1px 7px; border-radius: 10px; border: 1px solid; }
.badge.stage { color: #0550ae; border-color: #0550ae; }
.badge.changed { color: var(--changed); border-color: var(--changed); }
.badge.unchanged { color: var(--muted); border-color: var(--muted); }
.badge.skipped, .badge.unavailable { color: #9a6700; border-color: #9a6700; }
.note { margin: 0 0 8px; color: #24292f; }
.seconds { color: var(--muted); font-size: 12px; font-weight: normal; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr); gap: 10px; }
.texts { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 10px; }
@media (max-width: 1100px) { .texts { grid-template-columns: minmax(0, 1fr); } }
.panel { border: 1px solid var(--line); border-radius: 6px; min-width: 0; }
.panel h3 { font-size: 12px; margin: 0; padding: 4px 8px; background: #f6f8fa;
            border-bottom: 1px solid var(--line); display: flex; gap: 8px;
            justify-content: space-between; }
.panel h3 a, .panel h3 button { font-weight: normal; font-size: 11px; }
.picture .canvas { overflow: auto; max-height: 85vh; padding: 4px; cursor: grab; }
.picture .canvas.dragging { cursor: grabbing; user-select: none; }
.picture .canvas svg { display: block; margin: 0 auto; }
.picture .zoom { font-variant-numeric: tabular-nums; color: var(--muted); min-width: 3.5em;
                 display: inline-block; text-align: right; }
pre { margin: 0; padding: 6px 8px; overflow: auto; max-height: 78vh;
      white-space: pre-wrap; overflow-wrap: anywhere;
      font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.source pre .line { display: block; }
.source pre .line.hit { background: #fff8c5; }
.source-all pre .line:target { background: #ffd33d; }
.source-all pre .line { display: block; }
.lineno { color: #8c959f; user-select: none; display: inline-block; width: 3.5em; }
.diff .add { background: #dafbe1; display: block; }
.diff .del { background: #ffebe9; display: block; }
.diff .hunk { color: #8250df; display: block; }
details { margin-top: 8px; }
summary { cursor: pointer; color: var(--accent); }
.kernel-head { background: #fff8c5; display: block; }
.kernel-head a { color: var(--accent); }
.hint { color: #9a6700; padding: 6px 8px; margin: 0; }
.hint-inline { color: var(--muted); font-weight: normal; }
mark { background: #ffd33d; padding: 0; }
.legend { font-size: 12px; color: var(--muted); margin: 6px 0 0; }
.swatch { display: inline-block; width: 11px; height: 11px; border: 1px solid #8c959f;
          margin: 0 3px 0 6px; vertical-align: -1px; }
.hidden { display: none !important; }
table.steps { border-collapse: collapse; width: 100%; font-size: 13px; }
table.steps td, table.steps th { border-bottom: 1px solid var(--line); padding: 3px 6px;
                                 text-align: left; vertical-align: top; }
table.steps td.num { text-align: right; white-space: nowrap; color: var(--muted); }
"""

SCRIPT = """
(function () {
  "use strict";
  var box = document.getElementById("search");
  var count = document.getElementById("search-count");
  var views = Array.prototype.slice.call(document.querySelectorAll("section.view"));
  function clearMarks() {
    var marks = document.querySelectorAll("mark.found");
    for (var i = 0; i < marks.length; i++) {
      var mark = marks[i], parent = mark.parentNode;
      parent.replaceChild(document.createTextNode(mark.textContent), mark);
      parent.normalize();
    }
  }
  function markIn(element, needle) {
    var walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT, null);
    var nodes = [], node, found = 0;
    while ((node = walker.nextNode())) { nodes.push(node); }
    nodes.forEach(function (text) {
      var value = text.nodeValue, lower = value.toLowerCase(), at = lower.indexOf(needle);
      if (at < 0) { return; }
      var fragment = document.createDocumentFragment(), from = 0;
      while (at >= 0) {
        fragment.appendChild(document.createTextNode(value.slice(from, at)));
        var mark = document.createElement("mark");
        mark.className = "found";
        mark.textContent = value.slice(at, at + needle.length);
        fragment.appendChild(mark);
        found += 1;
        from = at + needle.length;
        at = lower.indexOf(needle, from);
      }
      fragment.appendChild(document.createTextNode(value.slice(from)));
      text.parentNode.replaceChild(fragment, text);
    });
    return found;
  }
  function search() {
    clearMarks();
    var needle = box.value.trim().toLowerCase(), shown = 0, total = 0;
    views.forEach(function (view) {
      var link = document.querySelector('nav a[href="#' + view.id + '"]');
      var searchable = view.querySelectorAll(".searchable");
      var hits = 0;
      if (needle) {
        for (var i = 0; i < searchable.length; i++) { hits += markIn(searchable[i], needle); }
      }
      var visible = !needle || hits > 0;
      view.classList.toggle("hidden", !visible);
      if (link) { link.parentNode.classList.toggle("hidden", !visible); }
      if (visible) { shown += 1; }
      total += hits;
    });
    count.textContent = needle ? total + " matches in " + shown + " views" : "";
  }
  box.addEventListener("input", search);
  function openTarget() {
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    if (target) { target.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  // Pictures: at their natural size when they fit the panel, else fitted to its width,
  // but never below a readable scale (a wide batch of trees is then panned, not shrunk to
  // a strip); the buttons and Ctrl + wheel zoom, dragging (or scrolling) pans.
  var pictures = document.querySelectorAll(".picture");
  Array.prototype.forEach.call(pictures, function (panel) {
    var canvas = panel.querySelector(".canvas");
    var svg = canvas ? canvas.querySelector("svg") : null;
    if (!svg) { return; }
    var box = svg.viewBox && svg.viewBox.baseVal;
    var natural = box && box.width ? box.width : svg.getBoundingClientRect().width;
    var label = panel.querySelector(".zoom");
    var scale = 1;
    function apply(next) {
      scale = Math.max(0.05, Math.min(next, 8));
      svg.style.width = (natural * scale) + "px";
      svg.style.height = "auto";
      svg.style.maxWidth = "none";
      if (label) { label.textContent = Math.round(scale * 100) + "%"; }
    }
    function fit() {
      var room = canvas.clientWidth - 8;
      apply(natural > room && room > 0 ? room / natural : 1);
    }
    var room = canvas.clientWidth - 8;
    apply(natural > room && room > 0 ? Math.max(room / natural, 0.6) : 1);
    panel.querySelectorAll("button[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        var how = button.getAttribute("data-zoom");
        if (how === "fit") { fit(); } else if (how === "1") { apply(1); }
        else { apply(scale * parseFloat(how)); }
      });
    });
    canvas.addEventListener("wheel", function (event) {
      if (!event.ctrlKey) { return; }
      event.preventDefault();
      apply(scale * (event.deltaY < 0 ? 1.15 : 1 / 1.15));
    }, { passive: false });
    var start = null;
    canvas.addEventListener("mousedown", function (event) {
      if (event.target.closest("a")) { return; }
      start = { x: event.clientX, y: event.clientY, left: canvas.scrollLeft,
                top: canvas.scrollTop };
      canvas.classList.add("dragging");
    });
    window.addEventListener("mousemove", function (event) {
      if (!start) { return; }
      canvas.scrollLeft = start.left - (event.clientX - start.x);
      canvas.scrollTop = start.top - (event.clientY - start.y);
    });
    window.addEventListener("mouseup", function () {
      start = null;
      canvas.classList.remove("dragging");
    });
  });
})();
"""


def inline_svg(svg: str, prefix: str) -> Html:
    """Graphviz SVG made fit to sit inside the page: no prolog, doctype or comments, and its
    ids (and links to them) prefixed so that several pictures can share one page. Links to
    the page's own anchors (`#opencl-...`, `#cx-...`, `#stage-...`) are kept."""
    body = _SVG_PROLOG.sub("", svg).strip()

    return Html(_SVG_ID.sub(lambda match: f' id="{prefix}{match.group(1)}"', body))


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} \u00b5s"
    return f"{seconds * 1e3:.2f} ms"


def _source_lines(source: str, highlighted: Sequence[int], *, anchors: bool) -> Html:
    wanted = set(highlighted)
    parts = []
    for number, line in enumerate(source.split("\n"), start=1):
        classes = "line hit" if number in wanted else "line"
        anchor = f' id="cx-{number}"' if anchors else ""
        parts.append(f'<span class="{classes}"{anchor}><span class="lineno">{number}</span>'
                     f"{escape_html(line)}</span>")
    return Html("".join(parts))


def _diff(before: str, after: str) -> tuple[Html, int, int]:
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "before",
                                      "after", lineterm="", n=2))[2:]
    added = sum(1 for line in lines if line.startswith("+"))
    removed = sum(1 for line in lines if line.startswith("-"))
    parts = []
    for line in lines[:MAX_DIFF_LINES]:
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")
        parts.append(f'<span class="{kind}">{escape_html(line)}</span>' if kind
                     else escape_html(line) + "\n")
    if len(lines) > MAX_DIFF_LINES:
        parts.append(escape_html(f"\u2026 {len(lines) - MAX_DIFF_LINES} more diff lines\n"))
    return Html("".join(parts)), added, removed


def _opencl_text(view: View, exploration: Exploration) -> Html:
    """The OpenCL source with an anchor and links (kernel IR, .cx lines) per kernel."""
    lines = view.text.split("\n")
    ranges = kernel_ranges(view.text)
    starts = {first: name for name, (first, _) in ranges.items()}
    kernels = {kernel.name: kernel for kernel in exploration.result.kernels.kernels}
    parts: list[str] = []
    for number, line in enumerate(lines, start=1):
        name = starts.get(number)
        if name is not None:
            kernel = kernels.get(name)
            links = ['<a href="#stage-kernels">kernel IR</a>']
            if kernel is not None:
                links += [f'<a href="#cx-{cx}">.cx line {cx}</a>' for cx in kernel.source_lines]
            joined = " \u00b7 ".join(links)
            parts.append(f'<span class="kernel-head" id="opencl-{escape_html(name)}">'
                         f"\u2193 from {joined}</span>"
                         f'<span class="kernel-head">{escape_html(line)}</span>')
        else:
            parts.append(escape_html(line) + "\n")
    return Html("".join(parts))


def _picture(view: View, svgs: Mapping[str, str], files: Mapping[str, Sequence[str]]) -> str:
    links = " ".join(f'<a href="{escape_html(path)}">{escape_html(path.rsplit(".", 1)[-1])}</a>'
                     for path in files.get(view.name, ()))
    controls = ('<span class="zoom">100%</span> '
                '<button type="button" data-zoom="0.8" title="zoom out">\u2212</button>'
                '<button type="button" data-zoom="1.25" title="zoom in">+</button>'
                '<button type="button" data-zoom="fit" title="fit the width">fit</button>'
                '<button type="button" data-zoom="1" title="actual size">100%</button>')
    head = (f'<h3><span>picture <span class="hint-inline">(drag to pan, Ctrl + wheel to '
            f"zoom)</span></span><span>{links} {controls}</span></h3>")
    if view.name in svgs:
        body = f'<div class="canvas">{inline_svg(svgs[view.name], f"v{view.number:02d}-")}</div>'
    elif view.dot is not None:
        body = (f'<p class="hint">{escape_html(INSTALL_HINT)}; the DOT text follows.</p>'
                f'<pre class="dot">{escape_html(view.dot)}</pre>')
    else:
        body = f'<p class="hint">{escape_html(view.note or "no picture")}</p>'
    return f'<div class="panel picture">{head}{body}</div>'


def _section(view: View, previous: View | None, exploration: Exploration,
             svgs: Mapping[str, str], files: Mapping[str, Sequence[str]]) -> str:
    anchor = f'<a id="stage-{escape_html(view.stage)}"></a>' if view.kind == "stage" \
        and view.stage else ""
    badge = f'<span class="badge {escape_html(view.status)}">{escape_html(view.status)}</span>'
    head = (f'<h2>{anchor}<span class="searchable">{view.number:02d} \u00b7 '
            f"{escape_html(view.title)}</span>{badge}<span class=\"seconds\">"
            f"{escape_html(_seconds(view.seconds))}</span></h2>"
            f'<p class="note searchable">{escape_html(view.note)}</p>')
    if view.status in ("skipped", "unavailable") and not view.text:
        return f'<section class="view" id="view-{escape_html(view.name)}">{head}</section>'
    text = _opencl_text(view, exploration) if view.stage == "opencl" \
        else escape_html(view.text)
    text_panel = (f'<div class="panel text"><h3><span>text form</span>'
                  f'{_file_link(files, view.name, "txt")}</h3>'
                  f'<pre class="searchable">{text}</pre></div>')
    source = exploration.program.source
    source_panel = (f'<div class="panel source"><h3><span>.cx source</span><span>'
                    f'{len(view.lines)} lines used</span></h3><pre>'
                    f"{_source_lines(source, view.lines, anchors=False)}</pre></div>")
    body = (f'<div class="columns">{_picture(view, svgs, files)}<div class="texts">'
            f"{text_panel}{source_panel}</div></div>")
    diff = ""
    if previous is not None and view.stage and previous.stage != view.stage:
        diff = (f"<details><summary>a new stage: {escape_html(view.stage)} IR has node kinds "
                f"of its own, so it is not diffed against {escape_html(previous.slug)}"
                "</summary></details>")
    elif previous is not None and view.stage and previous.text:
        if previous.text == view.text:
            diff = "<details><summary>no change in the text form from the step before" \
                   "</summary></details>"
        else:
            lines, added, removed = _diff(previous.text, view.text)
            diff = (f"<details><summary>diff from {escape_html(previous.slug)} (+{added} "
                    f"\u2212{removed} lines)</summary><pre class=\"diff searchable\">{lines}"
                    "</pre></details>")
    return (f'<section class="view" id="view-{escape_html(view.name)}">{head}{body}{diff}'
            "</section>")


def _file_link(files: Mapping[str, Sequence[str]], name: str, extension: str) -> str:
    for path in files.get(name, ()):
        if path.endswith("." + extension):
            return f'<a href="{escape_html(path)}">{escape_html(extension)}</a>'
    return ""


def _legend() -> str:
    swatches = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{escape_html(name)} '
        for role, colour in style.ROLE_COLOURS.items()
        for name in [style.ROLE_NAMES.get(role, role)])
    children = "".join(f'<span class="swatch" style="background:{style.child_colour(index)}">'
                       f"</span>child {index} " for index in range(2))
    return ('<p class="legend">' + swatches + f'\u00b7 <span class="swatch" style="border:2px '
            f'solid {style.CHANGED_COLOUR};background:white"></span>changed by the pass shown '
            f"\u00b7 edges of a child: {children}\u00b7 orange dashed: an indirect access "
            "(through children[...] or a token) \u00b7 in the linearized batch, colour = batch"
            "</p>")


def render_html(exploration: Exploration, svgs: Mapping[str, str],
                files: Mapping[str, Sequence[str]], *, title: str, details: str) -> str:
    """The whole page. `svgs`: view name -> SVG text; `files`: view name -> the relative
    paths of its written files; `details` one line under the title (options, device)."""
    views = exploration.views
    navigation = "".join(
        f'<li><a class="{escape_html(view.status)}" href="#view-{escape_html(view.name)}">'
        f'<span>{view.number:02d} '
        f"{escape_html(view.name)}</span><span class=\"time\">{escape_html(view.status)} "
        f"{escape_html(_seconds(view.seconds))}</span></a></li>" for view in views)
    rows = "".join(
        f'<tr><td class="num">{view.number:02d}</td><td><a href="#view-'
        f'{escape_html(view.name)}">{escape_html(view.name)}</a></td><td>'
        f"{escape_html(view.status)}</td><td class=\"num\">{escape_html(_seconds(view.seconds))}"
        f"</td><td>{escape_html(view.note)}</td></tr>" for view in views)
    summary = ('<section class="summary"><details><summary>every step: status, time and '
               'what it did</summary><table class="steps"><tr><th>#</th><th>view</th>'
               "<th>status</th><th>time</th><th>what it did</th></tr>"
               f"{rows}</table></details>{_legend()}</section>")
    source = ('<section class="source-all" id="source"><details><summary>the model source: '
              f"{escape_html(exploration.program.path)}</summary><pre>"
              f"{_source_lines(exploration.program.source, (), anchors=True)}</pre></details>"
              "</section>")
    sections = []
    previous: View | None = None
    for view in views:
        sections.append(_section(view, previous, exploration, svgs, files))
        if view.text:
            previous = view
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape_html(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{escape_html(title)}</h1><span class=\"meta\" "
            f"title=\"{escape_html(details)}\">"
            f"{escape_html(details)}</span><input id=\"search\" type=\"search\" "
            'placeholder="search every stage (e.g. h_W, children, forward)" '
            'aria-label="search"><span id="search-count"></span></header>'
            f'<div class="layout"><nav><ol>{navigation}</ol></nav><main>{summary}{source}'
            f"{''.join(sections)}</main></div><script>{SCRIPT}</script></body></html>\n")

"""A small DOT writer and the call to Graphviz: every picture is built here, so every label is
escaped in one place.

`Graph` collects nodes, edges and nested clusters in insertion order (the renderers insert in
sorted or program order, so the text is deterministic) and prints DOT. Attribute values are
always quoted with `escape_label`; a label given as `Html` is printed as an HTML-like label
(`label=<...>`), and builders make `Html` only from `escape_html`-ed pieces. `render` runs
the `dot` executable; `graphviz_available` tells whether there is one.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TypeVar

from .escape import Html, escape_label

INSTALL_HINT = ("install Graphviz to render the pictures: `apt-get install graphviz` "
                "(Debian, Ubuntu), `brew install graphviz` (macOS), or `make setup`")
RENDER_TIMEOUT_SECONDS = 60
_T = TypeVar("_T", "_Node", "_Edge")


class Left(str):
    """A plain label whose lines are left-aligned (`\\l` line ends)."""

    __slots__ = ()


def _attribute(key: str, value: object) -> str:
    if isinstance(value, Html):
        return f"{key}=<{value}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    align = "left" if isinstance(value, Left) else "center"
    return f'{key}="{escape_label(value, align=align)}"'


def _attributes(attrs: dict[str, object]) -> str:
    parts = [_attribute(key, value) for key, value in attrs.items() if value is not None]
    return f" [{', '.join(parts)}]" if parts else ""


def _identifier(name: str) -> str:
    return f'"{escape_label(name)}"'


@dataclass
class _Node:
    name: str
    attrs: dict[str, object]


@dataclass
class _Edge:
    tail: str
    head: str
    attrs: dict[str, object]


@dataclass
class Graph:
    """A graph or a (cluster) subgraph. A `Left` label is left-aligned; an `Html` label is
    an HTML-like label. The graph attribute `layout` picks the Graphviz engine."""

    name: str
    attrs: dict[str, object] = field(default_factory=dict)
    node_defaults: dict[str, object] = field(default_factory=dict)
    edge_defaults: dict[str, object] = field(default_factory=dict)
    directed: bool = True
    _items: list[_Node | _Edge | Graph] = field(default_factory=list)

    def node(self, name: str, label: object = None, **attrs: object) -> str:
        """Add a node (or mention an existing one, e.g. in a rank); returns its name."""
        if label is not None:
            attrs = {"label": label, **attrs}
        self._items.append(_Node(name, attrs))
        return name

    def edge(self, tail: str, head: str, label: object = None, **attrs: object) -> None:
        if label is not None:
            attrs = {"label": label, **attrs}
        self._items.append(_Edge(tail, head, attrs))

    def subgraph(self, name: str, *, cluster: bool = True, **attrs: object) -> Graph:
        """A nested subgraph (a drawn box when `cluster`); the rank=same kind has
        `cluster=False, rank="same"`."""
        child = Graph(f"cluster_{name}" if cluster else name, dict(attrs),
                      directed=self.directed)
        self._items.append(child)
        return child

    def nodes(self) -> list[tuple[str, dict[str, object]]]:
        """Every node of this graph and its subgraphs, in order of first mention, with the
        attributes of all its mentions merged: (name, attributes)."""
        merged: dict[str, dict[str, object]] = {}
        for node in self._walk(_Node):
            merged.setdefault(node.name, {}).update(node.attrs)
        return list(merged.items())

    def edge_items(self) -> list[_Edge]:
        """The edges of this graph and its subgraphs themselves, for a renderer that
        reroutes edges once its nodes are known."""
        return self._walk(_Edge)

    def edges(self) -> list[tuple[str, str, dict[str, object]]]:
        """Every edge of this graph and its subgraphs, in order: (tail, head, attributes)."""
        return [(edge.tail, edge.head, edge.attrs) for edge in self._walk(_Edge)]

    def _walk(self, kind: type[_T]) -> list[_T]:
        found: list[_T] = []
        for item in self._items:
            if isinstance(item, Graph):
                found.extend(item._walk(kind))
            elif isinstance(item, kind):
                found.append(item)
        return found

    def source(self) -> str:
        """The DOT text."""
        lines: list[str] = []
        keyword = "digraph" if self.directed else "graph"
        self._write(lines, f"{keyword} {_identifier(self.name)}", 0)
        return "\n".join(lines) + "\n"

    def _write(self, lines: list[str], header: str, depth: int) -> None:
        pad = "    " * depth
        lines.append(f"{pad}{header} {{")
        inner = pad + "    "
        for key, value in self.attrs.items():
            if value is not None:
                lines.append(f"{inner}{_attribute(key, value)};")
        if self.node_defaults:
            lines.append(f"{inner}node{_attributes(self.node_defaults)};")
        if self.edge_defaults:
            lines.append(f"{inner}edge{_attributes(self.edge_defaults)};")
        arrow = "->" if self.directed else "--"
        for item in self._items:
            if isinstance(item, _Node):
                lines.append(f"{inner}{_identifier(item.name)}{_attributes(item.attrs)};")
            elif isinstance(item, _Edge):
                lines.append(f"{inner}{_identifier(item.tail)} {arrow} "
                             f"{_identifier(item.head)}{_attributes(item.attrs)};")
            else:
                item._write(lines, f"subgraph {_identifier(item.name)}", depth + 1)
        lines.append(f"{pad}}}")


def graphviz_available() -> bool:
    """Whether the `dot` executable is on PATH."""
    return shutil.which("dot") is not None


class RenderError(Exception):
    """Graphviz failed on a picture (a bug in a renderer: the DOT text is kept)."""


def render(dot_text: str, output_format: str) -> bytes:
    """Run Graphviz on `dot_text` (its `layout` attribute picks the engine); returns the
    picture's bytes (svg, png). Raises FileNotFoundError without Graphviz, RenderError when
    Graphviz rejects the text or takes more than RENDER_TIMEOUT_SECONDS."""
    executable = shutil.which("dot")
    if executable is None:
        raise FileNotFoundError("dot")
    command = [executable, f"-T{output_format}"]
    try:
        result = subprocess.run(command, input=dot_text.encode("utf-8"), capture_output=True,
                                timeout=RENDER_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as slow:
        raise RenderError(f"Graphviz took more than {RENDER_TIMEOUT_SECONDS} s to lay out "
                          "this picture (too large to draw; its text form is complete)") \
            from slow
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RenderError(message or f"dot exited with {result.returncode}")
    return result.stdout

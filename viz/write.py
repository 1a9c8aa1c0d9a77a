"""Write an exploration to a folder: a numbered file per view and one index.html.

For every view: `NN_name.txt` (its text form) and its picture as `NN_name.svg`, `.png` or
`.dot`; then `index.html`, the self-contained explorer. Pictures are rendered by Graphviz in
parallel (one `dot` process each). Without Graphviz the DOT text is written instead and the
page shows it, with how to install Graphviz; the caller decides whether that is an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cortexlang import atomic

from .dot import RenderError, graphviz_available, render
from .explorer import Exploration, View
from .report import render_html

FORMATS = ("svg", "png", "dot", "html")


@dataclass
class Written:
    """What `write_exploration` wrote: paths relative to the folder, per view name."""

    directory: Path
    files: dict[str, list[str]] = field(default_factory=dict)
    index: str = "index.html"
    graphviz_missing: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (view slug, message)

    def all_files(self) -> list[str]:
        return [path for paths in self.files.values() for path in paths] + [self.index]


def _render_all(views: Sequence[View], output_format: str) -> dict[str, bytes | Exception]:
    """Render every view's DOT in `output_format`, in parallel; failures are returned."""
    def one(view: View) -> bytes | Exception:
        try:
            return render(view.dot or "", output_format)
        except (RenderError, OSError) as error:
            return error

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, views))
    return {view.name: result for view, result in zip(views, results, strict=True)}


def write_exploration(exploration: Exploration, directory: str | os.PathLike[str],
                      output_format: str = "svg", *, title: str, details: str,
                      views: Sequence[View] | None = None) -> Written:
    """Write `views` (default: all) of `exploration` to `directory` in `output_format`
    (svg, png, dot: a file per picture; html: the page only) and index.html."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = list(exploration.views if views is None else views)
    written = Written(folder)
    pictured = [view for view in chosen if view.dot is not None]
    available = graphviz_available()
    written.graphviz_missing = not available and bool(pictured)
    svgs: dict[str, str] = {}
    if available and pictured:
        for name, result in _render_all(pictured, "svg").items():
            if isinstance(result, Exception):
                slug = next(view.slug for view in pictured if view.name == name)
                written.failures.append((slug, str(result)))
            else:
                svgs[name] = result.decode("utf-8")
    pngs: dict[str, bytes | Exception] = {}
    if available and output_format == "png":
        pngs = _render_all([view for view in pictured if view.name in svgs], "png")
    for view in chosen:
        paths: list[str] = []
        if view.text:
            paths.append(f"{view.slug}.txt")
            atomic.write_text(folder / paths[-1], view.text)
        if view.dot is not None and output_format != "html":
            if output_format == "svg" and view.name in svgs:
                paths.append(f"{view.slug}.svg")
                atomic.write_text(folder / paths[-1], svgs[view.name])
            elif output_format == "png" and isinstance(pngs.get(view.name), bytes):
                paths.append(f"{view.slug}.png")
                atomic.write_bytes(folder / paths[-1], pngs[view.name])  # type: ignore[arg-type]
            else:
                paths.append(f"{view.slug}.dot")
                atomic.write_text(folder / paths[-1], view.dot)
        if view.dot is not None and view.name not in svgs and output_format == "html":
            paths.append(f"{view.slug}.dot")
            atomic.write_text(folder / paths[-1], view.dot)
        written.files[view.name] = paths
    shown = Exploration(exploration.program, exploration.options, tuple(chosen),
                        exploration.result, exploration.linearized, exploration.measurement)
    atomic.write_text(folder / written.index, render_html(shown, svgs, written.files,
                                                          title=title, details=details))
    return written

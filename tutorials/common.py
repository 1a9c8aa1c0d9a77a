"""What every lesson shares: where the data and the outputs are, running the command line,
drawing pictures, compiling a model and timing it.

The lessons import this module as `common` (the lessons' folder is on the import path when a
lesson runs as a script, and is the working folder when it opens as a notebook). Nothing
here teaches anything on its own: each helper is something a lesson would otherwise repeat.

Environment variables (all optional):

    CORTEXLANG_TUTORIAL_OUT        where lessons write their files (default: out/tutorials)
    CORTEXLANG_TUTORIAL_SOLUTIONS  1: the exercises use the instructor's solutions
    CORTEXLANG_SST                 an SST split in PTB form to use instead of the default
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SAMPLE_TREES = EXAMPLES / "data" / "sample.ptb"
# The Stanford Sentiment Treebank's test split, where a checkout keeps it beside or inside the
# repository (it is not part of the repository: see examples/data/README.md).
SST_CANDIDATES = (REPO / "shared" / "data" / "sst" / "test.txt",
                  REPO.parent / "shared" / "data" / "sst" / "test.txt")


def solutions_enabled() -> bool:
    """Whether the exercises run the instructor's solutions (`--solutions` on the command
    line, or CORTEXLANG_TUTORIAL_SOLUTIONS=1)."""
    flag = os.environ.get("CORTEXLANG_TUTORIAL_SOLUTIONS", "").strip().lower()
    return flag in ("1", "true", "yes") or "--solutions" in sys.argv[1:]


def out_dir(lesson: str) -> Path:
    """The folder a lesson writes its files to (made if missing)."""
    root = os.environ.get("CORTEXLANG_TUTORIAL_OUT")
    folder = (Path(root) if root else REPO / "out" / "tutorials") / lesson
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def relative(path: Path | str) -> str:
    """`path` relative to the repository when it is inside it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# -- data -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TreeData:
    """Trees for a lesson: the structures, their vocabulary and where they came from."""

    path: Path
    structures: tuple[Any, ...]
    vocab: Any
    description: str


def tree_file() -> tuple[Path, str]:
    """The tree file lessons use: SST's test split when present, else the bundled sample."""
    chosen = os.environ.get("CORTEXLANG_SST")
    if chosen:
        return Path(chosen), f"the SST file named by CORTEXLANG_SST ({chosen})"
    for candidate in SST_CANDIDATES:
        if candidate.is_file():
            return candidate, f"the Stanford Sentiment Treebank, test split ({candidate})"
    return SAMPLE_TREES, (f"the bundled sample {relative(SAMPLE_TREES)} (hand-written "
                          "SST-style trees; the SST files were not found)")


def load_trees(limit: int) -> TreeData:
    """The first `limit` trees of `tree_file()`, with the vocabulary built from the file.
    Prints which data the lesson uses."""
    from cortexlang.inputs.load import load_structures

    path, description = tree_file()
    loaded = load_structures(path)
    structures = tuple(loaded.structures[:limit])
    nodes = sum(structure.num_nodes for structure in structures)
    print(f"data: {description}")
    print(f"      {len(loaded.structures)} trees in the file, {len(loaded.vocab)} words in its "
          f"vocabulary; this lesson uses the first {len(structures)} ({nodes} nodes)")
    return TreeData(path, structures, loaded.vocab, description)


# -- the command line --------------------------------------------------------------------------

def cortexlang_command() -> list[str]:
    """How to start the `cortexlang` command of the running Python environment."""
    script = Path(sys.executable).parent / "cortexlang"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cortexlang.cli import main; "
            "sys.exit(main())"]


def cortexlang(*arguments: str | Path, show: bool = True, max_lines: int | None = 60,
               expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run `cortexlang ARGUMENTS...` from the repository root, print the command and what it
    printed (at most `max_lines` lines), and return the finished process.

    `expect` is the exit code the lesson expects (None: any); another one stops the lesson,
    since the text around the command would no longer be true."""
    words = [relative(a) if isinstance(a, Path) else a for a in arguments]
    environment = {**os.environ, "COLUMNS": "100"}
    finished = subprocess.run(cortexlang_command() + words, cwd=REPO, capture_output=True,
                              text=True, env=environment, check=False)
    if show:
        print("$ cortexlang " + " ".join(words))
        text = (finished.stdout + finished.stderr).rstrip("\n")
        lines = text.split("\n") if text else []
        if max_lines is not None and len(lines) > max_lines:
            hidden = len(lines) - max_lines
            lines = lines[:max_lines] + [f"... ({hidden} more lines)"]
        print("\n".join(lines))
        print(f"[exit code {finished.returncode}]\n")
    if expect is not None and finished.returncode != expect:
        raise RuntimeError(f"`cortexlang {' '.join(words)}` exited with "
                           f"{finished.returncode}, not {expect}:\n{finished.stderr}")
    return finished


def command_exists(name: str) -> bool:
    """Whether this checkout's `cortexlang` has the subcommand `name` (some are new)."""
    from cortexlang.commands import COMMAND_MODULES

    return name in COMMAND_MODULES


# -- pictures -----------------------------------------------------------------------------------

def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (where pictures can be shown inline)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show_picture(path: Path | str) -> None:
    """Show an SVG picture: inline in a notebook, its path when the lesson runs as a
    script (open it in a browser)."""
    if in_notebook():
        from IPython.display import SVG, display

        display(SVG(filename=str(path)))
    print(f"picture: {relative(path)}")


def show_pictures(folder: Path, *names: str) -> None:
    """Show the pictures `NN_name.svg` that `cortexlang viz` wrote into `folder`, in the
    order of `names`."""
    for name in names:
        for path in sorted(folder.glob(f"[0-9][0-9]_{name}.svg")):
            show_picture(path)
    print(f"all views, each beside its text: {relative(folder / 'index.html')}")


def save_picture(dot_text: str, folder: Path, name: str) -> Path | None:
    """Write `name.dot` and, when Graphviz is installed, `name.svg`, and show it
    (`show_picture`). Returns the SVG's path, or None without Graphviz."""
    dot_path = folder / f"{name}.dot"
    dot_path.write_text(dot_text)
    executable = shutil.which("dot")
    if executable is None:
        print(f"picture: {dot_path} (install Graphviz to get the SVG: make setup)")
        return None
    svg_path = folder / f"{name}.svg"
    subprocess.run([executable, "-Tsvg", "-o", str(svg_path), str(dot_path)], check=True)
    show_picture(svg_path)
    return svg_path


# -- compiling and timing -------------------------------------------------------------------------

def device() -> Any:
    """The OpenCL device `cortexlang devices` would choose."""
    from cortexlang.runtime.devices import select_device

    return select_device()


def compile_model(program: Any, options: Any, weights: Mapping[str, np.ndarray],
                  limits: Any = None) -> Any:
    """The program compiled with `options` for the default device, weights bound: a
    `CompiledModel` whose `run(structures)` returns `Outputs`. `limits` replaces the
    device's limits as the kernel planner sees them (default: the device's own)."""
    from cortexlang.passes.pipeline import run_pipeline
    from cortexlang.runtime.execute import CompiledModel, device_limits

    chosen = device()
    result = run_pipeline(program, options, limits or device_limits(chosen))
    model = CompiledModel(result, chosen)
    model.bind_weights(weights)
    return model


def median_ms(function: Callable[[], object], warmup: int = 2, repeats: int = 7) -> float:
    """The median wall time of `function()` in milliseconds, after `warmup` untimed calls
    (the first call builds kernels and fills caches; it is not what we want to measure).
    Lesson 6 asks you to write this yourself."""
    for _ in range(warmup):
        function()
    samples = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            samples.append((time.perf_counter() - started) * 1e3)
    finally:
        if collecting:
            gc.enable()
    return float(np.median(samples))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns aligned, numbers right-aligned."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    cells = [[cell(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) if cells else len(header)
              for i, header in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(value.rjust(width) if right else value.ljust(width)
                         for value, width, right in zip(values, widths, numeric, strict=True)
                         ).rstrip()

    return "\n".join([line(list(headers)), line(["-" * width for width in widths])]
                     + [line(row) for row in cells])

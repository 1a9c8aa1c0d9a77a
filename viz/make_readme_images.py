"""Make the README's two pictures from the checkout, deterministically:

    docs/images/linearized_sst.svg   two SST-format trees of examples/data/sample.ptb (hand
                                     written, not corpus text) as the linearizer numbers and
                                     batches them, with batch_start, batch_len and children
    docs/images/kernel_plan.svg      the kernel plan of examples/sentiment.cx (TreeLSTM with a
                                     sentiment head, full size) with one launch per level, for
                                     fixed GPU-like limits (not the machine's device)

Run from the repository root after `make setup` (needs Graphviz):

    .venv/bin/python -m cortexlang.viz.make_readme_images

The same pictures come from `cortexlang viz ... --stage linearized --stage kernels`; this
script fixes the inputs and the device limits so that the committed files do not depend on the
machine that made them.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from cortexlang import atomic
from cortexlang.frontend.check import load_program
from cortexlang.inputs.load import load_structures
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.linearize import linearize

from .dot import INSTALL_HINT, graphviz_available, render
from .inputs import draw_linearized
from .kernels import draw_kernels

SAMPLE = "examples/data/sample.ptb"
TREES = (0, 4)          # "The acting is simply superb ." and "The dialogue feels stiff ."
LIMITS = DeviceLimits(max_work_group_size=256, local_mem_size=49152, is_gpu=True,
                      preferred_vector_width=1)


def make_images(root: Path) -> list[Path]:
    """Write both pictures under `root`/docs/images; returns their paths."""
    images = root / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    loaded = load_structures(root / SAMPLE, None, max_children=2)
    # Name the file as the checkout does, so the picture does not carry this machine's path.
    trees = [replace(loaded.structures[index],
                     meta={**loaded.structures[index].meta, "path": SAMPLE})
             for index in TREES]
    linearized = linearize(trees, max_children=2)
    program = load_program(str(root / "examples" / "sentiment.cx"), {})
    result = run_pipeline(program, Options().without("fuse_levels"), LIMITS)
    pictures = {"linearized_sst.svg": draw_linearized(linearized, trees),
                "kernel_plan.svg": draw_kernels(result.kernels)}
    written = []
    for name, graph in pictures.items():
        path = images / name
        atomic.write_bytes(path, render(graph.source(), "svg"))
        written.append(path)
    return written


def main() -> int:
    if not graphviz_available():
        print(f"make_readme_images: {INSTALL_HINT}", file=sys.stderr)
        return 3
    for path in make_images(Path(__file__).resolve().parents[1]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's pictures come from a script, deterministically, from the checkout's files."""

from __future__ import annotations

import shutil
from pathlib import Path

from cortexlang.viz.make_readme_images import make_images

from .conftest import EXAMPLES, needs_graphviz


@needs_graphviz
def test_readme_images_are_made_deterministically(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "examples" / "data").mkdir(parents=True)
    shutil.copy(EXAMPLES / "sentiment.cx", root / "examples")
    shutil.copy(EXAMPLES / "data" / "sample.ptb", root / "examples" / "data")
    first = {path.name: path.read_bytes() for path in make_images(root)}
    second = {path.name: path.read_bytes() for path in make_images(root)}
    assert first == second
    assert set(first) == {"linearized_sst.svg", "kernel_plan.svg"}
    linearized = first["linearized_sst.svg"].decode("utf-8")
    assert "superb" in linearized and "dialogue" in linearized and "batch_start" in linearized
    assert str(tmp_path) not in linearized             # no machine-specific path
    plan = first["kernel_plan.svg"].decode("utf-8")
    assert "internal_phase0" in plan and "launch order of one run" in plan

"""`cortexlang viz`: the files it writes, which views, formats, and what happens without
Graphviz or without an OpenCL device."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cortexlang.cli import main

from .conftest import EXAMPLES, SMALL_TREES, needs_graphviz

TREEFC = str(EXAMPLES / "treefc.cx")
SIZES = ["-D", "H=4", "-D", "V=16"]


@pytest.fixture
def trees_file(tmp_path: Path) -> str:
    path = tmp_path / "trees.ptb"
    path.write_text(SMALL_TREES, encoding="utf-8")
    return str(path)


@needs_graphviz
def test_default_writes_a_numbered_picture_and_text_per_view(
        tmp_path: Path, trees_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["viz", TREEFC, *SIZES, "--trees", trees_file, "--no-run", "-o",
                 str(out)]) == 0
    files = sorted(path.name for path in out.iterdir())
    assert "01_program.svg" in files and "01_program.txt" in files
    assert "02_recursive.svg" in files and "05_refactor_recursion.svg" in files
    assert any(name.endswith("_loops.svg") for name in files)
    assert any(name.endswith("_kernels.svg") for name in files)
    assert any(name.endswith("_opencl.svg") for name in files)
    assert any(name.endswith("_linearized.svg") for name in files)
    assert not any(name.endswith("_run.svg") for name in files)
    assert "index.html" in files
    output = capsys.readouterr().out
    assert "refactor_recursion" in output and "moved W @ h" in output
    assert "skipped: --no-run" in output
    svg = (out / "01_program.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "h[child 0]" in svg


@needs_graphviz
def test_stage_selection_and_formats(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dot"
    assert main(["viz", TREEFC, *SIZES, "--synthetic", "2", "--batch", "2", "--stage", "loops",
                 "--stage", "plan_kernels", "--format", "dot", "-o", str(out)]) == 0
    files = sorted(path.name for path in out.iterdir())
    dots = [name for name in files if name.endswith(".dot")]
    assert len(dots) == 2 and dots[0].endswith("_loops.dot") and dots[1].endswith("_kernels.dot")
    assert all(name.endswith(("_loops.dot", "_loops.txt", "_kernels.dot", "_kernels.txt"))
               or name == "index.html" for name in files)
    out = tmp_path / "png"
    assert main(["viz", TREEFC, *SIZES, "--stage", "program", "--format", "png", "--no-run",
                 "-o", str(out)]) == 0
    assert (out / "01_program.png").read_bytes().startswith(b"\x89PNG")
    assert main(["viz", TREEFC, "--stage", "nonsense", "-o", str(out)]) == 2
    assert "E0704" in capsys.readouterr().err


def test_without_graphviz_the_dot_text_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    assert main(["viz", TREEFC, *SIZES, "--no-run", "-o", str(out)]) == 0
    assert (out / "01_program.dot").read_text(encoding="utf-8").startswith('digraph "program"')
    assert not list(out.glob("*.svg"))
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "apt-get install graphviz" in page and "digraph &quot;program&quot;" in page
    assert "apt-get install graphviz" in capsys.readouterr().err
    # A rendered format asked for explicitly: the DOT is still written, then exit 3.
    assert main(["viz", TREEFC, *SIZES, "--no-run", "--format", "svg", "-o", str(out)]) == 3
    assert "E0610" in capsys.readouterr().err
    assert main(["viz", TREEFC, *SIZES, "--no-run", "--format", "dot", "-o", str(out)]) == 0


def test_no_device_skips_the_run_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from cortexlang.errors import Diagnostic, EnvironmentProblem
    from cortexlang.runtime import devices

    def no_device(*args: object, **kwargs: object) -> object:
        raise EnvironmentProblem(Diagnostic("E0603", "no OpenCL device works"))

    monkeypatch.setattr(devices, "select_device", no_device)
    out = tmp_path / "out"
    assert main(["viz", TREEFC, *SIZES, "--stage", "run", "--format", "dot", "-o",
                 str(out)]) == 0
    assert "skipped: no working OpenCL device" in capsys.readouterr().out
    assert "no working OpenCL device" in (out / "index.html").read_text(encoding="utf-8")


@needs_graphviz
@pytest.mark.opencl
def test_a_measured_run_is_drawn(tmp_path: Path, trees_file: str, opencl_device: object,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["viz", TREEFC, *SIZES, "--trees", trees_file, "--disable", "fuse_levels",
                 "--stage", "run", "--stage", "linearized", "-o", str(out)]) == 0
    run = next(out.glob("*_run.txt")).read_text(encoding="utf-8")
    assert "launches:" in run and "internal_phase0" in run
    assert "internal_phase0" in next(out.glob("*_run.svg")).read_text(encoding="utf-8")
    assert os.path.getsize(out / "index.html") > 1000


@needs_graphviz
def test_a_batch_cut_by_max_nodes_is_a_warning_with_the_value_that_lifts_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["viz", TREEFC, *SIZES, "--synthetic", "6", "--batch", "6", "--max-nodes", "30",
                 "--stage", "inputs", "--no-run", "-o", str(out)]) == 0
    error = capsys.readouterr().err
    assert "warning: drawing" in error and "of the 6 structures" in error
    needed = int(error.split("--max-nodes ")[-1].split()[0])
    assert main(["viz", TREEFC, *SIZES, "--synthetic", "6", "--batch", "6", "--max-nodes",
                 str(needed), "--stage", "inputs", "--no-run", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_grid_features_narrower_than_the_model_say_which_size_to_set(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["viz", str(EXAMPLES / "dagrnn.cx"), "--trees",
                 str(EXAMPLES / "data" / "grid_4x4.json"), "--no-run", "-o", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 1 and "E0556" in error and "-D X=4" in error

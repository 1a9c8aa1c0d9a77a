"""`cortexlang run`: every example end to end, its outputs, and every class of failure."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cortexlang import atomic, backends
from cortexlang.cli import main
from cortexlang.commands.loading import synthetic_structures
from cortexlang.errors import Diagnostic, EnvironmentProblem
from cortexlang.frontend.check import load_program
from cortexlang.inputs import generators
from cortexlang.inputs.jsontrees import write_json
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMALL = {"treefc": ["-D", "V=60"], "treegru": ["-D", "V=60"], "treelstm": ["-D", "V=60"],
         "sentiment": ["-D", "V=60"], "mvrnn": ["-D", "V=60", "-D", "M=4"],
         "dagrnn": ["-D", "X=6"], "childsum_treelstm": ["-D", "V=60"],
         "lstm_sequence": ["-D", "V=60"]}


def example(name: str) -> str:
    return str(EXAMPLES / f"{name}.cx")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_example_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", example(name), "--synthetic", "3", "-D", "H=8", *SMALL[name]]) == 0
    captured = capsys.readouterr()
    assert "structure 2" in captured.out and captured.err == ""
    summary = run_json(capsys, example(name), "--synthetic", "3", "-D", "H=8", *SMALL[name])
    assert summary["inputs"]["structures"] == 3
    assert summary["backend"] == backends.DEFAULT_BACKEND and summary["dtype"] == "float32"
    for output in summary["outputs"].values():
        assert len(output["preview"]) == 3 and len(output["preview"][0]) <= 6


def test_out_archive_holds_the_interpreters_results(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.npz"
    summary = run_json(capsys, example("sentiment"), "--synthetic", "5", "-D", "H=8",
                       "-D", "V=60", "--seed", "4", "--out", str(out), "--chunk", "2",
                       "--backend", "interp")
    assert summary["out"] == str(out)
    program = load_program(example("sentiment"), {"H": 8, "V": 60})
    expected = interpret(program, synthetic_structures(program, 5, 4),
                         init_weights(program.params, 4))
    with np.load(out) as archive:
        assert sorted(archive.files) == ["node_offset", "outputs/h", "outputs/sentiment",
                                         "states/c", "states/h"]
        np.testing.assert_array_equal(archive["node_offset"], expected.node_offset)
        np.testing.assert_array_equal(archive["outputs/h"], expected.outputs["h"])
        np.testing.assert_array_equal(archive["outputs/sentiment"],
                                      expected.outputs["sentiment"])
        np.testing.assert_array_equal(archive["states/c"], expected.states["c"])
    assert [path.name for path in tmp_path.iterdir()] == ["result.npz"]


def test_float64_limit_and_trees_file(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    trees = tmp_path / "trees.ptb"
    trees.write_text("(2 (1 good) (2 film))\n(3 (2 a) (3 (2 good) (2 plot)))\n(1 bad)\n")
    summary = run_json(capsys, example("treelstm"), "--trees", str(trees), "-D", "H=4",
                       "-D", "V=10", "--float64", "--limit", "2")
    assert summary["dtype"] == "float64"
    assert summary["inputs"] == {"source": str(trees), "structures": 2, "nodes": 8,
                                 "vocabulary": 6}
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("<unk>\ngood\n")
    summary = run_json(capsys, example("treelstm"), "--trees", str(trees), "--vocab",
                       str(vocab), "-D", "H=4", "-D", "V=2")
    assert summary["inputs"]["vocabulary"] == 2


def test_json_grids_with_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grids = [generators.grid(rows, cols, 6, rng=rows) for rows, cols in ((2, 3), (1, 1))]
    path = tmp_path / "grids.jsonl"
    write_json(grids, path)
    out = tmp_path / "out.npz"
    summary = run_json(capsys, example("dagrnn"), "--trees", str(path), "-D", "H=8",
                       "-D", "X=6", "--float64", "--out", str(out))
    assert summary["inputs"]["structures"] == 2 and summary["inputs"]["nodes"] == 7
    program = load_program(example("dagrnn"), {"H": 8, "X": 6})
    expected = interpret(program, grids, init_weights(program.params, 0, dtype=np.float64),
                         dtype=np.float64)
    with np.load(out) as archive:
        np.testing.assert_allclose(archive["outputs/h"], expected.outputs["h"], rtol=1e-12)
    assert main(["run", example("dagrnn"), "--trees", str(path), "-D", "X=5"]) == 1
    assert "E0556" in capsys.readouterr().err


def test_a_vocabulary_larger_than_the_model_is_a_user_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trees = tmp_path / "trees.ptb"
    trees.write_text("(2 (1 good) (2 film))\n")
    assert main(["run", example("treefc"), "--trees", str(trees), "-D", "V=2"]) == 1
    assert "E0522" in capsys.readouterr().err


def test_errors_in_the_inputs_are_located(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    trees = tmp_path / "bad.ptb"
    trees.write_text("(2 (1 good) (2 film))\n(3 (2 a) plot))\n")
    assert main(["run", example("treefc"), "--trees", str(trees), "-D", "H=4"]) == 1
    err = capsys.readouterr().err
    assert "error[E0508]" in err and f"{trees}:2:" in err and "^" in err


def test_corrupt_and_mismatched_weights(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.npz"
    assert main(["weights", example("treefc"), "--init", "-o", str(good), "-D", "H=8",
                 "-D", "V=60"]) == 0
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    capsys.readouterr()
    assert main(["run", example("treefc"), "--synthetic", "1", "-D", "H=8", "-D", "V=60",
                 "--weights", str(truncated)]) == 1
    err = capsys.readouterr().err
    assert "E0533" in err and str(truncated) in err and "Traceback" not in err
    assert main(["run", example("treefc"), "--synthetic", "1", "-D", "H=4", "-D", "V=60",
                 "--weights", str(good)]) == 1
    assert "E0532" in capsys.readouterr().err
    assert main(["run", example("treefc"), "--synthetic", "1", "-D", "H=8", "-D", "V=60",
                 "--weights", str(good)]) == 0


def test_an_unwritable_out_leaves_nothing_behind(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "out.npz"
    assert main(["run", example("treefc"), "--synthetic", "1", "-D", "H=4",
                 "--out", str(missing)]) == 1
    assert "E0570" in capsys.readouterr().err and not missing.parent.exists()
    directory = tmp_path / "taken"
    directory.mkdir()
    assert main(["run", example("treefc"), "--synthetic", "1", "-D", "H=4",
                 "--out", str(directory)]) == 1
    assert "E0570" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]


def test_a_write_failing_halfway_keeps_the_old_file(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous results")

    def disk_full(file: object, **arrays: object) -> None:
        file.write(b"PK\x03\x04 half an archive")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.np, "savez", disk_full)
    assert main(["run", example("treefc"), "--synthetic", "1", "-D", "H=4",
                 "--out", str(out)]) == 1
    assert "No space left" in capsys.readouterr().err
    assert out.read_bytes() == b"previous results"
    assert [path.name for path in tmp_path.iterdir()] == ["out.npz"]


@pytest.mark.parametrize("argv", [
    ["run", "MODEL"],                                          # no inputs
    ["run", "MODEL", "--synthetic", "1", "--trees", "x.ptb"],  # both inputs
    ["run", "MODEL", "--synthetic", "-3"],
    ["run", "MODEL", "--synthetic", "1", "-D", "H"],
    ["run", "MODEL", "--synthetic", "1", "-D", "H=eight"],
    ["run", "MODEL", "--synthetic", "1", "-D", "Q=3"],        # no such size: the checker's
    ["run", "MODEL", "--synthetic", "1", "--backend", "nope"],
    ["run", "MODEL", "--synthetic", "1", "--vocab", "v.txt"],
    ["run", "MODEL", "--synthetic", "1", "--set", "x=1"],     # interp has no settings
    ["run", "MODEL", "--synthetic", "1", "--backend", "compiled", "--node-tile", "0"],
    ["compile", "MODEL", "--node-tile", "-2"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [example("treefc") if part == "MODEL" else part for part in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("command", [["run", "--synthetic", "1", "--backend", "compiled"],
                                     ["compile"], ["viz", "-o", "unused"]])
def test_a_node_tile_below_one_is_a_usage_error(command: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = command[:1] + [example("treefc")] + command[1:] + ["--node-tile", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error[E0705]" in err and "--node-tile 0" in err, err


@pytest.mark.parametrize("command", [["compile", "MODEL", "--node-tile", "33"],
                                     ["run", "MODEL", "--synthetic", "1", "--backend",
                                      "compiled", "--set", "node_tile=1024"]])
def test_a_node_tile_above_the_bound_is_a_usage_error(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [example("treefc") if part == "MODEL" else part for part in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error[E0705]" in err and "Traceback" not in err, err


def test_a_node_tile_setting_below_one_is_the_same_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", example("treefc"), "--synthetic", "1", "--backend", "compiled", "--set",
            "node_tile=0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error[E0705]" in err and "node_tile=0" in err, err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert main(["run", "--help"]) == 0


def _failing_backend(error: BaseException) -> backends.BackendFactory:
    def factory() -> backends.Backend:
        def run(*args: object) -> object:
            raise error
        return run  # type: ignore[return-value]
    return factory


Installer = Callable[[BaseException], list[str]]


@pytest.fixture
def failing_backend(monkeypatch: pytest.MonkeyPatch) -> Installer:
    """Install a backend named "failing" that raises the error given to the fixture."""
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))

    def install(error: BaseException) -> list[str]:
        backends.register_backend("failing", _failing_backend(error))
        return ["run", example("treefc"), "--synthetic", "1", "-D", "H=4", "--backend",
                "failing"]

    return install


def test_an_environment_problem_exits_3(failing_backend: Installer,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = failing_backend(EnvironmentProblem(Diagnostic("E0603", "no OpenCL device")))
    assert main(argv) == 3
    assert "error[E0603]" in capsys.readouterr().err


def test_a_bug_exits_70_with_a_dump(failing_backend: Installer,
                                    capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORTEXLANG_DUMP_DIR", str(tmp_path / "dumps"))
    argv = failing_backend(ZeroDivisionError("a bug"))
    assert main(argv) == 70
    err = capsys.readouterr().err
    assert "internal error: this is a bug in cortexlang" in err and "Traceback" not in err
    (dump,) = (tmp_path / "dumps").iterdir()
    assert str(dump) in err
    text = dump.read_text()
    assert "ZeroDivisionError: a bug" in text and "--backend failing" in text


def test_interrupted_exits_130(failing_backend: Installer,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(failing_backend(KeyboardInterrupt())) == 130
    assert "interrupted" in capsys.readouterr().err


def test_compiled_archive_matches_the_interpreter(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compiled.npz"
    run_json(capsys, example("sentiment"), "--synthetic", "5", "-D", "H=8", "-D", "V=60",
             "--seed", "4", "--out", str(out), "--chunk", "2", "--disable", "fuse_levels")
    program = load_program(example("sentiment"), {"H": 8, "V": 60})
    expected = interpret(program, synthetic_structures(program, 5, 4),
                         init_weights(program.params, 4))
    with np.load(out) as archive:
        for name in ("h", "sentiment"):
            np.testing.assert_allclose(archive[f"outputs/{name}"], expected.outputs[name],
                                       rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(archive["states/c"], expected.states["c"], rtol=1e-4,
                                   atol=1e-6)

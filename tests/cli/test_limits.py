"""What a user can type that a run cannot do: each case ends in exit 1 or 2 with a located,
coded message, before anything large is allocated; never exit 70.

Sizes too large for the machine (E0590, E0591), synthetic counts and other flags out of range
(E0020-E0022), device specs that name nothing (E0601 as a usage error), values that are not
finite (E0580, E0581) and binary-tree nodes with one child (E0582).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from cortexlang.cli import main
from cortexlang.commands import capacity
from cortexlang.frontend.check import check_source, load_program
from cortexlang.inputs.structure import Structure

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TREEFC = str(EXAMPLES / "treefc.cx")
DAGRNN = str(EXAMPLES / "dagrnn.cx")

HUGE = """model Huge
sizes H = 10000000
structure binary_tree
param W[H, H]
input word: token
state h[H]
leaf n:
    h = W @ zeros(H)
internal n:
    h = h[left(n)] + h[right(n)]
output h[root]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["run", *argv])
    return code, capsys.readouterr().err


def test_a_parameter_of_10_to_the_14_values_is_refused_at_its_declaration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "huge.cx"
    model.write_text(HUGE)
    code, err = run(capsys, str(model), "--synthetic", "1", "--backend", "interp")
    assert code == 1, err
    assert "error[E0590]" in err and f"{model}:4:7" in err and "100000000000000 values" in err
    assert "available" in err and "hint:" in err


def test_a_size_of_2_to_the_31_minus_1_is_refused_with_the_size_and_the_limit(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, TREEFC, "-D", "H=2147483647", "--synthetic", "1",
                    "--backend", "interp")
    assert code == 1, err
    assert "error[E0590]" in err and "treefc.cx:9:7" in err and "2147483647" in err


def test_states_of_many_nodes_are_counted_too() -> None:
    program = check_source(HUGE.replace("10000000", "1000"), "big.cx")
    need = 1000 * 1000 * 4
    capacity.check_host_memory(program, np.dtype(np.float32), initialised=False, num_nodes=1,
                               num_structures=1, limit=10 * need)
    with pytest.raises(Exception) as caught:
        capacity.check_host_memory(program, np.dtype(np.float32), initialised=False,
                                   num_nodes=100_000, num_structures=1, limit=10 * need)
    assert getattr(caught.value, "codes", None) == ["E0590"]
    assert "state `h`" in str(caught.value) and "big.cx:6:7" in str(caught.value)


def test_the_device_allocation_limit_is_checked_before_any_weight_exists() -> None:
    program = check_source(HUGE.replace("10000000", "1000"), "big.cx")
    capacity.check_device_allocations(program, 4 * 1000 * 1000, "small")
    with pytest.raises(Exception) as caught:
        capacity.check_device_allocations(program, 4 * 1000 * 1000 - 1, "small")
    assert getattr(caught.value, "codes", None) == ["E0591"]
    assert "big.cx:4:7" in str(caught.value) and "small" in str(caught.value)


def test_the_compiled_backend_refuses_a_parameter_larger_than_the_device_holds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyopencl")
    model = tmp_path / "huge.cx"
    model.write_text(HUGE)
    code, err = run(capsys, str(model), "--synthetic", "1", "--backend", "compiled")
    if "E0603" in err:
        pytest.skip("no working OpenCL device")
    assert code == 1, err
    assert "error[E0591]" in err and f"{model}:4:7" in err


def test_weights_init_checks_memory_too(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "huge.cx"
    model.write_text(HUGE)
    assert main(["weights", str(model), "--init", "-o", str(tmp_path / "w.npz")]) == 1
    assert "error[E0590]" in capsys.readouterr().err
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("argv, code", [
    (["--synthetic", "0"], "E0021"),
    (["--synthetic", "1000000000", "--limit", "1"], "E0021"),
    (["--synthetic", "2", "--limit", "0"], "E0021"),
    (["--synthetic", "2", "--seed", "-1"], "E0021"),
    (["--trees", "no-such-file.ptb"], "E0020"),
    (["--trees", "."], "E0020"),
    (["--synthetic", "1", "--weights", "no-such-file.npz"], "E0020"),
    (["--synthetic", "1", "--backend", "interp", "--device", "0:0"], "E0022"),
    (["--synthetic", "1", "--backend", "compiled", "--float64"], "E0011"),
    (["--synthetic", "1", "--backend", "interp", "--verbose"], "E0011"),
    (["--synthetic", "1", "--backend", "interp", "--vector-width", "4"], "E0011"),
])
def test_flags_out_of_range_are_usage_errors(argv: list[str], code: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    status, err = run(capsys, TREEFC, "-D", "H=4", *argv)
    assert status == 2, err
    assert f"error[{code}]" in err and "hint:" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--hidden", "100000"], ["--passes", "0"],
                                  ["--max-passes", "-1"], ["--trees", "no-such-file.ptb"]])
def test_bench_flags_out_of_range_are_usage_errors_before_measuring(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", *argv]) == 2
    captured = capsys.readouterr()
    assert re.search(r"error\[E002[01]\]", captured.err) and "machine:" not in captured.err


@pytest.mark.parametrize("argv, code", [(["--seed", "-1", "--no-run"], "E0021"),
                                        (["--trees", "no-such-file.ptb", "--no-run"], "E0020")])
def test_viz_flags_out_of_range_are_usage_errors(argv: list[str], code: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["viz", TREEFC, "-D", "H=4", "-o", str(tmp_path / "viz"), *argv]) == 2
    assert f"error[{code}]" in capsys.readouterr().err
    assert not (tmp_path / "viz").exists()


def test_a_device_spec_that_names_nothing_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyopencl")
    for argv in (["run", TREEFC, "-D", "H=4", "--synthetic", "1", "--device", "bogus"],
                 ["compile", TREEFC, "-D", "H=4", "--device", "bogus"],
                 ["bench", "--quick", "--device", "bogus"],
                 ["viz", TREEFC, "-D", "H=4", "--device", "bogus", "-o", "unused"]):
        status = main(argv)
        err = capsys.readouterr().err
        if "E0603" in err:
            pytest.skip("no working OpenCL device")
        assert status == 2 and "error[E0601]" in err, err


def test_a_limit_below_the_synthetic_count_generates_only_the_limit(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from cortexlang.commands import loading

    asked: list[int] = []
    original = loading.synthetic_structures

    def counting(program: object, count: int, seed: int) -> list[Structure]:
        asked.append(count)
        return original(program, count, seed)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "synthetic_structures", counting)
    assert main(["run", TREEFC, "-D", "H=4", "--synthetic", "1000000", "--limit", "2",
                 "--backend", "interp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]["structures"] == 2
    assert asked == [2]


# -- values --------------------------------------------------------------------------------------


def test_nonfinite_weights_are_refused_at_the_parameter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = load_program(TREEFC, {"H": 4, "V": 30})
    weights = {param.name: np.zeros(param.shape) for param in program.params}
    weights["W"][1, 2] = np.nan
    weights["b"][3] = np.inf
    path = tmp_path / "w.npz"
    np.savez(path, **weights)  # type: ignore[arg-type]
    argv = [TREEFC, "-D", "H=4", "-D", "V=30", "--synthetic", "1", "--backend", "interp",
            "--weights", str(path)]
    code, err = run(capsys, *argv)
    assert code == 1, err
    assert err.count("error[E0580]") == 2 and "treefc.cx:10:7" in err and "[1, 2]" in err
    assert "1 NaN value" in err and "1 infinite value" in err
    code, err = run(capsys, *argv, "--allow-nonfinite", "--json")
    assert code == 0, err


def _grid_file(tmp_path: Path, value: float) -> Path:
    """A flat JSON record of a 2 x 2 grid with six features per cell, one of them `value`
    (written by json itself: Infinity and NaN as JSON's readers spell them, floats exact)."""
    features = [[0.5] * 6 for _ in range(4)]
    features[2][3] = value
    record = {"nodes": 4, "children": [[-1, -1], [0, -1], [-1, 0], [2, 1]], "kind": "dag",
              "features": features}
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(record) + "\n")
    return path


def test_nonfinite_features_are_refused_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _grid_file(tmp_path, math.inf)
    argv = [DAGRNN, "-D", "X=6", "--trees", str(path), "--backend", "interp"]
    code, err = run(capsys, *argv)
    assert code == 1, err
    assert "error[E0581]" in err and str(path) in err and "node 2, feature 3" in err
    code, err = run(capsys, *argv, "--allow-nonfinite", "--json")
    assert code == 0, err


def test_a_unary_node_in_a_binary_tree_model_is_refused_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trees = tmp_path / "trees.ptb"
    trees.write_text("(2 (2 a) (2 b))\n(3 (2 (2 c)) (2 d))\n")
    code, err = run(capsys, TREEFC, "-D", "H=4", "--trees", str(trees), "--backend", "interp")
    assert code == 1, err
    # The PTB reader refuses it at the node itself (E0516); E0582 stays the backstop for
    # structures that reach the run some other way.
    assert "error[E0516]" in err and f"{trees}:2:4" in err and "--collapse-unary" in err


def test_float64_runs_read_float64_features(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A feature that float32 cannot hold exactly reaches the float64 interpreter intact."""
    from cortexlang.inputs.load import load_structures

    path = _grid_file(tmp_path, 0.1 + 2.0**-40)
    (structure,) = load_structures(path).structures
    assert structure.features is not None and structure.features[2, 3] == 0.1 + 2.0**-40
    out = tmp_path / "out.npz"
    assert main(["run", DAGRNN, "-D", "X=6", "--trees", str(path), "--float64", "--out",
                 str(out), "--json"]) == 0
    capsys.readouterr()
    with np.load(out) as archive:
        assert all(archive[key].dtype == np.float64 for key in archive if key != "node_offset")

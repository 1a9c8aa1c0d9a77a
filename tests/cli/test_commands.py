"""`cortexlang check`, `weights` and `devices`, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cortexlang.cli import main
from cortexlang.errors import Diagnostic, EnvironmentProblem

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TREEFC = str(EXAMPLES / "treefc.cx")

BROKEN = """model Broken
sizes H = 4
structure binary_tree
param W[H, H]
state h[H]
leaf n:
    h = W @ zeros(3)
internal n:
    h = tanh(W @ h[parent(n)])
output h[root]
"""


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.cx")), ids=lambda path: path.stem)
def test_check_accepts_every_example(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ") and captured.out.count("\n") == 1
    assert captured.err == ""
    assert main(["check", "--quiet", str(path), "-D", "H=16"]) == 0
    assert capsys.readouterr().out == ""


def test_check_reports_every_error_with_its_location(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "broken.cx"
    model.write_text(BROKEN)
    assert main(["check", str(model)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert "error[E0301]" in err and f"{model}:7:" in err
    assert "error[E0404]" in err and f"{model}:9:" in err
    assert "2 errors" in err and "^^^" in err


def test_check_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", TREEFC, "-D", "H=x"]) == 2
    assert main(["check", TREEFC, "-D", "Nope=3"]) == 2
    assert "E0213" in capsys.readouterr().err
    assert main(["check", "/no/such/model.cx"]) == 1
    assert "E0001" in capsys.readouterr().err


def test_weights_init_is_deterministic_and_inspectable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, other = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    sizes = ["-D", "H=8", "-D", "V=30"]
    assert main(["weights", TREEFC, "--init", "--seed", "7", "-o", str(first), *sizes]) == 0
    assert main(["weights", TREEFC, "--init", "--seed", "7", "-o", str(second), *sizes]) == 0
    assert main(["weights", TREEFC, "--init", "--seed", "8", "-o", str(other), *sizes]) == 0
    assert "saved 3 parameters" in capsys.readouterr().out
    with np.load(first) as a, np.load(second) as b, np.load(other) as c:
        # Beside the parameters, cortexlang's metadata (the seed: these are random weights).
        assert sorted(a.files) == ["Emb", "W", "b", "cortexlang/meta"]
        assert a["Emb"].shape == (30, 8)
        assert all(np.array_equal(a[name], b[name]) for name in a.files)
        assert not np.array_equal(a["W"], c["W"])
    assert main(["weights", str(first)]) == 0
    out = capsys.readouterr().out
    assert "Emb" in out and "30x8" in out
    assert main(["weights", str(first), "--model", TREEFC, *sizes]) == 0
    assert "valid for TreeFC" in capsys.readouterr().out
    assert main(["weights", str(first), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listing["parameters"]] == ["Emb", "W", "b"]
    assert listing["parameters"][0]["shape"] == [30, 8]


def test_weights_that_do_not_fit_the_model(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.npz"
    assert main(["weights", TREEFC, "--init", "-o", str(path), "-D", "H=8", "-D", "V=30"]) == 0
    capsys.readouterr()
    assert main(["weights", str(path), "--model", TREEFC, "-D", "H=4", "-D", "V=30"]) == 1
    assert "E0532" in capsys.readouterr().err
    np.savez(tmp_path / "extra.npz", Emb=np.zeros((30, 8)), W=np.zeros((8, 8)),
             b=np.zeros(8), stray=np.zeros(2))
    assert main(["weights", str(tmp_path / "extra.npz"), "--model", TREEFC, "-D", "H=8",
                 "-D", "V=30"]) == 1
    assert "E0531" in capsys.readouterr().err
    np.savez(tmp_path / "text.npz", Emb=np.array(["a", "b"]))
    assert main(["weights", str(tmp_path / "text.npz")]) == 1
    assert "E0535" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["weights", str(tmp_path / "junk.npz")]) == 1
    err = capsys.readouterr().err
    assert "E0533" in err and "junk.npz" in err


@pytest.mark.parametrize("argv", [
    ["weights", TREEFC, "--init"],                        # no -o
    ["weights", "w.npz", "-o", "x.npz"],                  # -o without --init
    ["weights", "w.npz", "-D", "H=3"],                    # sizes without a model
])
def test_weights_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "E0011" in capsys.readouterr().err


def test_devices_reports_and_exits_by_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyopencl")
    code = main(["devices", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 3)
    assert (report["selected"] is not None) == (code == 0)
    assert all({"device_name", "ok"} <= set(device) for device in report["devices"])


def test_devices_without_any_device_exits_3(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyopencl")
    from cortexlang.runtime import devices

    def no_device(*args: object, **keywords: object) -> object:
        raise EnvironmentProblem(Diagnostic("E0603", "no OpenCL device was found"))

    monkeypatch.setattr(devices, "probe_devices", lambda **keywords: [])
    monkeypatch.setattr(devices, "select_device", no_device)
    assert main(["devices"]) == 3
    assert "No OpenCL platform was found" in capsys.readouterr().out

"""`cortexlang bench --quick` runs end to end and writes the records other tools read.

No timing is asserted: only that every cell was measured and reported consistently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortexlang.cli import main

REQUIRED = {"model", "hidden", "batch", "impl", "median_ms", "p10_ms", "p90_ms", "gflops",
            "floor_ms"}


@pytest.mark.usefixtures("opencl_device")
def test_quick_bench_writes_records_and_tables(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results" / "bench.json"
    assert main(["bench", "--quick", "--models", "treefc", "--batch", "1", "10",
                 "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert {"host", "limits", "config", "records", "ablation", "warnings", "skipped"} <= set(
        written)
    assert written["host"]["cpu"]["model"] and written["host"]["versions"]["numpy"]
    assert written["host"]["device"]["device_name"]
    limits = written["limits"]
    assert limits["peak_gflops"] == max(limits["sweep_gflops"], limits["blas_gflops"]) > 0
    assert written["ablation"] and written["ablation"][0]["disabled"] == "(all on)"
    records = written["records"]
    assert records and all(REQUIRED <= set(record) for record in records)
    # Every record says how it was timed; a flagged one is also a warning.
    for record in records:
        assert record["passes"] >= 1 and record["spread"] >= 0
        for flag in record["flags"]:
            assert any(flag in warning for warning in written["warnings"])
    implementations = {record["impl"] for record in records}
    assert {"cortexlang", "cortexlang-e2e", "interp", "numpy-nodes"} <= implementations
    for record in records:
        assert record["model"] == "treefc" and record["hidden"] == 64
        assert 0 < record["p10_ms"] <= record["median_ms"] <= record["p90_ms"]
        assert record["gflops"] > 0 and record["floor_ms"] > 0
    assert {(r["batch"], r["impl"]) for r in records} >= {(1, "cortexlang"), (10, "cortexlang")}
    # Linearization is reported apart from the compiled latency, for cortexlang only.
    for record in records:
        if record["impl"] == "cortexlang":
            assert record["linearize_ms"] > 0
        else:
            assert record["linearize_ms"] is None
    shown = capsys.readouterr().out
    assert "latency per batch" in shown and "ablation" in shown
    assert "all on" in shown and "fuse_levels" in shown and "QUICK RUN" in shown
    # --quick ablates two optimisations and lists the others as skipped.
    assert [row["disabled"] for row in written["ablation"]] == [
        "(all on)", "dynamic_batching", "fuse_levels"]
    assert any("fuse_operators" in note and "--quick" in note for note in written["skipped"])

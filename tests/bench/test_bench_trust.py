"""What makes a benchmark number trustworthy: timing until stable, flags on impossible
cells, the host description, and the forced vector width (which must not change results)."""

from __future__ import annotations

import numpy as np
import pytest

from cortexlang.bench.host import cpu_description
from cortexlang.bench.suite import BenchReport, Record, _Cell
from cortexlang.bench.timing import Timing, spread, time_until_stable


def fake_run(durations_ms: list[float]):  # noqa: ANN201
    """A run() whose every call takes the next duration on the returned clock."""
    now = [0]
    durations = iter(durations_ms)

    def run(batch: object) -> None:
        now[0] += int(next(durations, 1.0) * 1e6)

    return run, lambda: now[0]


def test_a_steady_cell_stops_after_the_minimum_passes() -> None:
    run, clock = fake_run([1.0] * 100)
    timing = time_until_stable(run, [0, 1], min_passes=3, max_passes=10, clock=clock)
    assert timing.passes == 3 and timing.stable and timing.spread == 0
    assert timing.warning("cell") is None


def test_a_noisy_cell_runs_to_the_maximum_and_warns() -> None:
    run, clock = fake_run([1.0, 2.0, 4.0] * 100)    # pass medians keep jumping
    timing = time_until_stable(run, [0], min_passes=3, max_passes=6, clock=clock)
    assert timing.passes == 6 and not timing.stable and timing.spread > 0.05
    warning = timing.warning("treelstm H=8 B=1 cortexlang")
    assert warning is not None and "may be unstable" in warning and "6 passes" in warning


def test_a_cell_that_settles_stops_early() -> None:
    # warm-up, then passes: the first timed one is slow, the next three agree
    run, clock = fake_run([9.0, 5.0, 1.0, 1.01, 1.0] + [1.0] * 20)
    timing = time_until_stable(run, [0], min_passes=3, max_passes=10, clock=clock)
    assert timing.stable and timing.passes == 4


def test_spread() -> None:
    assert spread([1.0]) == 0.0
    assert spread([1.0, 1.1, 0.9]) == pytest.approx(0.2)


def _cell(floor: float) -> tuple[_Cell, BenchReport]:
    report = BenchReport(machine={})
    return _Cell(report, lambda line: None, "treefc", 8, 1, 1e6, floor), report


def _timing(value: float) -> Timing:
    return Timing((value,) * 6, (value,) * 3, True, 0.0)


def test_a_cell_faster_than_its_floor_is_a_measurement_error() -> None:
    cell, report = _cell(floor=0.5)
    cell.record("cortexlang", _timing(0.2))
    cell.record("cortexlang-e2e", _timing(0.6))
    cell.check()
    by_impl = {record.impl: record for record in report.records}
    assert by_impl["cortexlang"].flags and not by_impl["cortexlang-e2e"].flags
    assert any("MEASUREMENT ERROR" in warning and "floor" in warning
               for warning in report.warnings)


def test_end_to_end_faster_than_its_run_is_a_measurement_error() -> None:
    cell, report = _cell(floor=0.01)
    cell.record("cortexlang", _timing(0.5))
    cell.record("cortexlang-e2e", _timing(0.3))
    cell.check()
    flagged = [record.impl for record in report.records if record.flags]
    assert flagged == ["cortexlang-e2e"]
    assert "end to end faster than its run" in report.warnings[0]


def test_honest_cells_carry_no_flags() -> None:
    cell, report = _cell(floor=0.01)
    cell.record("cortexlang", _timing(0.3))
    cell.record("cortexlang-e2e", _timing(0.5))
    cell.check()
    assert all(isinstance(r, Record) and not r.flags for r in report.records)
    assert report.warnings == []


def test_cpu_description_reads_the_model_and_simd_flags() -> None:
    text = "processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu sse4_2 avx2 fma " \
           "avx512f ht\n\nprocessor\t: 1\nmodel name\t: Some CPU 9000\n"
    described = cpu_description(text)
    assert described["model"] == "Some CPU 9000"
    assert described["simd_flags"] == ["avx2", "avx512f", "fma", "sse4_2"]


@pytest.mark.opencl
def test_a_forced_vector_width_changes_the_plan_not_the_results(opencl_device) -> None:  # noqa: ANN001
    from cortexlang.frontend.check import load_program
    from cortexlang.inputs import generators
    from cortexlang.inputs.weights import init_weights
    from cortexlang.passes.pipeline import run_pipeline
    from cortexlang.runtime.devices import select_device
    from cortexlang.runtime.execute import CompiledModel, device_limits

    with pytest.raises(ValueError, match="vector width"):
        select_device(opencl_device.info.spec, vector_width=3)
    program = load_program("examples/treefc.cx", {"H": 16})
    weights = init_weights(program.params, seed=2)
    trees = generators.sst_like_trees(5, rng=4, vocab_size=program.size("V"))
    results = {}
    for width in (4, 16):
        device = select_device(opencl_device.info.spec, vector_width=width)
        assert device.info.preferred_vector_width_float == width
        assert device_limits(device).preferred_vector_width == width
        model = CompiledModel(run_pipeline(program, None, device_limits(device)), device)
        model.bind_weights(weights)
        results[width] = (model.result.source, model.run(trees).outputs["h"])
    assert results[4][0] != results[16][0]        # planned for another width
    np.testing.assert_allclose(results[4][1], results[16][1], rtol=1e-5, atol=1e-6)


@pytest.mark.opencl
@pytest.mark.usefixtures("opencl_device")
def test_run_takes_a_vector_width_and_rejects_a_wrong_one(capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    from cortexlang.cli import main

    command = ["run", "examples/treefc.cx", "--trees", "examples/data/sample.ptb", "-D",
               "H=16", "--json"]
    assert main(command + ["--vector-width", "8"]) == 0
    assert main(command + ["--set", "vector_width=3"]) == 2
    assert "E0013" in capsys.readouterr().err

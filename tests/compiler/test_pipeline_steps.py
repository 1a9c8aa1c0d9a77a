"""The pipeline as one list of steps: emit_opencl is one of them, every optimisation has its
step, a failing step's internal error points at a dump of the IR it was given."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from compiler_support import small_example

from cortexlang.errors import InternalError
from cortexlang.passes import pipeline
from cortexlang.passes.pipeline import PIPELINE, Options, Recorder, step_of


def test_every_optimisation_is_carried_out_by_a_step() -> None:
    for name in Options.names():
        assert step_of(name) is not None, name
    assert [step.stage for step in PIPELINE[-2:]] == ["opencl", "executable"]


def test_a_switched_off_step_is_reported_with_its_reason() -> None:
    recorder = Recorder()
    pipeline.run_pipeline(small_example("treefc"), Options().without("fold_constants"),
                          instruments=[recorder])
    assert ("fold_constants", "its optimisation `fold_constants` is off") in recorder.skipped
    assert "fold_constants" not in [record.step for record in recorder.records]


def test_a_failing_step_dumps_the_ir_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ir: object, options: Options, limits: object, products: object) -> object:
        raise KeyError("boom")

    steps = tuple(replace(step, run=broken) if step.name == "dense_intermediates" else step
                  for step in PIPELINE)
    monkeypatch.setattr(pipeline, "PIPELINE", steps)
    with pytest.raises(InternalError) as caught:
        pipeline.run_pipeline(small_example("treefc"))
    error = caught.value
    assert error.step == "dense_intermediates" and error.dump_path is not None
    dumped = (Path(error.dump_path) / "before_dense_intermediates.txt").read_text()
    assert dumped.startswith("loop program TreeFC")

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


def test_every_kernel_decision_is_a_step_of_the_kernel_stage() -> None:
    """plan_kernels makes the kernels; each later decision is its own step, then the OpenCL
    printer, which decides nothing."""
    names = [step.name for step in PIPELINE]
    kernel_steps = [step.name for step in PIPELINE if step.stage == "kernels"]
    assert kernel_steps == ["plan_kernels", "tile_nodes", "vectorize", "tile_rows",
                            "persist_weights", "block_weights", "unroll_dot_products",
                            "split_dot_chains"]
    assert names[names.index("split_dot_chains") + 1] == "emit_opencl"
    assert step_of("node_tile") is step_of("tile_nodes")
    assert step_of("persist_weights") is step_of("persist_weights")


def test_each_kernel_step_says_what_it_did_or_why_not() -> None:
    recorder = Recorder()
    pipeline.run_pipeline(small_example("treelstm"), instruments=[recorder])
    kernel_records = [record for record in recorder.records if record.stage == "kernels"]
    assert len(kernel_records) == 8
    # (the recorder's stand-in reason would mean the step gave none of its own)
    for record in kernel_records[1:]:
        assert record.changed or record.reason not in ("", "nothing to change in this "
                                                       "program"), record.step


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


def test_a_step_that_does_not_apply_returns_the_ir_it_was_given() -> None:
    """Changed is identity: an unchanged step's record holds the previous step's very IR,
    and its reason is the pass's own (not a note inside the IR)."""
    recorder = Recorder()
    result = pipeline.run_pipeline(small_example("treegru"), instruments=[recorder])
    records = recorder.records
    unchanged = {record.step: record for record in records if not record.changed}
    assert {"fold_constants", "refactor_recursion", "hoist_invariants"} <= set(unchanged)
    for index, record in enumerate(records[1:], start=1):
        assert record.changed is (record.ir is not records[index - 1].ir), record.step
    assert unchanged["refactor_recursion"].reason.startswith("t4: U_g @ concat(...) mixes")
    # The program's notes say only what the passes that changed it did.
    assert [step for step, _ in result.recursive.notes] == [
        record.step for record in records
        if record.stage == "recursive" and record.changed and record.step != "to_recursive"]


def test_the_pipeline_starts_from_source_text() -> None:
    source = Path("examples/treefc.cx")
    recorder = Recorder()
    result = pipeline.run_pipeline(pipeline.Source(str(source), source.read_text()),
                                   instruments=[recorder])
    assert recorder.records[0].step == "parse_and_check" and recorder.records[0].changed
    assert result.program.name == "TreeFC"
    checked = pipeline.run_pipeline(pipeline.Source(str(source)), stop_after="parse_and_check")
    assert checked == result.program
    assert pipeline.run_pipeline(checked).source == result.source


def test_a_step_s_own_internal_error_also_dumps_the_ir_it_was_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def inconsistent(ir: object, options: Options, limits: object, products: object) -> object:
        raise InternalError("hoist_invariants", "an operator lost its rule")

    steps = tuple(replace(step, run=inconsistent) if step.name == "hoist_invariants" else step
                  for step in PIPELINE)
    monkeypatch.setattr(pipeline, "PIPELINE", steps)
    recorder = Recorder()
    with pytest.raises(InternalError) as caught:
        pipeline.run_pipeline(small_example("treefc"), instruments=[recorder])
    error = caught.value
    assert error.message == "an operator lost its rule" and error.dump_path is not None
    dumped = (Path(error.dump_path) / "before_hoist_invariants.txt").read_text()
    # The IR the failing step was given: the product of the last step that ran before it.
    assert dumped == pipeline.format_ir("recursive", recorder.records[-1].ir)
    assert recorder.records[-1].step == "refactor_recursion"

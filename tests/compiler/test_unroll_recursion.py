"""Recursive unrolling (`unroll_recursion`): the pass, its schedule in the recursive IR, its
lowering, and the compiled programs against the reference interpreter.

The option sweeps elsewhere leave `unroll_recursion` off (compiler_support.SWEPT); this file
sweeps it over its own set: every example with it on, on random trees (the mixed batch of
every shape class) and the bundled sample trees, under this device's limits and a GPU's, and
with the passes it meets most switched off (fused levels, leaf specialisation, everything).
"""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    EXAMPLES,
    assert_close,
    compile_program,
    mixed_batch,
    small_example,
    stage_before,
    vocabulary,
    weights_for,
)
from differential import Differential, Inputs, crossing_over

from cortexlang.errors import InternalError
from cortexlang.interp.interpreter import interpret
from cortexlang.ir import loops as L
from cortexlang.ir.recursive import Unroll, format_recursive, verify_recursive
from cortexlang.ir.recursive_eval import run_recursive
from cortexlang.passes.pipeline import Options, Recorder, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.passes.unroll_recursion import unroll_recursion_result
from cortexlang.runtime import groups
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import device_limits
from cortexlang.runtime.linearize import linearize

UNROLLED = Options(unroll_recursion=True)
NOT_UNROLLED = {"dagrnn"}   # a DAG: a node may have two parents


def _recursive(name: str, options: Options = UNROLLED):  # type: ignore[no-untyped-def]
    return stage_before(small_example(name), "lower_loops", options)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_the_pass_applies_to_every_tree_and_sequence_and_says_why_not_to_a_dag(
        name: str) -> None:
    before = _recursive(name, Options())
    result = unroll_recursion_result(before)
    if name in NOT_UNROLLED:
        assert result.ir is before and "two parents" in result.note
        return
    assert result.ir.unroll == Unroll(2, tuple(range(before.max_children)))
    assert result.ir.leaf == before.leaf and result.ir.internal == before.internal
    assert "unroll: 2 heights per step" in format_recursive(result.ir)
    verify_recursive(result.ir)
    assert unroll_recursion_result(result.ir).ir is result.ir   # applied once


def test_the_pipeline_records_the_reason_it_did_not_apply() -> None:
    recorder = Recorder()
    run_pipeline(small_example("dagrnn"), UNROLLED, instruments=[recorder],
                 stop_after="unroll_recursion")
    record = next(r for r in recorder.records if r.step == "unroll_recursion")
    assert not record.changed and "two parents" in record.reason
    recorder = Recorder()
    run_pipeline(small_example("treefc"), Options(), instruments=[recorder],
                 stop_after="unroll_recursion")
    assert ("unroll_recursion", "its optimisation `unroll_recursion` is off") in \
        recorder.skipped


@pytest.mark.parametrize(("schedule", "kind", "problem"), [
    (Unroll(3, (0, 1)), "binary_tree", "depth 3"),
    (Unroll(2, (0, 2)), "binary_tree", "outside"),
    (Unroll(2, ()), "binary_tree", "outside"),
    (Unroll(2, (0, 1)), "dag", "DAG"),
])
def test_the_verifier_rejects_a_bad_schedule(schedule: Unroll, kind: str, problem: str) -> None:
    program = replace(_recursive("treefc"), unroll=schedule, structure_kind=kind)
    with pytest.raises(InternalError, match=problem):
        verify_recursive(program)


@pytest.mark.parametrize("name", sorted(set(EXAMPLE_NAMES) - NOT_UNROLLED))
def test_the_schedule_order_keeps_the_meaning(name: str) -> None:
    """The recursive evaluator computes an unrolled program in its schedule's order (group
    by group, inlined children before their parent) and agrees with the interpreter."""
    program = small_example(name)
    structures = mixed_batch(program)
    weights = weights_for(program)
    assert_close(name, "unrolled schedule", run_recursive(_recursive(name), structures,
                                                          weights),
                 interpret(program, structures, weights))


def test_an_order_with_a_parent_before_its_child_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator's check has teeth: parents first within each group fails."""
    original = groups.unrolled_order

    def parents_first(*args):  # type: ignore[no-untyped-def]
        grouped = original(*args)
        order = grouped.order.copy()
        for start, stop in zip(grouped.group_start[:-1], grouped.group_start[1:], strict=True):
            order[start:stop] = order[start:stop][::-1]
        return replace(grouped, order=order)

    monkeypatch.setattr("cortexlang.runtime.linearize.unrolled_order", parents_first)
    program = small_example("treefc")
    with pytest.raises(ValueError, match="read before it is computed"):
        run_recursive(_recursive("treefc"), mixed_batch(program), weights_for(program))


def test_the_loop_ir_loops_over_groups_and_their_members_in_order() -> None:
    result = compile_program(small_example("treegru"), UNROLLED)
    kinds = [stmt.kind for stmt in L.walk_stmts(result.loops.body) if isinstance(stmt, L.Loop)]
    assert L.LoopKind.GROUPS in kinds and L.LoopKind.MEMBERS in kinds
    text = L.format_loops(result.loops)
    assert "sequential members, one work-item" in text
    assert any("recursion unrolled by 2" in line for line in result.kernels.decisions)
    assert result.executable.unroll_depth == 2
    plain = compile_program(small_example("treegru"), Options())
    assert plain.executable.unroll_depth == 1 and "groups" not in L.format_loops(plain.loops)


# -- compiled programs against the interpreter ---------------------------------------------

@pytest.fixture(scope="module")
def differential(opencl_device: Device) -> Differential:
    return Differential(opencl_device, device_limits(opencl_device))


@functools.cache
def _inputs(name: str) -> Inputs:
    return Inputs("mixed batch", mixed_batch(small_example(name)))


@functools.cache
def _sample_trees(name: str) -> Inputs:
    from cortexlang.inputs.load import load_structures

    program = small_example(name)
    loaded = load_structures(EXAMPLES / "data" / "sample.ptb",
                             max_vocab_size=vocabulary(program), max_children=2)
    return Inputs("sample trees", list(loaded.structures))


@pytest.mark.opencl
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_unrolled_agrees_with_the_interpreter(differential: Differential,
                                                            name: str) -> None:
    program = small_example(name)
    if name in NOT_UNROLLED:   # the very program of the default options: nothing to run
        assert differential.compile(program, UNROLLED).source == \
            differential.compile(program, Options()).source
        return
    differential.check(name, program, UNROLLED, _inputs(name), label="unrolled")
    if program.structure.kind == "binary_tree":
        differential.check(name, program, UNROLLED, _sample_trees(name), label="unrolled")


@pytest.mark.opencl
@pytest.mark.parametrize(("name", "options"), [
    ("treegru", replace(UNROLLED, fuse_levels=False)),           # per-level group kernels
    ("treefc", replace(UNROLLED, specialize_leaves=False)),      # one conditional rule
    ("sentiment", Options().without(*Options.names()).with_enabled("unroll_recursion")),
    ("childsum_treelstm", replace(UNROLLED, dense_intermediates=False, tabulate_leaves=False)),
], ids=["level-plan", "shared-rule", "only-unrolled", "nary-no-dense"])
def test_unrolled_with_other_passes_off_agrees(differential: Differential, name: str,
                                              options: Options) -> None:
    program = small_example(name)
    result = differential.compile(program, options)
    assert result.recursive.unroll is not None
    differential.check(name, program, options, _inputs(name), label="unrolled subset")


@pytest.mark.opencl
@pytest.mark.parametrize("name", ["treelstm", "lstm_sequence", "mvrnn"])
def test_unrolled_under_gpu_limits_agrees_across_the_hybrid_crossing(
        differential: Differential, name: str) -> None:
    from cortexlang.runtime.plan import first_fused_batch

    program = small_example(name)
    gpu = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=4,
                       local_mem_size=differential.limits.local_mem_size)
    result = crossing_over(compile_program(program, UNROLLED, gpu), nodes=4)
    assert result.kernels.strategy == "hybrid"
    structures = _inputs(name).structures
    # The unrolled run's own batches (steps of two heights) cross the threshold too.
    unrolled = linearize(structures, max_children=program.structure.max_children,
                         unroll_depth=2).batch_len
    first_fused = first_fused_batch(result.executable, unrolled)
    assert 0 < first_fused < len(unrolled), unrolled.tolist()
    differential.check(name, program, UNROLLED, _inputs(name), result=result,
                       label="unrolled, GPU limits, crossing over")


@pytest.mark.opencl
@pytest.mark.parametrize("index", range(1))
def test_random_programs_unrolled_agree_with_the_interpreter(opencl_device: Device,
                                                             index: int) -> None:
    """A random program (a new draw with every run's seed), its options with
    unrolling on: rules and guards the examples do not have."""
    from compiler_support import run_seed
    from random_programs import SMALL, random_program
    from test_random_programs import agrees_with_the_interpreter

    from cortexlang.frontend.check import check_source

    seed = run_seed() * 100_000 + 90_000 + index
    program = random_program(seed, budget=SMALL)
    options = replace(program.options, unroll_recursion=True)
    checked = check_source(program.source, f"random_{seed}.cx")
    agrees_with_the_interpreter(opencl_device, checked, options, seed,
                                f"random program {seed}, unrolled:\n{program.source}")


def test_a_run_linearized_for_other_kernels_is_refused() -> None:
    """Kernels planned for one schedule never run a batch ordered for the other (an
    unrolled batch holds two heights: the plain kernels would compute a parent with its
    child at once)."""
    from cortexlang.inputs import generators
    from cortexlang.runtime.plan import run_layout

    trees = [generators.perfect_tree(3, rng=0)]
    for options, depth in ((UNROLLED, 1), (Options(), 2)):
        executable = compile_program(small_example("treefc"), options).executable
        linearized = linearize(trees, max_children=2, unroll_depth=depth)
        with pytest.raises(ValueError, match="height"):
            run_layout(executable, linearized, linearized.num_nodes)
        right = linearize(trees, max_children=2, unroll_depth=executable.unroll_depth)
        run_layout(executable, right, right.num_nodes)

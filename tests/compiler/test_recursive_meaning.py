"""Every subset of the recursive-program passes keeps the program's meaning, for every
example: the recursive stage run by its numpy evaluator (`run_recursive`) agrees with the
reference interpreter. Needs no OpenCL device."""

from __future__ import annotations

import itertools

import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    SWEPT,
    assert_close,
    mixed_batch,
    small_example,
    stage_before,
    weights_for,
)

from cortexlang.interp.interpreter import interpret
from cortexlang.ir.recursive import format_recursive
from cortexlang.ir.recursive_eval import run_recursive
from cortexlang.passes.pipeline import PIPELINE, Options

# (unroll_recursion, off by default, is swept by test_unroll_recursion.py)
RECURSIVE_OPTIONS = tuple(step.option for step in PIPELINE
                          if step.stage == "recursive" and step.option in SWEPT)


def test_the_recursive_stage_has_switchable_passes() -> None:
    assert set(RECURSIVE_OPTIONS) >= {"specialize_leaves", "fold_constants",
                                      "refactor_recursion", "hoist_invariants"}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_subset_of_recursive_passes_keeps_the_meaning(name: str) -> None:
    program = small_example(name)
    structures = mixed_batch(program)
    weights = weights_for(program)
    reference = interpret(program, structures, weights)
    seen: set[str] = set()
    for bits in itertools.product((True, False), repeat=len(RECURSIVE_OPTIONS)):
        options = Options().without(*(option for option, on in zip(RECURSIVE_OPTIONS, bits,
                                                                     strict=True) if not on))
        recursive = stage_before(program, "lower_loops", options)
        text = format_recursive(recursive)
        if text in seen:
            continue
        seen.add(text)
        enabled = [option for option, on in zip(RECURSIVE_OPTIONS, bits, strict=True) if on]
        assert_close(f"{name} (run_recursive)", "after " + ("+".join(enabled) or "no pass"),
                     run_recursive(recursive, structures, weights), reference)
    assert len(seen) > 1

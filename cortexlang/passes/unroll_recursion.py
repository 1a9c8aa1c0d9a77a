"""Recursive unrolling: compute a node together with its children in one step.

The level schedule runs one step per height, and every step ends at a barrier (a launch on
the per-level plan, a counter on the cooperative CPU plan) because a node reads its
children's states. Unrolled by 2, one step covers two heights: a node of odd height 2k-1
whose one parent has height 2k is computed by the same work-item as that parent, immediately
before it, so no barrier separates them and the child's state is still in the work-item's
cache when the parent reads it; every other node is computed alone, in the step of its height
rounded up to even (its children are all two heights lower, so they are done). Binary trees
and chains then take half as many dependent steps.

The pass records the schedule in the recursive program (`RecursiveProgram.unroll`); the rules
do not change. `lower_loops` turns it into a loop over the groups of a step (each group: the
inlined children, then their parent) with a sequential loop over the group's members, and the
linearizer orders the nodes of a run so that each group is a contiguous id range.

Cost: a work-item computes every unit of its group's nodes, so a step's parallelism is its
groups, no longer groups times unit blocks; on a device with more cores than a step has
groups, the unrolled step runs on fewer cores. That is why the option is off by default (the
README's ablation measures it).

Not applied to a DAG: a node with two parents cannot be computed in both their steps (it
would be computed twice, by two work-items writing the same row).
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir.recursive import RecursiveProgram, Unroll
from cortexlang.passes.result import PassResult, unchanged

DEPTH = 2


def unroll_recursion(program: RecursiveProgram) -> RecursiveProgram:
    """The program with the unrolled schedule where legal; the same object where not."""
    return unroll_recursion_result(program).ir


def unroll_recursion_result(program: RecursiveProgram) -> PassResult[RecursiveProgram]:
    """Unroll the recursion by 2 where legal (module docstring); say what, or why not."""
    if program.unroll is not None:
        return unchanged(program, "the recursion is unrolled already")
    if program.structure_kind == "dag":
        return unchanged(program, "a DAG's node may have two parents, and cannot be computed "
                         "in the step of each")
    children = tuple(range(program.max_children))
    note = (f"{DEPTH} heights per step: a node of odd height is computed with its parent "
            "when that is its one parent and one height higher")
    return PassResult(replace(program, unroll=Unroll(DEPTH, children),
                              notes=program.notes + (("unroll_recursion", note),)), note)

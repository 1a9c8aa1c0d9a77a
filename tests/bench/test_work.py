"""The bench's work counts: the useful work every implementation is credited with, and the
work a compiled run cannot avoid, from which a cell's floor is taken."""

from __future__ import annotations

from cortexlang.bench.inputs import load_model
from cortexlang.bench.work import model_work, run_work
from cortexlang.inputs import generators
from cortexlang.ir.checked import CheckedProgram
from cortexlang.ir.recursive import RecursiveProgram
from cortexlang.passes.pipeline import Options, run_pipeline


def _recursive(program: CheckedProgram, options: Options | None = None) -> RecursiveProgram:
    return run_pipeline(program, options or Options()).recursive


def test_written_work_of_treelstm_counts_its_products() -> None:
    program = load_model("treelstm", 64)
    work = model_work(program)
    # Leaf: W_leaf [3H, H] @ Emb[word]; internal: U [5H, 2H] @ [h0; h1].
    assert work.leaf_flops >= 2 * 3 * 64 * 64
    assert work.internal_flops >= 2 * 5 * 64 * 2 * 64


def test_tabulated_leaves_are_not_run_work() -> None:
    """With leaf tables a leaf is a row lookup: the floor must not count W_leaf @ Emb[word]
    (a run that skips it beat a floor that did, which is a measurement error)."""
    program = load_model("treelstm", 64)
    written = model_work(program)
    tabulated = run_work(_recursive(program), program)
    assert tabulated.leaf_flops == 0 < written.leaf_flops
    assert tabulated.internal_flops <= written.internal_flops
    # Only U and b are read at run time, not W_leaf or b_leaf.
    assert tabulated.weight_bytes == 4 * (5 * 64 * 2 * 64 + 5 * 64)
    untabulated = run_work(_recursive(program, Options().without("tabulate_leaves")), program)
    assert untabulated.leaf_flops == written.leaf_flops


def test_run_work_never_exceeds_the_written_work() -> None:
    trees = generators.sst_like_trees(5, rng=1)
    for model in ("treefc", "treegru", "treelstm", "mvrnn"):
        program = load_model(model, 32)
        written = model_work(program)
        necessary = run_work(_recursive(program), program)
        for tree in trees:
            assert 0 < necessary.batch_flops([tree], False) <= written.batch_flops([tree], False)

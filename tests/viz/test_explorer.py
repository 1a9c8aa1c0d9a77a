"""The explorer: a view per step in a fixed order, notes from each pass, skipped passes
listed, and a new pass drawn without touching any renderer."""

from __future__ import annotations

import pytest
from cortexlang.viz.explorer import explore, view_names

from cortexlang.passes import pipeline
from cortexlang.passes.pipeline import Options, Step
from cortexlang.passes.result import PassResult

from .conftest import small_program, small_trees


def test_views_follow_the_pipeline_with_fixed_numbers() -> None:
    exploration = explore(small_program(), structures=small_trees())
    names = [view.name for view in exploration.views]
    assert names == list(view_names())
    assert names[:2] == ["program", "recursive"]
    assert names[-3:] == ["inputs", "linearized", "run"]
    assert [view.number for view in exploration.views] == list(range(1, len(names) + 1))
    by_name = {view.name: view for view in exploration.views}
    for stage in ("program", "recursive", "loops", "kernels", "opencl"):
        assert by_name[stage].kind == "stage" and by_name[stage].dot and by_name[stage].text
    refactor = by_name["refactor_recursion"]
    assert refactor.status == "changed" and refactor.note == "moved W @ h into each child's step"
    assert by_name["hoist_invariants"].note.startswith("unchanged")  # with the reason, if any
    assert by_name["run"].status == "unavailable"          # no device was given
    assert by_name["linearized"].slug == f"{by_name['linearized'].number:02d}_linearized"
    assert by_name["program"].lines == (16, 19, 21)       # the statements and the output


def test_switched_off_passes_are_listed_as_skipped_with_the_same_numbers() -> None:
    full = explore(small_program())
    none = explore(small_program(), Options.level(0))
    assert [view.name for view in full.views] == [view.name for view in none.views]
    skipped = {view.name: view for view in none.views if view.status == "skipped"}
    assert {"specialize_leaves", "fold_constants", "refactor_recursion"} <= set(skipped)
    assert skipped["refactor_recursion"].note == "skipped (option refactor_recursion off)"
    assert skipped["refactor_recursion"].dot is None
    assert {view.name for view in none.views if view.status == "unavailable"} == {
        "inputs", "linearized", "run"}


def test_a_new_pass_gets_a_picture_and_a_note_without_renderer_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def rename_nothing(program, options, limits, products):  # type: ignore[no-untyped-def]
        # A pass that does not apply: the very program it was given, and why, beside it.
        return PassResult(program, "looked at every operator")

    steps = list(pipeline.PIPELINE)
    position = next(index for index, step in enumerate(steps) if step.name == "lower_loops")
    steps.insert(position, Step("mark_everything", "recursive", None, rename_nothing,
                                "an extra pass for the test"))
    monkeypatch.setattr(pipeline, "PIPELINE", tuple(steps))
    exploration = explore(small_program())
    view = next(view for view in exploration.views if view.name == "mark_everything")
    assert view.kind == "pass" and view.status == "unchanged"
    assert view.note == "unchanged: looked at every operator"
    assert view.dot is not None and "recursion cut" in view.dot
    assert view.text.startswith("recursive program")


def test_only_wanted_views_are_drawn() -> None:
    exploration = explore(small_program(), structures=small_trees(),
                          wanted=lambda name: name == "loops")
    drawn = [view.name for view in exploration.views if view.dot is not None]
    assert drawn == ["loops"]
    assert all(view.text for view in exploration.views if view.status not in (
        "skipped", "unavailable"))


def test_an_unchanged_pass_is_drawn_with_the_reason_it_gave() -> None:
    views = {view.name: view for view in explore(small_program()).views}
    assert views["hoist_invariants"].status == "unchanged"
    assert views["hoist_invariants"].note == \
        "unchanged: every computed operator depends on the node"
    assert views["dense_intermediates"].note == "unchanged: the loop program has no temporaries"
    for name in ("fold_constants", "hoist_invariants", "dense_intermediates"):
        assert views[name].status == "unchanged" and views[name].dot is not None, name
    # The text is the IR the pass returned, the very one it was given: the previous view's.
    assert views["hoist_invariants"].text == views["refactor_recursion"].text

"""The exercise checks report a wrong answer as FAIL, with what differs, and never crash."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(TUTORIALS))
    monkeypatch.delenv("CORTEXLANG_TUTORIAL_SOLUTIONS", raising=False)
    for name in ("checks", "common"):
        sys.modules.pop(name, None)
    import checks as module

    module.RESULTS.clear()
    yield module
    for name in ("checks", "common"):
        sys.modules.pop(name, None)


def trees() -> list[object]:
    from cortexlang.inputs import generators

    return [generators.perfect_tree(2, rng=0), generators.skewed(4, "left", rng=1)]


def test_a_wrong_answer_fails_with_what_differs(checks: ModuleType,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def heights_off_by_one(structure):  # type: ignore[no-untyped-def]
        return np.ones(structure.num_nodes, dtype=np.int32)

    assert checks.check_exercise_3_1(heights_off_by_one, trees()) is False
    result = checks.RESULTS[-1]
    assert (result.number, result.status) == ("3.1", "FAIL")
    assert "differs" in result.detail
    assert "[FAIL] exercise 3.1" in capsys.readouterr().out


def test_an_exception_in_the_answer_is_reported(checks: ModuleType) -> None:
    def broken(structure):  # type: ignore[no-untyped-def]
        return structure.no_such_field

    assert checks.check_exercise_3_1(broken, trees()) is False
    assert checks.RESULTS[-1].status == "FAIL"
    assert "AttributeError" in checks.RESULTS[-1].detail


def test_a_program_the_checker_rejects_shows_its_errors(checks: ModuleType) -> None:
    def source() -> str:
        return "model Broken\nstructure binary_tree\n"

    assert checks.check_exercise_1_2(source, trees(), 5000) is False
    assert "error[E" in checks.RESULTS[-1].detail


def test_a_blank_exercise_is_todo(checks: ModuleType) -> None:
    def blank(results):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    run = SimpleNamespace(timings={"linearize": 1.0, "prepare": 2.0, "compute": 3.0})
    assert checks.check_exercise_6_3(blank, [run]) is False
    assert checks.RESULTS[-1].status == "TODO"


def test_the_solutions_are_used_only_when_asked(checks: ModuleType,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def crossover(results):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    assert checks.exercise("6.2")(crossover) is crossover
    monkeypatch.setenv("CORTEXLANG_TUTORIAL_SOLUTIONS", "1")
    solution = checks.exercise("6.2")(crossover)
    assert solution is not crossover
    from timing import Timing

    table = {8: {"one group": Timing("one group", (2.0, 2.1)), "level": Timing("level", (1.0,))}}
    assert solution(table) == 8

"""The course's timer: a difference is called only when the confidence interval of the paired
ratio lies beyond the margin, fast rows get more samples, and conclusions are recorded for
scripts/lesson-conclusions."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"


@pytest.fixture
def timing(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(TUTORIALS))
    monkeypatch.delenv("CORTEXLANG_TUTORIAL_CONCLUSIONS", raising=False)
    sys.modules.pop("timing", None)
    import timing as module

    yield module
    sys.modules.pop("timing", None)


def paired(timing: ModuleType, label: str, ratios: list[float],
           code: str | None = None) -> tuple[object, object]:
    """A row and a reference timed in the same rounds, the row's time over the reference's
    in round i being ratios[i]; the load changes fourfold from round to round."""
    loads = [1.0 + 3.0 * (number % 2) for number in range(len(ratios))]
    rounds = tuple(range(len(ratios)))
    reference = timing.Timing("reference", tuple(loads), code, rounds)
    times = tuple(load * ratio for load, ratio in zip(loads, ratios, strict=True))
    row = timing.Timing(label, times, code, rounds)
    return row, reference


@pytest.mark.parametrize(("ratios", "expected"), [
    ([0.5] * 9 + [1.5], "faster"),                 # the load's swings cancel round by round
    ([2.5] * 9 + [0.9], "slower"),
    ([0.9] * 10, "no clear difference"),           # won every round, but within the margin
    ([0.95, 1.1] * 5, "no clear difference"),
    ([1.15, 1.25] * 5, "no clear difference"),     # about 20%: the interval straddles it
    ([0.5] * 6 + [1.2] * 4, "no clear difference"),  # 0.5x, but lost four rounds in ten
])
def test_a_difference_needs_its_interval_beyond_the_margin(
        timing: ModuleType, ratios: list[float], expected: str) -> None:
    row, reference = paired(timing, "row", ratios)
    found = timing.verdict(row, reference)
    assert found.kind == expected
    assert found.low <= found.ratio <= found.high
    assert timing.verdict(reference, reference).kind == "reference"


def test_without_rounds_the_sample_ranges_decide(timing: ModuleType) -> None:
    def row(label: str, low: float, middle: float, high: float) -> object:
        return timing.Timing(label, (low,) * 2 + (middle,) * 7 + (high,) * 2)

    reference = row("reference", 0.9, 1.0, 1.1)
    assert timing.verdict(row("row", 0.4, 0.5, 0.6), reference).kind == "faster"
    assert timing.verdict(row("row", 0.3, 0.7, 0.95), reference).kind == "no clear difference"
    assert timing.verdict(row("row", 0.86, 0.88, 0.89), reference).kind == "no clear difference"


def test_rows_running_the_same_code_are_same_code_whatever_the_times(
        timing: ModuleType) -> None:
    row, reference = paired(timing, "row", [0.3] * 10, code="kernel")
    assert timing.verdict(row, reference).kind == "same code"


def test_fast_rows_get_more_samples(timing: ModuleType) -> None:
    import time

    def slow() -> None:
        time.sleep(0.004)

    timings = timing.compare({"slow": slow, "fast": lambda: None}, budget_s=0.0,
                             min_samples=3)
    assert len(timings["slow"].samples) == 3
    assert len(timings["fast"].samples) == 3 * timing.MAX_REPEATS


def test_conclusions_are_recorded_when_asked(timing: ModuleType, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "conclusions.jsonl"
    monkeypatch.setenv("CORTEXLANG_TUTORIAL_CONCLUSIONS", str(record))
    monkeypatch.syspath_prepend(str(TUTORIALS))            # timing_table imports common
    quick, base = paired(timing, "quick", [0.5] * 10)
    timings = {"base": base, "quick": quick}
    timing.timing_table(timings, "base")
    timing.conclude("quick is 2.0x faster", stable="quick faster")
    assert capsys.readouterr().out == "quick is 2.0x faster\n"
    entries = [json.loads(line) for line in record.read_text().splitlines()]
    assert [entry["kind"] for entry in entries] == ["verdict", "verdict", "sentence"]
    assert entries[1]["row"] == "quick" and entries[1]["verdict"] == "faster"
    assert entries[2]["stable"] == "quick faster"


def test_only_rounds_both_were_timed_in_count(timing: ModuleType) -> None:
    loads = (1.0, 1.2, 1.5, 2.0, 4.0, 4.0)
    reference = timing.Timing("reference", loads, rounds=tuple(range(6)))
    row = timing.Timing("row", tuple(0.6 * load for load in loads[:4]) + (9.0, 9.0),
                        rounds=(0, 1, 2, 3, 90, 91))
    assert timing.round_ratios(row, reference) == pytest.approx([0.6] * 4)


def test_the_interval_of_the_median_narrows_with_more_rounds(timing: ModuleType) -> None:
    ratios = [1.0 + 0.01 * (number % 41 - 20) for number in range(400)]   # 0.8 .. 1.2
    _, low_few, high_few = timing.ratio_interval(ratios[::20])    # 20 of them
    middle, low, high = timing.ratio_interval(ratios)
    assert low_few <= low <= middle <= high <= high_few
    assert high - low < (high_few - low_few) / 2

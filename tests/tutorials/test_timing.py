"""The course's timer: a difference is called only beyond the margin and the noise, fast rows
get more samples, and conclusions are recorded for scripts/lesson-conclusions."""

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


def row(timing: ModuleType, label: str, low: float, middle: float, high: float,
        code: str | None = None) -> object:
    """Samples whose p10, median and p90 are `low`, `middle` and `high`."""
    return timing.Timing(label, (low,) * 2 + (middle,) * 7 + (high,) * 2, code)


@pytest.mark.parametrize(("numbers", "expected"), [
    ((0.40, 0.50, 0.60), "faster"),              # 2x, ranges apart
    ((2.1, 2.5, 3.0), "slower"),
    ((0.86, 0.88, 0.89), "about the same"),      # ranges apart, but within the margin
    ((0.70, 1.05, 1.60), "about the same"),      # within the margin, ranges overlapping
    ((0.30, 0.70, 0.95), "too noisy to tell"),   # 0.7x, but the ranges overlap
])
def test_a_difference_needs_the_margin_and_separate_ranges(
        timing: ModuleType, numbers: tuple[float, float, float], expected: str) -> None:
    reference = row(timing, "reference", 0.9, 1.0, 1.1)
    assert timing.verdict(row(timing, "row", *numbers), reference).kind == expected
    assert timing.verdict(reference, reference).kind == "reference"


def test_rows_running_the_same_code_are_same_code_whatever_the_times(
        timing: ModuleType) -> None:
    reference = row(timing, "reference", 0.9, 1.0, 1.1, code="kernel")
    assert timing.verdict(row(timing, "row", 0.2, 0.3, 0.4, code="kernel"),
                          reference).kind == "same code"


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
    timings = {"base": row(timing, "base", 0.9, 1.0, 1.1),
               "quick": row(timing, "quick", 0.4, 0.5, 0.6)}
    timing.timing_table(timings, "base")
    timing.conclude("quick is 2.0x faster", stable="quick faster")
    assert capsys.readouterr().out == "quick is 2.0x faster\n"
    entries = [json.loads(line) for line in record.read_text().splitlines()]
    assert [entry["kind"] for entry in entries] == ["verdict", "verdict", "sentence"]
    assert entries[1]["row"] == "quick" and entries[1]["verdict"] == "faster"
    assert entries[2]["stable"] == "quick faster"


def test_the_ratio_is_paired_by_round(timing: ModuleType) -> None:
    # The load drifts (1x to 4x) from round to round; in every round both were timed in, the
    # row takes 0.6 of the reference's time. Its samples from rounds the reference has no
    # sample of do not count.
    loads = (1.0, 1.2, 1.5, 2.0, 4.0, 4.0)
    reference = timing.Timing("reference", tuple(loads), rounds=tuple(range(6)))
    row = timing.Timing("row", tuple(0.6 * load for load in loads[:4]) + (4.0, 4.0),
                        rounds=(0, 1, 2, 3, 90, 91))
    assert abs(timing.paired_ratio(row, reference) - 0.6) < 1e-9
    assert timing.verdict(row, reference).kind == "too noisy to tell"   # ranges overlap

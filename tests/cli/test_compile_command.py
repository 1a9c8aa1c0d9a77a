"""`cortexlang compile`: --print-after for every step and optimisation, --print-changed with
the reasons of the unchanged steps, --disable's help from Options.names()."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexlang.cli import main
from cortexlang.passes.pipeline import STEP_NAMES, Options, step_of

TREEFC = str(Path(__file__).resolve().parents[2] / "examples" / "treefc.cx")
SMALL = ["-D", "H=4", "-D", "V=7", "--generic"]


@pytest.mark.parametrize("name", sorted(set(STEP_NAMES) | set(Options.names())))
def test_print_after_works_for_every_step_and_optimisation(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    step = step_of(name)
    assert step is not None
    # A step whose optimisation is off by default (unroll_recursion) is switched on.
    enable = ["--enable", step.option] if step.option and \
        not getattr(Options(), step.option) else []
    assert main(["compile", TREEFC, *SMALL, "--print-after", name, *enable]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"=== after {step.name} ({step.stage};"), out[:200]
    assert len(out.splitlines()) > 2


def test_print_changed_says_why_the_other_steps_did_not(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", TREEFC, *SMALL, "--print-changed", "--disable",
                 "fold_constants"]) == 0
    headers = [line for line in capsys.readouterr().out.splitlines()
               if line.startswith("=== ")]
    assert "=== fold_constants did not run: its optimisation `fold_constants` is off ===" \
        in headers
    # Each pass that did not apply gives its own reason (beside the IR it returned as it
    # was), and its IR is not printed.
    assert {line for line in headers if " unchanged: " in line} == {
        "=== hoist_invariants unchanged: every computed operator depends on the node ===",
        "=== dense_intermediates unchanged: the loop program has no temporaries ===",
        "=== tile_rows unchanged: no vectorised unit loop is a flattened matrix with a "
        "product that reads a value per row ===",
        "=== block_weights unchanged: no transposed weight is read only in vectors of one "
        "width narrower than its rows ===",
        "=== unroll_dot_products unchanged: no scalar dot product is contiguous in k with a "
        "length that is a multiple of 4 ==="}
    assert headers[0].startswith("=== after parse_and_check (program; changed; ")
    # Every step is listed once, in pipeline order, whether it changed, did not, or did not
    # run at all.
    named = [line.split()[2] if line.startswith("=== after ") else line.split()[1]
             for line in headers]
    assert named == list(STEP_NAMES)
    assert not any(line.startswith("=== after hoist_invariants") for line in headers)
    # Every step is accounted for, once.
    for step in STEP_NAMES:
        assert sum(f" {step} " in line for line in headers) == 1, step


def test_an_unknown_step_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", TREEFC, *SMALL, "--print-after", "unroll"]) == 2
    assert "error[E0703]" in capsys.readouterr().err


def test_the_disable_help_lists_every_optimisation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name in Options.names():
        assert name in help_text, name

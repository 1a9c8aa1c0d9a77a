"""Shared inputs of the viz tests: a small model, small trees with hostile tokens, and a
compile of each example with a Recorder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cortexlang.frontend.check import load_program
from cortexlang.inputs.ptb import parse_ptb
from cortexlang.inputs.structure import Structure
from cortexlang.ir.checked import CheckedProgram
from cortexlang.passes.pipeline import Options, Recorder, StepRecord, run_pipeline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Tokens of PTB inputs are arbitrary text: each of these must survive DOT and HTML.
HOSTILE_TOKENS = ('"<b>&', 'a"b<script>', "back\\slash", "&lt;")
SMALL_TREES = (f"(3 (2 {HOSTILE_TOKENS[0]}) (1 (2 {HOSTILE_TOKENS[1]}) (2 {HOSTILE_TOKENS[2]})))\n"
               f"(1 (2 {HOSTILE_TOKENS[3]}) (2 plain))\n")

needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None,
                                    reason="Graphviz (`dot`) is not installed: "
                                           "apt-get install graphviz")


def small_program(name: str = "treefc", **sizes: int) -> CheckedProgram:
    """An example model with tiny sizes (H=4, a vocabulary of 16 unless given)."""
    overrides = {"H": 4, "V": 16}
    overrides.update(sizes)
    return load_program(str(EXAMPLES / f"{name}.cx"), overrides)


def small_trees() -> list[Structure]:
    """Two small binary trees whose tokens need escaping everywhere."""
    vocabulary: dict[str, int] = {}
    return parse_ptb(SMALL_TREES, lambda token: vocabulary.setdefault(token, len(vocabulary)))


def records(program: CheckedProgram, options: Options | None = None) -> dict[str, StepRecord]:
    """Every recorded step of compiling `program`, by step name."""
    recorder = Recorder()
    run_pipeline(program, options or Options(), instruments=[recorder])
    return {record.step: record for record in recorder.records}


@pytest.fixture
def trees() -> list[Structure]:
    return small_trees()

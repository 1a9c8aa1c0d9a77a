"""Compiler tests: helpers importable as `compiler_support`, goldens, and
a summary of the largest compiled-versus-interpreter error per model.

`--update-goldens` and its `update_goldens` fixture are defined once for the whole suite,
in tests/conftest.py. Regenerate the stage goldens with

    pytest tests/compiler/test_goldens.py --update-goldens

and review `git diff tests/golden` before committing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from compiler_support import FLOOR, MAX_ERRORS, RELATIVE_TOLERANCE, SWEEP_STATS  # noqa: E402


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for what, outcome, seconds in SWEEP_STATS:
        terminalreporter.write_line(f"sweep: {what}: {outcome} ({seconds:.1f} s)")
    if not MAX_ERRORS:
        return
    terminalreporter.section("largest error against the interpreter, per model")
    terminalreporter.write_line(f"error = |compiled - interpreter| / max(|interpreter|, "
                                f"{FLOOR:g}); bound {RELATIVE_TOLERANCE:g}")
    for model in sorted(MAX_ERRORS):
        error, label = MAX_ERRORS[model]
        terminalreporter.write_line(f"  {model:<32} {error:.2e}   ({label})")

"""The installed `cortexlang` console script, as a user runs it (skipped without a venv)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "cortexlang"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="no .venv/bin/cortexlang")


def cortexlang(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)


def test_run_prints_json_and_exits_0() -> None:
    result = cortexlang("run", "examples/treegru.cx", "--synthetic", "2", "-D", "H=8", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "TreeGRU" and summary["inputs"]["structures"] == 2


def test_user_and_usage_errors_show_no_traceback() -> None:
    result = cortexlang("run", "examples/treegru.cx", "--synthetic", "1", "-D", "H")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = cortexlang("check", "examples/nonexistent.cx")
    assert result.returncode == 1 and "error[E0001]" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    """`cortexlang run ... | head -0`: the reader is gone before anything is written."""
    process = subprocess.Popen([str(SCRIPT), "run", "examples/treefc.cx", "--synthetic", "2",
                                "-D", "H=4"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read()
    assert process.wait(timeout=120) == 0, error
    assert error == ""

"""A run stopped by a real SIGINT or SIGTERM while it writes leaves an existing output file as
it was and no temporary file beside it, for every command that writes one.

Each case runs the command line in a fresh Python process whose file writer sends the
process the signal itself, after the new contents are written and before they would replace
the old file: the worst moment, hit every time, with no sleeps to tune.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREEFC = str(ROOT / "examples" / "treefc.cx")

# The child process: `os.fsync` inside cortexlang.atomic (called after the data is written,
# before the rename) delivers the signal, then the command line runs as a user runs it.
CHILD = """
import os, signal, sys
from cortexlang import atomic
from cortexlang.cli import main

number = int(sys.argv[1])

def fsync_then_signal(descriptor):
    os.kill(os.getpid(), number)

atomic.os.fsync = fsync_then_signal
sys.exit(main(sys.argv[2:]))
"""

WRITERS = {
    "run --out": ["run", TREEFC, "-D", "H=4", "--synthetic", "2", "--backend", "interp",
                  "--out", "{out}"],
    "compile -o": ["compile", TREEFC, "-D", "H=4", "--generic", "--emit", "loops",
                   "-o", "{out}"],
    "weights --init -o": ["weights", TREEFC, "-D", "H=4", "-D", "V=10", "--init",
                          "-o", "{out}"],
}
SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_while_writing_keeps_the_old_file(writer: str, name: str,
                                                   tmp_path: Path) -> None:
    number, expected_code = SIGNALS[name]
    out = tmp_path / "result.out"
    out.write_bytes(b"the previous result")
    argv = [part.replace("{out}", str(out)) for part in WRITERS[writer]]
    result = subprocess.run([sys.executable, "-c", CHILD, str(int(number)), *argv],
                            capture_output=True, text=True, cwd=ROOT, timeout=120,
                            check=False)
    assert result.returncode == expected_code, result.stderr
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == b"the previous result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["result.out"]


def test_a_signal_while_writing_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new.npz"
    argv = [part.replace("{out}", str(out)) for part in WRITERS["run --out"]]
    result = subprocess.run([sys.executable, "-c", CHILD, str(int(signal.SIGTERM)), *argv],
                            capture_output=True, text=True, cwd=ROOT, timeout=120,
                            check=False)
    assert result.returncode == 143, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_a_signal_the_same_writers_replace_the_file(tmp_path: Path) -> None:
    """The harness itself: with a harmless signal number the writers do write."""
    for writer in sorted(WRITERS):
        out = tmp_path / "result.out"
        out.write_bytes(b"the previous result")
        argv = [part.replace("{out}", str(out)) for part in WRITERS[writer]]
        result = subprocess.run([sys.executable, "-c", CHILD, "0", *argv],
                                capture_output=True, text=True, cwd=ROOT, timeout=120,
                                check=False)
        assert result.returncode == 0, (writer, result.stderr)
        assert out.read_bytes() != b"the previous result"
        assert sorted(path.name for path in tmp_path.iterdir()) == ["result.out"]

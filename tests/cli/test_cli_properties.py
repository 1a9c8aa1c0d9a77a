"""Property: whatever a user types, the command line ends in exit 0, 1 or 2, and any error
carries its code (and, for a mistake in the .cx file, its file:line:col); never exit 70,
never a traceback, never a hang.

`cortexlang.cli.main` runs in-process on mutated programs, mutated PTB trees and random
flag combinations, mostly with the interpreter (fast) and a few times with the compiled
backend. Each example has a wall-clock alarm, so a hang fails the test instead of stalling
the suite. The machine is made to look small (`available_host_bytes`) so that a mutation
that grows a size is refused by the memory check rather than allocating gigabytes.
Deterministic (derandomized, no example database), bounded to about 100 examples.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortexlang.cli import main
from cortexlang.commands import capacity
from cortexlang.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """model TreeFC
sizes H = 4, V = 30
structure binary_tree
param Emb[V, H]
param W[H, H], b[H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = tanh(W @ (h[left(n)] + h[right(n)]) + b)
output h[root]
output p[all] = softmax(W @ h + b)
"""
TREES = "(4 (2 (2 The) (2 acting)) (4 (2 is) (2 superb)))\n(0 (2 (2 a) (2 b)) (2 .))\n"
SMALL_MACHINE = 256 * 2**20
SECONDS_PER_EXAMPLE = 60
# Codes of mistakes in a .cx file: these must point into it.
PROGRAM_CODES = re.compile(r"error\[E0[1-4]\d\d\]")

SETTINGS = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

SNIPPETS = ("+", "-", "*", "@", "(", ")", "[", "]", ",", "=", ":", "\n", " ", "0", "9",
            "H", "V", "n", "#", "2H", "h[left(n)]", "split(", "sum(h[k] for k in children(n))")


@st.composite
def mutated_text(draw: st.DrawFn, text: str, alphabet: tuple[str, ...]) -> str:
    """`text` with one to four edits: a snippet inserted, a span deleted, a line repeated or
    dropped."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("insert", "delete", "repeat line", "drop line")))
        if kind in ("insert", "delete"):
            at = draw(st.integers(0, len(text)))
            if kind == "insert":
                text = text[:at] + draw(st.sampled_from(alphabet)) + text[at:]
            else:
                text = text[:at] + text[at + draw(st.integers(1, 8)):]
        else:
            lines = text.split("\n")
            at = draw(st.integers(0, max(0, len(lines) - 1)))
            lines[at:at + 1] = [lines[at]] * 2 if kind == "repeat line" else []
            text = "\n".join(lines)
    return text


FLAGS = st.lists(st.sampled_from((
    ("--synthetic", "0"), ("--synthetic", "1"), ("--synthetic", "3"),
    ("--synthetic", "1000000000"), ("--synthetic", "-1"), ("--limit", "0"), ("--limit", "1"),
    ("--seed", "-5"), ("--seed", "7"), ("--chunk", "0"), ("--chunk", "1"),
    ("-D", "H=2147483647"), ("-D", "H=10000000"), ("-D", "H=0"), ("-D", "V=-1"),
    ("-D", "Q=3"), ("-D", "H"), ("--float64",), ("--json",), ("--allow-nonfinite",),
    ("--device", "bogus"), ("--device", "0:0"), ("--backend", "interp"),
    ("--backend", "nope"), ("--format", "json"), ("--format", "ptb"),
    ("--vocab", "missing.txt"), ("--weights", "missing.npz"), ("--trees", "{trees}"),
    ("--out", "{out}"), ("--out", "{directory}"), ("--set", "x=1"), ("-O", "2"),
    ("--node-tile", "0"), ("--limit", "x"),
)), max_size=5)


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Fail (TimeoutError) when the block runs longer than `seconds`."""
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the command line ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity, "available_host_bytes", lambda: SMALL_MACHINE)


def assert_clean_exit(argv: list[str], capsys: pytest.CaptureFixture[str],
                      model: Path | None = None) -> int:
    with alarm(SECONDS_PER_EXAMPLE):
        code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    if code != 0:
        assert re.search(r"error\[E\d{4}\]|usage: cortexlang", err), (argv, err)
    if model is not None and code == 1 and PROGRAM_CODES.search(err):
        assert re.search(rf" --> {re.escape(str(model))}:\d+:\d+", err), (argv, err)
    return code


def _working_device() -> bool:
    try:
        from cortexlang.runtime.devices import select_device

        select_device()
    except (ImportError, EnvironmentProblem):
        return False
    return True


def _write(tmp_path: Path, program: str, trees: str) -> tuple[Path, Path]:
    model, tree_file = tmp_path / "model.cx", tmp_path / "trees.ptb"
    model.write_text(program)
    tree_file.write_text(trees)
    return model, tree_file


def _substitute(flags: list[tuple[str, ...]], tmp_path: Path, trees: Path) -> list[str]:
    names = {"{trees}": str(trees), "{out}": str(tmp_path / "out.npz"),
             "{directory}": str(tmp_path)}
    return [names.get(part, part) for flag in flags for part in flag]


TREE_EDITS = ("(", ")", " ", "x", "(2 x)", "\n")


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, ...]]]:
    """One thing mutated at a time (the program, the trees or the flags), so that most
    examples get past the first check and reach the later ones."""
    part = draw(st.sampled_from(("program", "trees", "flags", "flags")))
    program = draw(mutated_text(PROGRAM, SNIPPETS)) if part == "program" else PROGRAM
    trees = draw(mutated_text(TREES, TREE_EDITS)) if part == "trees" else TREES
    flags = draw(FLAGS) if part == "flags" else []
    return program, trees, flags


@SETTINGS
@given(case=cases(), command=st.sampled_from(("run", "run", "run", "check")))
def test_the_command_line_never_fails_uncleanly(case: tuple[str, str, list[tuple[str, ...]]],
                                                 command: str, tmp_path: Path,
                                                 small_machine: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    program, trees, flags = case
    model, tree_file = _write(tmp_path, program, trees)
    argv = [command, str(model)]
    if command == "run":
        argv += ["--backend", "interp"] + _substitute(flags, tmp_path, tree_file)
        if not any(flag[0] in ("--synthetic", "--trees") for flag in flags):
            argv += ["--trees", str(tree_file)]
    assert_clean_exit(argv, capsys, model)


@settings(SETTINGS, max_examples=6)
@given(trees=mutated_text(TREES, TREE_EDITS),
       flags=st.lists(st.sampled_from((("--chunk", "1"), ("--limit", "1"), ("--json",),
                                       ("--node-tile", "2"), ("--disable", "unroll"),
                                       ("--device", "bogus"))), max_size=2))
def test_the_compiled_backend_never_fails_uncleanly(trees: str, flags: list[tuple[str, ...]],
                                                     tmp_path: Path, small_machine: None,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    if not _working_device():
        pytest.skip("no working OpenCL device")
    model, tree_file = _write(tmp_path, PROGRAM, trees)
    argv = ["run", str(model), "--backend", "compiled", "--trees", str(tree_file)]
    code = assert_clean_exit(argv + _substitute(flags, tmp_path, tree_file), capsys, model)
    assert code in (0, 1, 2)

"""Random legal programs (random_programs.py) check, compile, build and agree with the
interpreter, each under its own random option set; and the corpus of programs such draws
found (tests/compiler/random_corpus/*.cx) keeps agreeing.

The default tier draws PROGRAMS small programs from the run's seed (printed in the header; a
program's id is its own seed, and `pytest --seed N` draws the same ones again); `--all`
draws EXHAUSTIVE_PROGRAMS, up to four times longer. A failing draw prints its source: save it as
tests/compiler/random_corpus/NAME.cx with the header lines the corpus test reads (below), marked
`# xfail:` with the reason when it is a compiler bug being fixed.

Corpus header lines (comments at the top of each .cx):

    # options: -fuse_levels -unroll_dot_products tile=2    the option set (default: all on, tile 4)
    # xfail: the reason                        a known compiler bug (strict: a fix must drop it)
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest
from compiler_support import (
    SWEEP_STATS,
    SWEPT,
    assert_close,
    compile_program,
    full_sweeps,
    option_label,
    run_seed,
    weights_for,
)
from differential import run_compiled
from random_programs import KNOWN_BUGS, LARGE, PATTERNS, SMALL, inputs_for, random_program

from cortexlang.frontend.check import check_source
from cortexlang.interp.interpreter import interpret
from cortexlang.ir.checked import CheckedProgram
from cortexlang.passes.pipeline import Options
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import device_limits

PROGRAMS = 200
EXHAUSTIVE_PROGRAMS = 1000
CORPUS = Path(__file__).resolve().parent / "random_corpus"
FEATURES: collections.Counter[str] = collections.Counter()
TIMES: list[float] = []


def program_seeds() -> list[int]:
    count = EXHAUSTIVE_PROGRAMS if full_sweeps() else PROGRAMS
    return [run_seed() * 100_000 + index for index in range(count)]


def agrees_with_the_interpreter(device: Device, checked: CheckedProgram, options: Options,
                                seed: int, label: str) -> None:
    result = compile_program(checked, options, device_limits(device))
    vector = [item for item in checked.inputs if item.kind == "vector"]
    structures = inputs_for(checked.structure.kind, checked.structure.max_children,
                            vector[0].shape[0] if vector else 0, seed)
    weights = weights_for(checked, seed)
    reference = interpret(checked, structures, weights)
    # The meaning of the generated OpenCL is under test, not its speed: the OpenCL compiler's
    # optimisations are off, which halves the cost of a draw (the examples' own differential
    # tests build as users do).
    outputs = run_compiled(device, result, checked, structures, seed, optimise_build=False)
    assert_close("random programs", label, outputs, reference)


@pytest.mark.opencl
@pytest.mark.parametrize("seed", program_seeds())
def test_a_random_program_agrees_with_the_interpreter(opencl_device: Device, seed: int) -> None:
    started = time.perf_counter()
    program = random_program(seed, budget=LARGE if full_sweeps() else SMALL)
    label = f"random program {seed}, {option_label(program.options)}"
    try:
        checked = check_source(program.source, f"random_{seed}.cx")
        agrees_with_the_interpreter(opencl_device, checked, program.options, seed, label)
    except BaseException as error:
        raise AssertionError(f"{label} ({type(error).__name__}):\n{error}\n\n"
                             f"# options: {_options_line(program.options)}\n"
                             f"{program.source}") from error
    FEATURES.update(program.features)
    TIMES.append(time.perf_counter() - started)
    if len(TIMES) == len(program_seeds()):
        SWEEP_STATS.append((f"random programs: {len(TIMES)} drawn", "features: " + ", ".join(
            f"{name} {count}" for name, count in sorted(FEATURES.items())), sum(TIMES)))


def test_the_draws_cover_the_language() -> None:
    """The first hundred draws of any seed hold every feature the generator knows."""
    seen: set[str] = set()
    for seed in program_seeds()[:100]:
        seen |= random_program(seed).features
    expected = {"binary_tree", "tree", "dag", "sequence", "leaf rule", "no leaf rule",
                "leaf guard", "sum over children", "mean over children", "max over children",
                "split", "concat", "slice", "softmax", "condition", "head", "tanh",
                "sigmoid", "relu", "token input", "vector input", "matrix product",
                "child reads"}
    assert expected <= seen, sorted(expected - seen)


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_a_pattern_is_drawn_unless_it_is_a_known_bug(pattern: str) -> None:
    """Forced, a pattern is written (and the program stays legal); unforced, it is drawn
    now and then, and never while it is listed in KNOWN_BUGS."""
    seeds = [run_seed() * 100_000 + index for index in range(300)]
    forced = [random_program(seed, force=[pattern]) for seed in seeds]
    assert any(pattern in program.features for program in forced)
    for program in forced:
        check_source(program.source, f"{pattern}.cx")
    drawn = sum(pattern in random_program(seed).features for seed in seeds)
    assert (drawn == 0) if pattern in KNOWN_BUGS else (drawn > 0)


def _options_line(options: Options) -> str:
    off = [f"-{name}" for name in SWEPT if not getattr(options, name)]
    return " ".join(off + [f"tile={options.node_tile}"])


def _parse_options(line: str) -> Options:
    off = [word[1:] for word in line.split() if word.startswith("-")]
    tiles = [int(word.split("=")[1]) for word in line.split() if word.startswith("tile=")]
    return Options(node_tile=tiles[0] if tiles else Options().node_tile).without(*off)


def _header(path: Path, key: str) -> str | None:
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].strip()
    return None


def _corpus_cases() -> list[object]:
    cases = []
    for path in sorted(CORPUS.glob("*.cx")):
        reason = _header(path, "xfail")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        cases.append(pytest.param(path, id=path.stem, marks=marks))
    return cases


@pytest.mark.opencl
@pytest.mark.parametrize("path", _corpus_cases())
def test_a_corpus_program_agrees_with_the_interpreter(opencl_device: Device, path: Path) -> None:
    options = _parse_options(_header(path, "options") or "")
    checked = check_source(path.read_text(), str(path))
    agrees_with_the_interpreter(opencl_device, checked, options, 1,
                                f"corpus {path.stem}, {option_label(options)}")

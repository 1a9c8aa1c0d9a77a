"""Golden text of every stage of every example: tests/golden/<model>/<NN>_<step>.txt.

One file per step the `Recorder` sees (the checked program, the recursive program after each
pass, the loop IR, the kernel IR and the OpenCL C), numbered like `DumpDirectory` numbers its
dumps, with the default Options, fixed small sizes and the default `DeviceLimits()` (never
the local device's, so the text is the same on every machine); and in <model>/gpu/ the
kernel IR and OpenCL of the two GPU plans (hybrid, per-level) under fixed GPU-like limits.
A change to the compiler that changes any stage shows up here as a diff to review;
regenerate with

    pytest tests/compiler/test_goldens.py --update-goldens

(the option is defined in tests/conftest.py) and read `git diff tests/golden` before
committing.

The texts are made in a child process with PYTHONHASHSEED=0, so that a golden cannot flip
from run to run; `test_stage_text_does_not_depend_on_the_hash_seed` checks separately that
the text is the same under every seed (lower_loops once ordered temporaries by iterating a
set).
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from compiler_support import EXAMPLE_NAMES, HERE, REPOSITORY, small_example

from cortexlang.passes.pipeline import (
    DumpDirectory,
    Options,
    Recorder,
    Verify,
    format_ir,
    run_pipeline,
)
from cortexlang.passes.plan_kernels import DeviceLimits

GOLDEN = REPOSITORY / "tests" / "golden"
# Fixed sizes for the goldens: small enough to read, with H a multiple of 4 so that vector
# code appears, and distinct values so that a wrong size shows.
GOLDEN_SIZES = {"H": 4, "V": 7, "M": 2, "X": 3, "C": 3, "K": 3}
# The GPU plans (in <model>/gpu/): fixed GPU-like limits, never a real device's, with level
# fusion (the hybrid plan) and without (one launch per batch and phase).
GPU_LIMITS = DeviceLimits(max_work_group_size=256, local_mem_size=49152, is_gpu=True,
                          preferred_vector_width=4, compute_units=16)
GPU_PLANS = {"hybrid": Options(), "level": Options().without("fuse_levels")}


def dump_stages(name: str, directory: Path) -> None:
    """Write every step's text of one example into `directory`, as the pipeline dumps it."""
    program = small_example(name, **GOLDEN_SIZES)
    recorder = Recorder()
    run_pipeline(program, Options(), DeviceLimits(),
                 instruments=[Verify(), recorder, DumpDirectory(directory)])
    written = sorted(path.name for path in directory.glob("*.txt"))
    expected = sorted(f"{number:02d}_{record.step}.txt"
                      for number, record in enumerate(recorder.records, start=1))
    assert written == expected, "DumpDirectory and Recorder disagree"
    gpu = directory / "gpu"
    gpu.mkdir(parents=True, exist_ok=True)
    for plan, options in GPU_PLANS.items():
        result = run_pipeline(program, options, GPU_LIMITS, instruments=[Verify()])
        assert result.kernels.strategy == plan
        (gpu / f"{plan}_kernels.txt").write_text(format_ir("kernels", result.kernels))
        (gpu / f"{plan}_opencl.txt").write_text(result.source)


def dump_in_child(directory: Path, hash_seed: int, names: tuple[str, ...] = EXAMPLE_NAMES,
                  ) -> dict[str, dict[str, str]]:
    """Every example's stage texts, made by a fresh interpreter with a fixed hash seed."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from test_goldens import dump_stages; "
            "[dump_stages(name, Path(sys.argv[2]) / name) for name in sys.argv[3:]]")
    environment = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    subprocess.run([sys.executable, "-c", code, HERE, str(directory), *names], check=True,
                   env=environment, cwd=REPOSITORY, timeout=300)
    return {name: {path.relative_to(directory / name).as_posix(): path.read_text()
                   for path in sorted((directory / name).rglob("*.txt"))} for name in names}


@pytest.fixture(scope="module")
def stage_texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return dump_in_child(tmp_path_factory.mktemp("stages"), hash_seed=0)


def _diff(name: str, expected: str, actual: str, limit: int = 60) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                      f"golden/{name}", "now", lineterm=""))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more diff lines"]
    return "\n".join(lines)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_stage_matches_its_golden_text(name: str, stage_texts: dict[str, dict[str, str]],
                                             update_goldens: bool) -> None:
    texts = stage_texts[name]
    folder = GOLDEN / name
    if update_goldens:
        (folder / "gpu").mkdir(parents=True, exist_ok=True)
        for stale in folder.rglob("*.txt"):
            if stale.relative_to(folder).as_posix() not in texts:
                stale.unlink()
        for file_name, text in texts.items():
            (folder / file_name).write_text(text)
        return
    if not folder.is_dir():
        pytest.fail(f"no goldens for {name}: run with --update-goldens (see module docstring)")
    stored = {path.relative_to(folder).as_posix(): path.read_text()
              for path in sorted(folder.rglob("*.txt"))}
    problems: list[str] = []
    missing = sorted(set(texts) - set(stored))
    extra = sorted(set(stored) - set(texts))
    if missing:
        problems.append(f"steps with no golden file: {', '.join(missing)}")
    if extra:
        problems.append(f"golden files of steps that no longer run: {', '.join(extra)}")
    for file_name in sorted(set(texts) & set(stored)):
        if texts[file_name] != stored[file_name]:
            problems.append(_diff(f"{name}/{file_name}", stored[file_name], texts[file_name]))
    assert not problems, (f"{name}: the compiler's stage text changed (regenerate with "
                          "--update-goldens if intended)\n" + "\n\n".join(problems[:3]))


def test_goldens_do_not_depend_on_the_machine() -> None:
    """Texts hold no absolute paths and no device facts other than the fixed limits."""
    for folder in sorted(GOLDEN.iterdir()) if GOLDEN.is_dir() else []:
        for path in folder.glob("*.txt"):
            text = path.read_text()
            assert str(REPOSITORY) not in text, f"{path} holds a path of this checkout"
            for line in text.splitlines():
                if line.startswith("device "):
                    key, value = line[len("device "):].split(" = ")
                    assert dict(DeviceLimits().items())[key] == int(value), (path, line)
        for path in folder.glob("gpu/*.txt"):
            text = path.read_text()
            assert str(REPOSITORY) not in text, f"{path} holds a path of this checkout"
            for line in text.splitlines():
                if line.startswith("device "):
                    key, value = line[len("device "):].split(" = ")
                    assert dict(GPU_LIMITS.items())[key] == int(value), (path, line)


def test_the_goldens_cover_every_example() -> None:
    if not GOLDEN.is_dir():
        pytest.skip("no goldens yet")
    assert sorted(path.name for path in GOLDEN.iterdir() if path.is_dir()) == \
        sorted(EXAMPLE_NAMES)


def test_stage_text_does_not_depend_on_the_hash_seed(
        tmp_path: Path, stage_texts: dict[str, dict[str, str]]) -> None:
    """The same program compiles to the same text in every process, so dumps are reproducible
    and the kernel cache, keyed by the source, hits across runs. (Hash seeds 0 and 2 once
    ordered the temporaries of TreeGRU and MV-RNN differently.)"""
    for seed in (1, 2, 5):
        other = dump_in_child(tmp_path / f"seed{seed}", hash_seed=seed)
        for name, texts in stage_texts.items():
            for file_name, text in texts.items():
                assert other[name][file_name] == text, \
                    f"{name}/{file_name} differs under PYTHONHASHSEED={seed}"

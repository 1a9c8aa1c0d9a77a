"""Every lesson of tutorials/ runs from a clean checkout, with and without the solutions,
as a script and as a notebook.

With the instructor's solutions (`--solutions`), run as a script, every exercise must pass
and the lesson must exit 0: a lesson broken by a change in the library fails here. Without
them (the student's version, every exercise `raise NotImplementedError`), run as a Jupyter
notebook (jupytext reads the percent-format script, nbclient executes it in an ipykernel),
the lesson must still run to the end and report each exercise as TODO: a blank exercise
never crashes a lesson, and the pictures a lesson draws appear inline as SVG.

Each lesson runs with a timeout, writing into a temporary folder, in quick mode
(CORTEXLANG_TUTORIAL_QUICK=1: smaller timing budgets, still at least 20 samples a row). The
kernel cache is the test session's (see tests/conftest.py), so the notebook run reuses the
kernels the script run built.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
LESSONS = sorted(path.name for path in TUTORIALS.glob("lesson[0-9]_*.py"))
# A cold run builds every kernel a lesson uses; a warm one only runs them.
TIMEOUT_SECONDS = {"solutions": 240, "student": 120}

pytestmark = pytest.mark.opencl


def lesson_environment(out: Path, *, solutions: bool) -> dict[str, str]:
    return {
        **os.environ,
        "CORTEXLANG_TUTORIAL_OUT": str(out),
        "CORTEXLANG_TUTORIAL_SOLUTIONS": "1" if solutions else "0",
        "CORTEXLANG_TUTORIAL_QUICK": "1",
        # The generated OpenCL of some programs depends on the hash seed (a set iterated in
        # lower_loops), which would make each run miss the kernel cache; a fixed seed keeps
        # the student run from rebuilding what the solution run built.
        "PYTHONHASHSEED": "0",
    }


def run_lesson(lesson: str, out: Path, *, solutions: bool) -> subprocess.CompletedProcess[str]:
    environment = lesson_environment(out, solutions=solutions)
    return subprocess.run([sys.executable, str(TUTORIALS / lesson)], cwd=TUTORIALS.parent,
                          env=environment, capture_output=True, text=True, check=False,
                          timeout=TIMEOUT_SECONDS["solutions" if solutions else "student"])


def exercise_statuses(output: str) -> dict[str, str]:
    """{exercise number: PASS/FAIL/TODO} from the summary at the end of a lesson."""
    summary = output[output.rindex("\nexercises:"):]
    return dict((number, status) for status, number
                in re.findall(r"^  \[(PASS|FAIL|TODO)\] (\d+\.\d+) ", summary, re.M))


def describe(finished: subprocess.CompletedProcess[str]) -> str:
    return (f"exit code {finished.returncode}\n--- stdout (end) ---\n{finished.stdout[-6000:]}"
            f"\n--- stderr (end) ---\n{finished.stderr[-4000:]}")


def test_every_lesson_is_tested() -> None:
    assert len(LESSONS) == 6, LESSONS


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_passes_with_the_solutions(lesson: str, tmp_path: Path,
                                          opencl_device: object) -> None:
    finished = run_lesson(lesson, tmp_path, solutions=True)
    assert finished.returncode == 0, describe(finished)
    assert "Traceback" not in finished.stdout + finished.stderr, describe(finished)
    statuses = exercise_statuses(finished.stdout)
    assert statuses, describe(finished)
    assert set(statuses.values()) == {"PASS"}, describe(finished)
    assert re.search(r"^data: ", finished.stdout, re.M), "a lesson says which data it used"
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written, "every lesson writes its products into its output folder"


def run_notebook(lesson: str, out: Path, *, solutions: bool) -> tuple[str, list[str]]:
    """Execute the lesson as a notebook; return its text output and the MIME types of its
    rich outputs (image/svg+xml for an inline picture)."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = jupytext.read(TUTORIALS / lesson)
    environment = lesson_environment(out, solutions=solutions)
    saved = dict(os.environ)
    os.environ.update(environment)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(notebook, timeout=TIMEOUT_SECONDS["student"],
                                         kernel_name="python3",
                                         resources={"metadata": {"path": str(TUTORIALS)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text, kinds = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text.append(output["text"])
            kinds.extend(output.get("data", {}))
    return "".join(text), kinds


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_as_a_notebook_with_blank_exercises(lesson: str, tmp_path: Path,
                                                        opencl_device: object) -> None:
    output, kinds = run_notebook(lesson, tmp_path, solutions=False)
    statuses = exercise_statuses(output)
    assert statuses and set(statuses.values()) == {"TODO"}, output[-4000:]
    pictures = "picture: " in output
    assert ("image/svg+xml" in kinds) == pictures, (lesson, kinds)

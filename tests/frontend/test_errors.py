"""Golden error tests: every malformed program in errors/ is checked, and its diagnostics are
compared with the expectations in its header and with the rendered text in its .err file.

Each program starts with a header comment, which is what the test asserts on:

    # expect: E0301 at 9, E0201 at 12      codes with the line of each diagnostic, sorted
    # expect: E0213 at -                   a diagnostic without a location
    # defines: H=0                         optional: -D size overrides for the check

The .err file is the full rendered output (message, caret, hint), kept for review: regenerate
with `pytest tests/frontend --update-goldens` and read the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cortexlang.errors import CortexError
from cortexlang.frontend.check import load_program

ERRORS = Path(__file__).parent / "errors"
PROGRAMS = sorted(ERRORS.glob("*.cx"))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "language.md"

# Codes that no program can trigger (kept so that their numbers are never reused).
RESERVED = {"E0209"}


def _header(path: Path) -> tuple[list[tuple[str, int | None]], dict[str, object]]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    expected: list[tuple[str, int | None]] = []
    defines: dict[str, object] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if (match := re.match(r"#\s*expect:\s*(.*)", line)) and match.group(1) != "?":
            for item in match.group(1).split(","):
                code, _, where = item.strip().partition(" at ")
                expected.append((code, None if where.strip() == "-" else int(where)))
        elif match := re.match(r"#\s*defines:\s*(.*)", line):
            for item in match.group(1).split(","):
                name, _, value = item.strip().partition("=")
                defines[name] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return expected, defines


def _diagnose(path: Path, monkeypatch: pytest.MonkeyPatch) -> CortexError:
    monkeypatch.chdir(path.parent)
    _, defines = _header(path)
    with pytest.raises(CortexError) as caught:
        load_program(path.name, defines)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize("path", PROGRAMS, ids=[path.stem for path in PROGRAMS])
def test_error_program(path: Path, monkeypatch: pytest.MonkeyPatch,
                       update_goldens: bool) -> None:
    expected, _ = _header(path)
    assert expected, f"{path.name} has no `# expect:` header"
    error = _diagnose(path, monkeypatch)
    found = [(d.code, d.span.line if d.span else None) for d in error.diagnostics]
    assert found == expected
    assert path.name.split("_")[0] in error.codes, "the file name names a reported code"
    for diagnostic in error.diagnostics:
        assert diagnostic.message and diagnostic.message == diagnostic.message.strip()

    rendered = error.render() + "\n"
    golden = path.with_suffix(".err")
    if update_goldens:
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"no {golden.name}: run `pytest tests/frontend --update-goldens`"
    assert rendered == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; regenerate with `pytest tests/frontend --update-goldens`")


def test_every_golden_has_a_program() -> None:
    stale = [g.name for g in ERRORS.glob("*.err") if not g.with_suffix(".cx").exists()]
    assert not stale


def test_every_documented_code_has_a_program() -> None:
    documented = set(re.findall(r"^\|\s*(E\d{4})\s*\|", DOCS.read_text(), re.MULTILINE))
    assert len(documented) > 30
    covered = {path.name.split("_")[0] for path in PROGRAMS}
    assert documented - RESERVED <= covered, "write a program in errors/ for each code"
    assert covered <= documented, "document every code in docs/language.md"


def test_goldens_are_sorted_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in PROGRAMS:
        error = _diagnose(path, monkeypatch)
        keys = [d.sort_key() for d in error.diagnostics]
        assert keys == sorted(keys), path.name

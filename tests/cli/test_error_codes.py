"""One registry of error codes (cortexlang/error_codes.py), one meaning each: every code the
package raises is in it, and the documented tables say what it says."""

from __future__ import annotations

import re
from pathlib import Path

from cortexlang.error_codes import CODES

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "cortexlang"
CODE = re.compile(r"\bE\d{4}\b")


def _used_codes() -> dict[str, list[str]]:
    """Every code literal in the package's source (the registry itself left out)."""
    used: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "error_codes.py":
            continue
        for code in re.findall(r"[\"'](E\d{4})[\"']", path.read_text()):
            used.setdefault(code, []).append(str(path.relative_to(REPOSITORY)))
    return used


def test_every_code_the_package_raises_is_registered() -> None:
    missing = {code: paths for code, paths in _used_codes().items() if code not in CODES}
    assert not missing, missing


def test_every_registered_code_is_raised_somewhere_or_reserved() -> None:
    used = _used_codes()
    unused = [code for code, meaning in CODES.items()
              if code not in used and not meaning.startswith("(reserved)")]
    assert not unused, unused


def test_the_language_reference_table_is_the_registry() -> None:
    docs = (REPOSITORY / "docs" / "language.md").read_text()
    table = dict(re.findall(r"^\| (E\d{4}) \| (.*) \|$", docs, re.MULTILINE))
    assert table, "docs/language.md has no error-code table"
    for code, meaning in table.items():
        assert CODES.get(code) == meaning, code
    for code in set(CODE.findall(docs)):
        assert code in CODES, f"docs/language.md names {code}, which is not registered"


def test_the_input_codes_list_is_the_registry() -> None:
    text = (PACKAGE / "inputs" / "__init__.py").read_text()
    listed = dict(re.findall(r"^    (E05\d\d)  (.*)$", text, re.MULTILINE))
    assert listed
    for code, meaning in listed.items():
        assert CODES.get(code) == meaning, code

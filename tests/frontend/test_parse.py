"""Parser behaviour: several syntax errors per file, limits, encodings, the printer."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexlang.errors import CortexError
from cortexlang.frontend import ast
from cortexlang.frontend.parse import MAX_SYNTAX_ERRORS, parse_file, parse_program
from cortexlang.frontend.printer import format_expression, format_program

TREEFC = (Path(__file__).resolve().parents[2] / "examples" / "treefc.cx").read_text()


def diagnosed(source: str) -> list[tuple[str, int | None]]:
    with pytest.raises(CortexError) as caught:
        parse_program(source, "t.cx")
    return [(d.code, d.span.line if d.span else None) for d in caught.value.diagnostics]


def test_each_bad_line_is_reported_once() -> None:
    source = "model M\nsizes H = = 1\nstate h[H]]\nparam W[H] ~ \"x\"\ninternal n:\n  h = 1 +\n"
    assert diagnosed(source) == [("E0101", 2), ("E0101", 3), ("E0102", 4), ("E0101", 6)]


def test_a_line_continued_in_brackets_is_one_line() -> None:
    source = "model M\ninternal n:\n  h = tanh(W @\n    x + + y)\n  c = = 2\n"
    assert diagnosed(source) == [("E0101", 4), ("E0101", 5)]


def test_an_unclosed_bracket_ends_the_search() -> None:
    source = "model M\nsizes H = = 1\ninternal n:\n  h = tanh(x\n  c = = 2\n"
    assert diagnosed(source) == [("E0101", 2), ("E0103", 4)]


def test_an_unclosed_bracket_after_the_error_is_not_blamed_for_it() -> None:
    source = "model M\nsizes H = 4 4\ninternal n:\n  h = (x\n"
    assert diagnosed(source) == [("E0101", 2), ("E0103", 4)]


def test_a_balanced_bracket_spanning_lines_adds_a_note() -> None:
    source = "model M\ninternal n:\n  h = tanh(W @ x\n  c = f(y))\n"
    with pytest.raises(CortexError) as caught:
        parse_program(source, "t.cx")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span and diagnostic.span.line) == ("E0101", 4)
    assert any("3:11" in note for note in diagnostic.notes)


def test_syntax_errors_are_capped() -> None:
    source = "model M\n" + "sizes H = = 1\n" * (MAX_SYNTAX_ERRORS + 5)
    assert len(diagnosed(source)) == MAX_SYNTAX_ERRORS


@pytest.mark.parametrize("expression", [
    "-" * 5000 + "x", "+".join(["x"] * 3000), "tanh(" * 2000 + "x" + ")" * 2000,
    "(" * 3000 + "x" + ")" * 3000 + " @ " + "x[" * 500 + "0" + "]" * 500,
])
def test_deep_nesting_is_a_user_error_not_a_recursion_error(expression: str) -> None:
    codes = {code for code, _ in diagnosed(f"model M\ninternal n:\n  h = {expression}\n")}
    assert codes == {"E0104"}


def test_parentheses_alone_do_not_count_as_nesting() -> None:
    program = parse_program("internal n:\n  h = " + "(" * 500 + "x" + ")" * 500 + "\n")
    assert program.rules[0].statements[0].value == ast.Name("x")


@pytest.mark.parametrize("number", ["1e999", "9" * 400, "1" + "0" * 5000])
def test_numbers_beyond_a_double_are_rejected(number: str) -> None:
    assert diagnosed(f"model M\nsizes H = {number}\n") == [("E0105", 2)]


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.cx"
    path.write_bytes(b"\xef\xbb\xbf" + TREEFC.replace("\n", "\r\n").encode())
    assert parse_file(path) == parse_program(TREEFC)


@pytest.mark.parametrize("make", [
    lambda tmp: tmp / "missing.cx",
    lambda tmp: tmp,
    lambda tmp: (tmp / "latin1.cx", (tmp / "latin1.cx").write_bytes(b"model Caf\xe9\n"))[0],
])
def test_unreadable_files_are_e0001(tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(CortexError) as caught:
        parse_file(path)
    assert caught.value.codes == ["E0001"]


def test_statements_attach_to_the_rule_above() -> None:
    program = parse_program("leaf n: h = 1; c = 2\n  d = 3\nstate h[H]\ninternal m:\n  h = 4\n")
    assert [len(rule.statements) for rule in program.rules] == [3, 1]
    assert program.rules[1].node == "m"


@pytest.mark.parametrize("text", [
    "3 e5", "2 E10x", "3H", "a - (b - c)", "a - b - c", "-x @ y", "-(x @ y)", "(-x)[0]",
    "z * U @ h", "(a + b) * c", "a if isleaf(n) else b if num_children(n) == 1 else c",
    "(a if isleaf(n) else b) + c", "x if (a if isleaf(n) else b) else y",
    "sum(h[k] for k in children(n))", "x[:]", "x[1:]", "x[:H]", "f()", "0.5", "1e-05",
])
def test_printed_expressions_read_back_the_same(text: str) -> None:
    statement = parse_program(f"internal n:\n  t = {text}\n").rules[0].statements[0]
    printed = format_expression(statement.value)
    again = parse_program(f"internal n:\n  t = {printed}\n").rules[0].statements[0]
    assert again == statement, printed


def test_a_program_without_model_line_prints_without_one() -> None:
    program = parse_program("state h[H]\n")
    assert parse_program(format_program(program)) == program


def test_spans_are_excluded_from_equality() -> None:
    assert parse_program(TREEFC) == parse_program("\n\n" + TREEFC.replace("    ", "  "))

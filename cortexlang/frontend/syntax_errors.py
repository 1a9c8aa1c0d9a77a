"""Syntax errors as located diagnostics (E0101-E0103): what was expected, where a bracket
was left open, and the logical lines that `frontend.parse` blanks to find the next error.

`syntax_diagnostic(error, path, source)` turns one Lark error into a `Diagnostic`;
`error_offset` and `blank_logical_line` let the parser resume after it.
"""

from __future__ import annotations

from dataclasses import replace

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cortexlang.errors import Diagnostic, Span

KEYWORDS = frozenset({"model", "sizes", "structure", "param", "input", "state", "leaf",
                      "internal", "output", "for", "in", "if", "else"})

# Friendly names for the grammar's anonymous terminals, used in "expected ..." messages.
_TOKEN_NAMES = {
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "COLON": "':'", "SEMICOLON": "';'", "EQUAL": "'='", "PLUS": "'+'", "MINUS": "'-'",
    "STAR": "'*'", "SLASH": "'/'", "PERCENT": "'%'", "AT": "'@'", "TILDE": "'~'",
    "_NL": "end of line", "NAME": "a name", "INT": "a number", "FLOAT": "a number",
    "COMPARE": "a comparison", "$END": "end of file",
}



# How "expected ..." lists tokens: what ends or continues a line, then the binary operators as
# one entry, then what starts an operand.
_ENDINGS = ("_NL", "COMMA", "RPAR", "RSQB", "COLON", "EQUAL", "SEMICOLON", "TILDE")
_OPERATORS = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "AT"})
_OPERANDS = ("NAME", "INT", "FLOAT", "LPAR", "MINUS", "LSQB", "IF", "ELSE", "FOR", "IN",
             "COMPARE")


def _describe_expected(expected: set[str]) -> str:
    described = [_TOKEN_NAMES[name] for name in _ENDINGS if name in expected]
    binary = len(expected & _OPERATORS) > 1
    if binary:
        described.append("an operator")
    described += [_TOKEN_NAMES.get(name, f"`{name.lower()}`") for name in _OPERANDS
                  if name in expected and not (binary and name in _OPERATORS)]
    known = set(_ENDINGS) | _OPERATORS | set(_OPERANDS)
    described += sorted(_TOKEN_NAMES.get(name, f"`{name.lower().strip('_')}`")
                        for name in expected - known)
    described = list(dict.fromkeys(described))
    if len(described) > 6:
        described = described[:6] + ["..."]
    return ", ".join(described)


def _bracket_scan(source: str) -> tuple[list[tuple[int, int, int, str]], list[tuple[int, int]]]:
    """Brackets never closed, as (offset, line, column, bracket), and the logical lines, as
    (start, end) offsets with `end` at the newline that ends the line (or at the end of text).

    This mirrors the lexer: comments run to the end of the line, newlines inside ( ) or [ ]
    continue the line, and a stray closing bracket is ignored, as `_BracketNewlines` does.
    """
    stack: list[tuple[int, int, int, str]] = []
    logical: list[tuple[int, int]] = []
    start = 0
    line, column = 1, 1
    in_comment = False
    for offset, character in enumerate(source):
        if character == "\n":
            in_comment = False
            if not stack:
                logical.append((start, offset))
                start = offset + 1
            line, column = line + 1, 1
            continue
        if not in_comment:
            if character == "#":
                in_comment = True
            elif character in "([":
                stack.append((offset, line, column, character))
            elif character in ")]" and stack:
                stack.pop()
        column += 1
    logical.append((start, len(source)))
    return stack, logical


def blank_logical_line(source: str, offset: int) -> str:
    """The source with the logical line holding `offset` replaced by spaces (newlines kept)."""
    _, logical = _bracket_scan(source)
    for start, end in logical:
        if start <= offset <= end:
            blank = "".join(c if c == "\n" else " " for c in source[start:end])
            return source[:start] + blank + source[end:]
    return source


def error_offset(error: UnexpectedInput) -> int | None:
    """Where in the text the error is, or None at the end of the file."""
    if isinstance(error, UnexpectedCharacters):
        return error.pos_in_stream
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        return error.token.start_pos
    return None


def syntax_diagnostic(error: UnexpectedInput, path: str, source: str) -> Diagnostic:
    """The diagnostic for one syntax error; an unclosed bracket before it is the one named."""
    diagnostic = _located_syntax_diagnostic(error, path, source)
    if diagnostic.code == "E0102":
        return diagnostic
    unclosed, _ = _bracket_scan(source)
    offset = error_offset(error)
    if not unclosed or (offset is not None and unclosed[0][0] > offset):
        if offset is not None and diagnostic.span is not None:
            open_here, _ = _bracket_scan(source[:offset])
            if open_here and open_here[-1][1] < diagnostic.span.line:
                _, line, column, bracket = open_here[-1]
                note = (f"this is inside the '{bracket}' opened at {line}:{column}; newlines "
                        "inside brackets continue the line")
                return replace(diagnostic, notes=diagnostic.notes + (note,))
        return diagnostic
    _, line, column, bracket = unclosed[0]
    return Diagnostic("E0103", f"'{bracket}' is never closed", Span.point(path, line, column),
                      "opened here", "close it: newlines inside brackets continue the line",
                      (f"the parser stopped at {diagnostic.span}: {diagnostic.message}",))


def _located_syntax_diagnostic(error: UnexpectedInput, path: str, source: str) -> Diagnostic:
    line = getattr(error, "line", 1) or 1
    column = getattr(error, "column", 1) or 1
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        character = source[position] if position < len(source) else "?"
        return Diagnostic("E0102", f"unexpected character {character!r}",
                          Span.point(path, line, column), "not part of the language",
                          "names use letters, digits and _; operators are + - * / % @")
    if isinstance(error, UnexpectedEOF) or (
            isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        lines = source.split("\n")
        last = max(1, len(lines) - (1 if lines and lines[-1] == "" else 0))
        end_column = len(lines[last - 1]) + 1 if lines else 1
        return Diagnostic("E0103", "unexpected end of file", Span.point(path, last, end_column),
                          "the program stops here", "a bracket or expression is not closed")
    assert isinstance(error, UnexpectedToken)
    token = error.token
    text = "end of line" if token.type == "_NL" else repr(str(token))
    span = Span(path, line, column, line, column + max(1, len(str(token).rstrip("\n"))))
    hint = f"expected {_describe_expected(set(error.accepts or error.expected))}"
    if str(token) in KEYWORDS and token.type != "NAME":
        hint += f"; `{token}` is a keyword and cannot be used as a name"
    elif token.type in _OPERATORS and _starts_its_line(source, token):
        hint = ("a line ends the statement unless a bracket is open, so a line cannot start "
                f"with '{token}': wrap the whole expression in ( ) to continue it on the next "
                "line")
    elif token.type == "_NL":
        hint = f"the line ends too early: {hint}"
    return Diagnostic("E0101", f"unexpected {text}", span, "not expected here", hint)


def _starts_its_line(source: str, token: Token) -> bool:
    """Whether only blanks come before `token` on its line (a continuation line)."""
    start = token.start_pos or 0
    line_start = source.rfind("\n", 0, start) + 1
    return not source[line_start:start].strip()

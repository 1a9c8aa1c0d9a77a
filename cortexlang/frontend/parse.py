"""Parse .cx source into the syntax tree of `cortexlang.frontend.ast`.

The grammar lives in `grammar/cortex.lark` (shipped in the wheel as `cortexlang.grammar`).
Lark's LALR parser reads a flat list of lines; `_group_lines` then attaches statements to the
rule header above them. Syntax errors become located diagnostics (E01xx) with a caret.

Several syntax errors are reported at once. Every logical line of the grammar parses on its own
(a line ends at a newline outside brackets), so after an error the parser blanks the logical
line that holds it, keeping every other position, and parses again. That finds exactly the
errors of the other lines, never a consequence of the first one. An unclosed bracket swallows
the rest of the file, so it ends the search.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedInput

from cortexlang.errors import CortexError, Diagnostic, Span
from cortexlang.frontend import ast
from cortexlang.frontend.scope import collector_paused
from cortexlang.frontend.syntax_errors import blank_logical_line, error_offset, syntax_diagnostic

# Limits that keep every later stage (typer, printer, interpreter, compiler: all recursive)
# far from Python's recursion limit, and every literal a finite float.
MAX_NESTING = 100
MAX_INTEGER_DIGITS = 300
MAX_SYNTAX_ERRORS = 10


def grammar_text() -> str:
    """The grammar source: from the installed package, else from the checkout."""
    try:
        return resources.files("cortexlang.grammar").joinpath("cortex.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        checkout = Path(__file__).resolve().parents[2] / "grammar" / "cortex.lark"
        return checkout.read_text()


class _BracketNewlines:
    """Post-lexer: newlines inside () or [] continue the line; the file always ends a line."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        last: Token | None = None
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth > 0:
                continue
            last = token
            yield token
        if last is not None and last.type != "_NL":
            yield Token.new_borrow_pos("_NL", "\n", last)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="basic", postlex=_BracketNewlines(),
                propagate_positions=True, maybe_placeholders=True)


def _meta_span(path: str, meta: Any) -> Span | None:
    if getattr(meta, "empty", True):
        return None
    return Span(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(path: str, token: Token) -> Span:
    return Span(path, token.line or 1, token.column or 1, token.end_line or token.line or 1,
                token.end_column or (token.column or 1) + len(str(token)))


class _Builder(Transformer[Token, Any]):
    """Lark parse tree to AST nodes (lines still flat)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _span(self, meta: Any) -> Span | None:
        return _meta_span(self.path, meta)

    # expressions ---------------------------------------------------------------------------
    @v_args(meta=True)
    def integer(self, meta: Any, children: list[Token]) -> ast.Number:
        return ast.Number(float(int(children[0])), True, self._span(meta))

    @v_args(meta=True)
    def real(self, meta: Any, children: list[Token]) -> ast.Number:
        return ast.Number(float(children[0]), False, self._span(meta))

    @v_args(meta=True)
    def scaled(self, meta: Any, children: list[Token]) -> ast.Scaled:
        return ast.Scaled(int(children[0]), str(children[1]), self._span(meta))

    @v_args(meta=True)
    def name(self, meta: Any, children: list[Token]) -> ast.Name:
        return ast.Name(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        args = tuple(arg for arg in children[1:] if arg is not None)
        return ast.Call(str(children[0]), args, self._span(meta))

    @v_args(meta=True)
    def reduce(self, meta: Any, children: list[Any]) -> ast.Reduce:
        op, body, var, iterator, node = children
        return ast.Reduce(str(op), body, str(var), str(iterator), str(node), self._span(meta))

    @v_args(meta=True)
    def subscript(self, meta: Any, children: list[Any]) -> ast.Subscript:
        return ast.Subscript(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def slice(self, meta: Any, children: list[Any]) -> ast.SliceIndex:
        return ast.SliceIndex(children[0], children[1], self._span(meta))

    def _binary(self, op: str, meta: Any, children: list[Any]) -> ast.BinOp:
        return ast.BinOp(op, children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def add(self, meta: Any, children: list[Any]) -> ast.BinOp:
        return self._binary("+", meta, children)

    @v_args(meta=True)
    def sub(self, meta: Any, children: list[Any]) -> ast.BinOp:
        return self._binary("-", meta, children)

    @v_args(meta=True)
    def mul(self, meta: Any, children: list[Any]) -> ast.BinOp:
        return self._binary("*", meta, children)

    @v_args(meta=True)
    def div(self, meta: Any, children: list[Any]) -> ast.BinOp:
        return self._binary("/", meta, children)

    @v_args(meta=True)
    def mod(self, meta: Any, children: list[Any]) -> ast.BinOp:
        return self._binary("%", meta, children)

    @v_args(meta=True)
    def matmul(self, meta: Any, children: list[Any]) -> ast.BinOp:
        return self._binary("@", meta, children)

    @v_args(meta=True)
    def neg(self, meta: Any, children: list[Any]) -> ast.Neg:
        return ast.Neg(children[0], self._span(meta))

    @v_args(meta=True)
    def compare(self, meta: Any, children: list[Any]) -> ast.Compare:
        return ast.Compare(str(children[1]), children[0], children[2], self._span(meta))

    @v_args(meta=True)
    def ternary(self, meta: Any, children: list[Any]) -> ast.Ternary:
        then, condition, otherwise = children
        return ast.Ternary(condition, then, otherwise, self._span(meta))

    # declarations --------------------------------------------------------------------------
    @v_args(meta=True)
    def model(self, meta: Any, children: list[Token]) -> tuple[str, str, Span | None]:
        return ("model", str(children[0]), self._span(meta))

    def sizes(self, children: list[ast.SizeDecl]) -> list[ast.SizeDecl]:
        return children

    @v_args(meta=True)
    def size(self, meta: Any, children: list[Any]) -> ast.SizeDecl:
        return ast.SizeDecl(str(children[0]), children[1], self._span(meta))

    @v_args(meta=True)
    def structure(self, meta: Any, children: list[Any]) -> ast.StructureDecl:
        return ast.StructureDecl(str(children[0]), tuple(children[1:]), self._span(meta))

    def structure_arg(self, children: list[Any]) -> tuple[str, ast.Expr]:
        return (str(children[0]), children[1])

    def params(self, children: list[ast.ParamDecl]) -> list[ast.ParamDecl]:
        return children

    @v_args(meta=True)
    def param(self, meta: Any, children: list[Any]) -> ast.ParamDecl:
        init = children[2] if len(children) > 2 else None
        return ast.ParamDecl(str(children[0]), children[1], init, self._span(meta))

    def inputs(self, children: list[ast.InputDecl]) -> list[ast.InputDecl]:
        return children

    @v_args(meta=True)
    def token_input(self, meta: Any, children: list[Token]) -> ast.InputDecl:
        return ast.InputDecl(str(children[0]), str(children[1]), (), self._span(meta))

    @v_args(meta=True)
    def vector_input(self, meta: Any, children: list[Any]) -> ast.InputDecl:
        return ast.InputDecl(str(children[0]), "vector", children[1], self._span(meta))

    def states(self, children: list[ast.StateDecl]) -> list[ast.StateDecl]:
        return children

    @v_args(meta=True)
    def state(self, meta: Any, children: list[Any]) -> ast.StateDecl:
        return ast.StateDecl(str(children[0]), children[1], self._span(meta))

    def shape(self, children: list[ast.Expr]) -> tuple[ast.Expr, ...]:
        return tuple(children)

    def rule_kind(self, children: list[Token]) -> str:
        return str(children[0])

    @v_args(meta=True)
    def rule_header(self, meta: Any, children: list[Any]) -> tuple[Any, ...]:
        kind, node, statement = children
        return ("rule", kind, str(node), statement, self._span(meta))

    def outputs(self, children: list[ast.OutputDecl]) -> list[ast.OutputDecl]:
        return children

    @v_args(meta=True)
    def output(self, meta: Any, children: list[Any]) -> ast.OutputDecl:
        name, selector = children[0], children[1]
        value = children[2] if len(children) > 2 else None
        return ast.OutputDecl(str(name), str(selector), value, self._span(meta),
                              _token_span(self.path, selector))

    @v_args(meta=True)
    def statement(self, meta: Any, children: list[Any]) -> ast.Statement:
        targets, value = children
        names = tuple(str(token) for token in targets)
        spans = tuple(_token_span(self.path, token) for token in targets)
        return ast.Statement(names, value, self._span(meta), spans)

    def targets(self, children: list[Token]) -> list[Token]:
        return children

    def start(self, children: list[Any]) -> list[Any]:
        return children


def _group_lines(items: list[Any], path: str, source: str) -> ast.Program:
    """Attach statements to the rule header above them and collect declarations by kind."""
    model_name = ""
    model_span: Span | None = None
    sizes: list[ast.SizeDecl] = []
    structures: list[ast.StructureDecl] = []
    params: list[ast.ParamDecl] = []
    inputs: list[ast.InputDecl] = []
    states: list[ast.StateDecl] = []
    outputs: list[ast.OutputDecl] = []
    rules: list[ast.Rule] = []
    open_rule: tuple[str, str, list[ast.Statement], Span | None] | None = None
    problems: list[Diagnostic] = []

    def close_rule() -> None:
        nonlocal open_rule
        if open_rule is not None:
            kind, node, statements, span = open_rule
            rules.append(ast.Rule(kind, node, tuple(statements), span))
            open_rule = None

    orphans: list[ast.Statement] = []  # consecutive statements under no rule: one mistake

    def report_orphans() -> None:
        if orphans:
            label = (f"this statement and the {len(orphans) - 1} after it belong to no rule"
                     if len(orphans) > 1 else "this statement belongs to no rule")
            problems.append(Diagnostic(
                "E0207", "statement outside a rule", orphans[0].span, label,
                "put statements after a `leaf n:` or `internal n:` header"))
            orphans.clear()

    for item in items:
        if isinstance(item, ast.Statement):
            if open_rule is None:
                orphans.append(item)
            else:
                open_rule[2].append(item)
            continue
        report_orphans()
        if isinstance(item, tuple) and item[0] == "rule":
            close_rule()
            _, kind, node, statement, span = item
            open_rule = (kind, node, [statement] if statement is not None else [], span)
            continue
        close_rule()
        if isinstance(item, tuple) and item[0] == "model":
            if model_name:
                problems.append(Diagnostic(
                    "E0202", "a file defines one model", item[2], "second `model` line",
                    f"this file already defines model `{model_name}`"))
            else:
                model_name, model_span = item[1], item[2]
        elif isinstance(item, ast.StructureDecl):
            structures.append(item)
        elif isinstance(item, list):
            for declaration in item:
                if isinstance(declaration, ast.SizeDecl):
                    sizes.append(declaration)
                elif isinstance(declaration, ast.ParamDecl):
                    params.append(declaration)
                elif isinstance(declaration, ast.InputDecl):
                    inputs.append(declaration)
                elif isinstance(declaration, ast.StateDecl):
                    states.append(declaration)
                elif isinstance(declaration, ast.OutputDecl):
                    outputs.append(declaration)
    close_rule()
    report_orphans()
    if problems:
        raise CortexError(problems, source)
    return ast.Program(model_name, tuple(sizes), tuple(structures), tuple(params), tuple(inputs),
                       tuple(states), tuple(rules), tuple(outputs), model_span, path, source)


def _parse_tree(source: str, path: str) -> Tree[Token]:
    """The Lark tree of `source`, or a `CortexError` with every syntax error found."""
    problems: list[Diagnostic] = []
    text = source
    while len(problems) < MAX_SYNTAX_ERRORS:
        try:
            tree = _parser().parse(text)
        except UnexpectedInput as error:
            diagnostic = syntax_diagnostic(error, path, text)
            problems.append(diagnostic)
            offset = error_offset(error)
            if diagnostic.code == "E0103" or offset is None:
                break
            blanked = blank_logical_line(text, offset)
            if blanked == text:
                break
            text = blanked
            continue
        if not problems:
            return tree
        break
    raise CortexError(problems, source)


def _check_limits(tree: Tree[Token], path: str) -> list[Diagnostic]:
    """Expressions nested more than MAX_NESTING deep (E0104) and numbers too large to be
    finite floats (E0105). Walks the tree without recursion, so any depth is safe."""
    problems: list[Diagnostic] = []
    for item in tree.children:
        stack: list[tuple[Any, int]] = [(item, 1)]
        deepest = 0
        while stack:
            node, depth = stack.pop()
            if isinstance(node, Token):
                if not _finite_literal(node):
                    problems.append(Diagnostic(
                        "E0105", "number too large", _token_span(path, node),
                        "not a finite number", "sizes and constants must fit in a double"))
            elif isinstance(node, Tree):
                deepest = max(deepest, depth)
                stack.extend((child, depth + 1) for child in node.children)
        if deepest > MAX_NESTING and isinstance(item, Tree):
            problems.append(Diagnostic(
                "E0104", f"expression nested more than {MAX_NESTING} levels deep",
                _meta_span(path, item.meta), "too deep",
                "split it into several statements with temporaries"))
    return problems


def _finite_literal(token: Token) -> bool:
    if token.type == "INT":
        return len(token.lstrip("0")) <= MAX_INTEGER_DIGITS
    if token.type == "FLOAT":
        return math.isfinite(float(token))
    return True


def parse_program(source: str, path: str = "<input>") -> ast.Program:
    """Parse a .cx source text; raise `CortexError` (E01xx, E0207) on malformed input.

    Every syntax error of the file is reported (up to MAX_SYNTAX_ERRORS), sorted by position.
    """
    with collector_paused():
        tree = _parse_tree(source, path)
        limits = _check_limits(tree, path)
        if limits:
            raise CortexError(limits, source)
        items = _Builder(path).transform(tree)
        return _group_lines(items, path, source)


def parse_file(path: str | Path) -> ast.Program:
    """Read and parse a .cx file (UTF-8). An unreadable file is a user error (E0001)."""
    text_path = str(path)
    try:
        source = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CortexError(Diagnostic("E0001", f"cannot read {text_path}: {error}", None, "",
                                     "check the path and that the file is UTF-8 text")) from None
    return parse_program(source, text_path)

"""Fuzzing the parser and checker with Hypothesis.

The property, for any text at all: parsing and checking either succeed, or raise a
`CortexError` whose every diagnostic has a span inside the text (or no span) and renders;
never any other exception. Inputs come from (a) random strings, (b) mutations of the example
programs, (c) random programs derived from the grammar, (d) random well-typed models, which
must also be accepted. Every grammar-valid program must survive a print/parse round trip.

Runs are deterministic (derandomized, no example database), so CI reproduces failures. For a
longer local hunt with fresh seeds: CORTEXLANG_FUZZ_EXAMPLES=5000 pytest tests/frontend.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cortexlang.errors import CortexError
from cortexlang.frontend import ast
from cortexlang.frontend.check import check_program
from cortexlang.frontend.parse import parse_program
from cortexlang.frontend.printer import format_program
from cortexlang.ir import checked as ir

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.cx"))
SOURCES = [path.read_text() for path in EXAMPLES]
PATH = "fuzz.cx"

_LONG_RUN = int(os.environ.get("CORTEXLANG_FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int) -> settings:
    """Deterministic, modest settings for CI; CORTEXLANG_FUZZ_EXAMPLES asks for a long run."""
    return settings(max_examples=_LONG_RUN or examples, derandomize=not _LONG_RUN,
                    database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def check_text(source: str) -> ir.CheckedProgram | CortexError:
    """Parse and check; return the program or the user error after validating its spans."""
    try:
        return check_program(parse_program(source, PATH))
    except CortexError as error:
        assert_well_located(error, source)
        return error


def assert_well_located(error: CortexError, source: str) -> None:
    lines = source.split("\n")
    assert error.diagnostics, "a user error carries at least one diagnostic"
    for diagnostic in error.diagnostics:
        assert re.fullmatch(r"E\d{4}", diagnostic.code), diagnostic
        assert diagnostic.message, diagnostic
        span = diagnostic.span
        if span is None:
            continue
        assert span.path == PATH
        assert 1 <= span.line <= len(lines) + 1, (diagnostic, len(lines))
        assert span.column >= 1, diagnostic
        if span.line <= len(lines):
            assert span.column <= len(lines[span.line - 1]) + 1, diagnostic
        assert (span.end_line, span.end_column) >= (span.line, span.column), diagnostic
    assert error.render()


# (a) random strings -------------------------------------------------------------------------

_GRAMMAR_CHARACTERS = " \n\t()[]:;,=+-*/%@#~<>!.0123456789eEHhnkWbx_"
_WORDS = ["model", "sizes", "structure", "param", "input", "state", "leaf", "internal",
          "output", "for", "in", "if", "else", "n", "h", "H", "W", "word", "token", "root",
          "children", "sum", "left", "isleaf", "(", ")", "[", "]", ":", "=", ",", "@", "\n",
          "    ", "2H", "0.1", "#", ";"]


@fuzz_settings(300)
@given(st.one_of(
    st.text(),
    st.text(alphabet=_GRAMMAR_CHARACTERS),
    st.lists(st.sampled_from(_WORDS)).map(" ".join),
    st.binary().map(lambda data: data.decode("latin-1")),
))
def test_random_text_never_crashes(source: str) -> None:
    check_text(source)


# (b) mutations of the examples --------------------------------------------------------------

_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:[eE][-+]?\d+)?|#[^\n]*|.", re.S)
_INSERTS = ["(", ")", "[", "]", '"', "<script>", "\u00e9", "\u2028", "\x00", "\ufeff", ":",
            ",", "=", "@", "%", "\n", "\r", "\t", "if", "else", "for", "in", "n", "0", "-1",
            "1e400", "9" * 400, "0.5", "leaf n:", "internal n:", "#", "sum(", "isleaf(n)",
            "parent(n)", "sibling(n)", "left(n)", "h", "H", "\u210c", "\U0001f600", "model X",
            "structure tree", "output h[all]", "-" * 120]
_RENAMES = ["h", "c", "n", "k", "W", "x", "word", "left", "sum", "model", "foo", "H", "split",
            "zeros", "child", "root", "all", "token", "prev", "isleaf", "num_children",
            "mean", "max", "concat", "e5", "Emb", "tanh", "parent"]


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    tokens = _TOKEN.findall(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            tokens = ["x"]
        position = draw(st.integers(0, len(tokens) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "rename",
                                     "truncate", "insert"]))
        if kind == "delete":
            del tokens[position]
        elif kind == "duplicate":
            tokens.insert(position, tokens[position])
        elif kind == "swap":
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[position], tokens[other] = tokens[other], tokens[position]
        elif kind == "number":
            numbers = [i for i, token in enumerate(tokens) if token[:1].isdigit()]
            if numbers:
                index = draw(st.sampled_from(numbers))
                tokens[index] = draw(st.sampled_from(["0", "1", "3", "7", "2.5", "10" * 20,
                                                      "1e3", "00"]))
        elif kind == "rename":
            names = [i for i, token in enumerate(tokens) if token[:1].isalpha()]
            if names:
                tokens[draw(st.sampled_from(names))] = draw(st.sampled_from(_RENAMES))
        elif kind == "truncate":
            tokens = tokens[:position]
        else:
            tokens.insert(position, draw(st.one_of(st.sampled_from(_INSERTS), st.text(
                max_size=3))))
    return "".join(tokens)


@fuzz_settings(400)
@given(mutated_examples())
def test_mutated_examples_never_crash(source: str) -> None:
    check_text(source)


# (c) random programs from the grammar -------------------------------------------------------

_NAMES = ["h", "c", "x", "W", "b", "H", "V", "n", "k", "e5", "E1", "_", "a_1", "root", "all",
          "token", "left", "right", "child", "sum", "mean", "tanh", "word", "Emb", "zeros",
          "isleaf", "children", "num_children", "split", "concat", "prev", "parent"]
_name = st.sampled_from(_NAMES)
_space = st.sampled_from([" ", " ", "  ", "\t"])
_integer = st.sampled_from(["0", "1", "2", "3", "4", "007", "16", "256"])
_real = st.sampled_from(["0.5", ".5", "2.", "1e3", "1.5e-3", "0.0", "3E+2"])


@st.composite
def _bracketed(draw: st.DrawFn, inner: str) -> str:
    """Inside brackets a newline continues the line."""
    gap = draw(st.sampled_from(["", "", "", "\n    "]))
    return gap + inner + gap


@st.composite
def grammar_expression(draw: st.DrawFn, depth: int = 2) -> str:
    text = draw(_sum(depth))
    if depth > 0 and draw(st.integers(0, 5)) == 0:
        condition = draw(_sum(depth - 1))
        if draw(st.booleans()):
            compare = draw(st.sampled_from(["==", "!=", "<", ">", "<=", ">="]))
            condition += f" {compare} " + draw(_sum(depth - 1))
        text += f" if {condition} else " + draw(grammar_expression(depth - 1))
    return text


@st.composite
def _sum(draw: st.DrawFn, depth: int) -> str:
    """Operands joined by binary operators of every precedence level."""
    text = draw(_unary(depth))
    for _ in range(draw(st.integers(0, 2 if depth > 0 else 0))):
        operator = draw(st.sampled_from(["+", "-", "*", "/", "%", "@"]))
        text += f" {operator} " + draw(_unary(depth - 1))
    return text


@st.composite
def _unary(draw: st.DrawFn, depth: int) -> str:
    minus = "-" * draw(st.integers(0, 2 if depth > 0 else 0))
    text = minus + draw(_atom(depth))
    for _ in range(draw(st.integers(0, 1 if depth > 0 else 0))):
        if draw(st.booleans()):
            index = draw(grammar_expression(depth - 1))
        else:
            start = draw(st.one_of(st.just(""), grammar_expression(depth - 1)))
            stop = draw(st.one_of(st.just(""), grammar_expression(depth - 1)))
            index = f"{start}:{stop}"
        text += "[" + draw(_bracketed(index)) + "]"
    return text


@st.composite
def _atom(draw: st.DrawFn, depth: int) -> str:
    simple = [_integer, _real, _name, st.tuples(_integer, _space, _name).map("".join)]
    if depth <= 0:
        return draw(st.one_of(*simple))
    choice = draw(st.integers(0, 7))
    if choice < 4:
        return draw(simple[choice])
    if choice == 4:
        args = draw(st.lists(grammar_expression(depth - 1), max_size=3))
        return draw(_name) + "(" + draw(_bracketed(", ".join(args))) + ")"
    if choice == 5:
        body = draw(grammar_expression(depth - 1))
        return (f"{draw(_name)}({body} for {draw(_name)} in {draw(_name)}"
                f"({draw(_name)}))")
    return "(" + draw(_bracketed(draw(grammar_expression(depth - 1)))) + ")"


@st.composite
def _shape(draw: st.DrawFn) -> str:
    dims = draw(st.lists(grammar_expression(1), min_size=1, max_size=3))
    return "[" + ", ".join(dims) + "]"


@st.composite
def _declaration(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["sizes", "structure", "param", "input", "state", "output"]))
    if kind == "sizes":
        items = draw(st.lists(st.tuples(_name, grammar_expression(1)), min_size=1, max_size=3))
        return "sizes " + ", ".join(f"{name} = {value}" for name, value in items)
    if kind == "structure":
        text = "structure " + draw(_name)
        args = draw(st.lists(st.tuples(_name, grammar_expression(1)), max_size=2))
        return text + (f"({', '.join(f'{a}={v}' for a, v in args)})" if args else "")
    if kind == "param":
        items = draw(st.lists(st.tuples(_name, _shape(), st.one_of(
            st.just(""), grammar_expression(1).map(lambda e: f" ~ {e}"))), min_size=1,
            max_size=3))
        return "param " + ", ".join(f"{n}{s}{i}" for n, s, i in items)
    if kind == "input":
        items = draw(st.lists(st.one_of(
            st.tuples(_name, _name).map(lambda t: f"{t[0]}: {t[1]}"),
            st.tuples(_name, _shape()).map("".join)), min_size=1, max_size=2))
        return "input " + ", ".join(items)
    if kind == "state":
        items = draw(st.lists(st.tuples(_name, _shape()).map("".join), min_size=1,
                              max_size=3))
        return "state " + ", ".join(items)
    items = draw(st.lists(st.tuples(_name, _name, st.one_of(
        st.just(""), grammar_expression(2).map(lambda e: f" = {e}"))).map(
        lambda t: f"{t[0]}[{t[1]}]{t[2]}"), min_size=1, max_size=2))
    return "output " + ", ".join(items)


@st.composite
def _statement(draw: st.DrawFn) -> str:
    targets = draw(st.lists(_name, min_size=1, max_size=3))
    return f"{', '.join(targets)} = {draw(grammar_expression())}"


@st.composite
def grammar_program(draw: st.DrawFn) -> str:
    """A program the grammar accepts and the line grouping too (at most one model line,
    statements only under a rule header); the checker may still reject it."""
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(f"model {draw(_name)}")
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 2)) == 0:
            header = f"{draw(st.sampled_from(['leaf', 'internal']))} {draw(_name)}:"
            if draw(st.booleans()):
                header += " " + draw(_statement())
            lines.append(header)
            statements = draw(st.lists(_statement(), max_size=3))
            if statements and draw(st.booleans()):
                lines.append("    " + "; ".join(statements))
            else:
                lines.extend("    " + statement for statement in statements)
        else:
            lines.append(draw(_declaration()))
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", "# a comment", "   ", "\t# indented"])))
    comment = draw(st.sampled_from(["", "", "  # trailing"]))
    ending = draw(st.sampled_from(["\n", "", "\r\n", "\n\n"]))
    return "\n".join(line + comment if line and not line.startswith("#") else line
                     for line in lines) + ending


def assert_round_trip(source: str) -> ast.Program:
    program = parse_program(source, PATH)
    printed = format_program(program)
    again = parse_program(printed, PATH)
    assert again == program, printed
    assert format_program(again) == printed, "printing is canonical"
    return program


@fuzz_settings(150)
@given(grammar_program())
@example("sizes h = 0 + 0\n")  # once divided by zero while evaluating every operator
def test_grammar_programs_parse_round_trip_and_never_crash(source: str) -> None:
    assert_round_trip(source)
    check_text(source)


# (d) random well-typed models: the checker must accept them ---------------------------------

_KINDS = ["binary_tree", "tree", "dag", "sequence"]


@st.composite
def typed_model(draw: st.DrawFn) -> str:
    """A legal model assembled from the constructs of the language reference."""
    kind = draw(st.sampled_from(_KINDS))
    arity = {"binary_tree": 2, "sequence": 1}.get(kind) or draw(st.integers(1, 4))
    structure = kind if kind in ("binary_tree", "sequence") else f"{kind}(max_children=K)"
    vector_input = kind == "dag"
    states = ["h"] + (["c"] if draw(st.booleans()) else [])
    has_leaf_rule = draw(st.booleans())
    lines = ["model Fuzz", f"sizes H = {draw(st.integers(1, 6))}, V = 10, K = {arity}",
             f"structure {structure}",
             "param Emb[V, H], W[H, H], U[H, H] ~ normal(0, 0.1), b[H] ~ zeros",
             "param W2[2H, H], Wc[H, 2H], EmbM[4, H, H]",
             "input x[H]" if vector_input else "input word: token",
             "state " + ", ".join(f"{state}[H]" for state in states)]

    def rule(rule_kind: str) -> list[str]:
        context = _Context(rule_kind, kind, arity, vector_input, has_leaf_rule)
        body: list[str] = []
        for index in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                body.append(f"    t{index}a, t{index}b = split(W2 @ "
                            f"({draw(typed_vector(context))}), 2)")
                context.names += [f"t{index}a", f"t{index}b"]
            else:
                body.append(f"    t{index} = {draw(typed_vector(context))}")
                context.names.append(f"t{index}")
        for state in draw(st.permutations(states)):
            body.append(f"    {state} = {draw(typed_vector(context))}")
            context.names.append(state)
        return [f"{rule_kind} n:"] + body

    if has_leaf_rule:
        lines += rule("leaf")
    lines += rule("internal")
    lines.append(f"output h[{draw(st.sampled_from(['root', 'all']))}]")
    if draw(st.booleans()):
        lines.append("output p[root] = softmax(W @ h + b)")
    return "\n".join(lines) + "\n"


class _Context:
    def __init__(self, rule: str, kind: str, arity: int, vector_input: bool,
                 has_leaf_rule: bool) -> None:
        self.rule, self.kind, self.arity = rule, kind, arity
        self.vector_input = vector_input
        self.has_leaf_rule = has_leaf_rule
        self.names: list[str] = ["b"]
        self.at_leaf = rule == "leaf"
        self.child_var: str | None = None

    def words_allowed(self) -> bool:
        return self.at_leaf or self.kind in ("dag", "sequence")


@st.composite
def typed_vector(draw: st.DrawFn, context: _Context, depth: int = 3) -> str:
    """An expression of shape [H] that the checker must accept in this context."""
    leaves = list(context.names) + ["zeros(H)", "ones(H) * 0.5", "U[0:H] @ b"]
    if context.words_allowed():
        leaves += (["x(n)"] if context.vector_input
                   else ["Emb[word(n)]", "EmbM[word(n) % 4] @ b"])
    if context.rule == "internal" and context.child_var is None:
        node = "prev(n)" if context.kind == "sequence" else "left(n)"
        leaves += [f"h[{node}]", f"h[child(n, {context.arity - 1})]",
                   "sum(h[k] for k in children(n))", "mean(h[k] for k in children(n))"]
        if context.kind != "sequence" and context.arity >= 2:
            leaves.append("h[right(n)]")
    if context.child_var is not None:
        leaves += [f"h[{context.child_var}]"]
    if depth <= 0:
        return draw(st.sampled_from(leaves))
    sub = typed_vector(context, depth - 1)
    choice = draw(st.integers(0, 11))
    if choice <= 2:
        return draw(st.sampled_from(leaves))
    if choice == 3:
        return f"{draw(st.sampled_from(['tanh', 'sigmoid', 'relu', 'exp']))}({draw(sub)})"
    if choice == 4:
        return f"{draw(sub)} {draw(st.sampled_from(['+', '-', '*']))} {draw(sub)}"
    if choice == 5:
        return f"W @ ({draw(sub)})"
    if choice == 6:
        return f"Wc @ concat({draw(sub)}, {draw(sub)})"
    if choice == 7:
        return f"-({draw(sub)}) / 2 + 0.5 * {draw(sub)}"
    if choice == 8:
        return f"concat({draw(sub)}, {draw(sub)})[H:2H]"
    if choice == 9 and context.rule == "internal":
        then_context = _Context(context.rule, context.kind, context.arity,
                                context.vector_input, context.has_leaf_rule)
        then_context.names, then_context.child_var = context.names, context.child_var
        then_context.at_leaf = True
        guard = draw(st.sampled_from(["isleaf(n)", "num_children(n) == 0",
                                      "0 == num_children(n)"]))
        return f"({draw(typed_vector(then_context, depth - 1))} if {guard} else {draw(sub)})"
    if choice == 10 and context.rule == "internal" and context.child_var is None:
        inner = _Context(context.rule, context.kind, context.arity, context.vector_input,
                         context.has_leaf_rule)
        inner.names, inner.child_var, inner.at_leaf = context.names, "k", context.at_leaf
        return f"sum({draw(typed_vector(inner, depth - 1))} for k in children(n))"
    return f"({draw(sub)} if num_children(n) >= 1 else {draw(sub)})"


@fuzz_settings(150)
@given(typed_model())
def test_well_typed_models_are_accepted_and_round_trip(source: str) -> None:
    result = check_text(source)
    assert isinstance(result, ir.CheckedProgram), (source, str(result))
    program = assert_round_trip(source)
    assert check_program(parse_program(format_program(program), PATH)) == result


# the examples -------------------------------------------------------------------------------

def test_examples_round_trip_and_check() -> None:
    assert len(EXAMPLES) >= 8
    for path in EXAMPLES:
        source = path.read_text()
        program = assert_round_trip(source)
        checked = check_program(program)
        assert check_program(parse_program(format_program(program), PATH)) == checked

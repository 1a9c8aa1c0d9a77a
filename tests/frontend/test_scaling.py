"""The checker's work grows linearly with the statements of one rule.

Nothing here is timed: the peak memory the checker allocates is measured (tracemalloc counts
bytes, the same on every machine), for a rule of N and of 4N statements. Linear work gives a
ratio near 4; the quadratic checker this guards against (a copy of the "assigned later" map
per statement) gave 16 and needed 984 MB for 8,000 statements.

The long rules are built as syntax trees, not parsed, so that only the checker is measured
and the test stays fast.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

from cortexlang.errors import Span
from cortexlang.frontend import ast
from cortexlang.frontend.check import check_program
from cortexlang.frontend.parse import parse_program

TEMPLATE = """model Long
sizes H = 4
structure binary_tree
param b[H]
state h[H]
leaf n:
    t0 = b
    h = t0
internal n:
    h = h[left(n)] + h[right(n)]
output h[root]
"""


def long_program(statements: int) -> ast.Program:
    """The template with a leaf rule of `statements` chained temporaries, t_i = t_{i-1} + b,
    each on its own line."""
    program = parse_program(TEMPLATE, "long.cx")
    leaf = next(rule for rule in program.rules if rule.kind == "leaf")

    def span(line: int) -> Span:
        return Span("long.cx", line, 5, line, 20)

    chain = [ast.Statement(("t0",), ast.Name("b", span(7)), span(7), (span(7),))]
    for index in range(1, statements):
        line = 7 + index
        value = ast.BinOp("+", ast.Name(f"t{index - 1}", span(line)), ast.Name("b", span(line)),
                          span(line))
        chain.append(ast.Statement((f"t{index}",), value, span(line), (span(line),)))
    last = 7 + statements
    chain.append(ast.Statement(("h",), ast.Name(f"t{statements - 1}", span(last)), span(last),
                               (span(last),)))
    rules = tuple(replace(rule, statements=tuple(chain)) if rule is leaf else rule
                  for rule in program.rules)
    return replace(program, rules=rules)


def peak_bytes(program: ast.Program) -> int:
    tracemalloc.start()
    try:
        checked = check_program(program)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(checked.leaf.statements) == len(program.rules[0].statements)
    return peak


def test_checking_a_long_rule_takes_linear_memory() -> None:
    small, large = long_program(2_000), long_program(8_000)
    ratio = peak_bytes(large) / peak_bytes(small)
    assert ratio < 6, f"4x the statements took {ratio:.1f}x the memory"


def test_a_rule_of_20000_statements_checks() -> None:
    checked = check_program(long_program(20_000))
    assert len(checked.leaf.statements) == 20_001

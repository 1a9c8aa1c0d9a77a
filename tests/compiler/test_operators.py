"""The operator table (`cortexlang.ir.operators`): every entry against an independent formula,
its folds and algebraic facts against its numpy implementation, its C spelling in emitted
code; and a made-up operator and reduction, added to the table alone, reach every stage."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest
from compiler_support import compile_program, program_from_source, weights_for
from cortexlang.viz.recursive import op_label

from cortexlang.codegen.expressions import helper_definition
from cortexlang.inputs import generators
from cortexlang.interp.interpreter import interpret
from cortexlang.ir.operators import (
    OPERATORS,
    REDUCTIONS,
    CSpelling,
    Element,
    Kind,
    Operator,
    Reduction,
    Zero,
    operator_of,
)
from cortexlang.ir.recursive_eval import run_recursive
from cortexlang.passes.pipeline import Options
from cortexlang.passes.to_recursive import to_recursive

RNG = np.random.default_rng(7)
SAMPLES = np.concatenate([[0.0, -0.0, 1.0, -1.0, 30.0, -30.0, 100.0, -100.0],
                          RNG.normal(0.0, 3.0, 24)]).astype(np.float32)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _hyperbolic_tangent(x: float) -> float:
    decay = math.exp(-2.0 * abs(x))
    return math.copysign((1.0 - decay) / (1.0 + decay), x)


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    terms = [math.e ** (x - top) for x in row]
    return [term / math.fsum(terms) for term in terms]


def _product(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return np.array([math.fsum(float(a) * float(b) for a, b in zip(row, rhs, strict=True))
                     for row in lhs])


# An independent formula per entry, on Python floats (elementwise) or lists, never numpy's
# ufuncs. A new table entry fails `test_every_entry_has_an_independent_formula` until it
# has one here.
ELEMENTWISE: dict[str, Callable[..., float]] = {
    "neg": lambda x: -x, "sigmoid": _logistic, "tanh": _hyperbolic_tangent,
    "relu": lambda x: x if x > 0 else 0.0, "exp": lambda x: math.e ** x,
    "log": lambda x: math.log(x) if x > 0 else math.nan,
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "max": lambda a, b: a if a >= b else b,
    "lt": lambda a, b: float(a < b), "le": lambda a, b: float(a <= b),
    "gt": lambda a, b: float(a > b), "ge": lambda a, b: float(a >= b),
    "eq": lambda a, b: float(a == b), "ne": lambda a, b: float(a != b),
}
WHOLE = ("softmax", "matmul", "concat")


def test_every_entry_has_an_independent_formula() -> None:
    assert set(OPERATORS) == set(ELEMENTWISE) | set(WHOLE)
    assert all(operator.name == name for name, operator in OPERATORS.items())


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_numpy_implementation_matches_an_independent_formula(name: str) -> None:
    operator = OPERATORS[name]
    formula = ELEMENTWISE[name]
    operands = [SAMPLES] if operator.arity == 1 else [SAMPLES, np.roll(SAMPLES, 3)]
    if name == "log":
        operands = [np.abs(SAMPLES) + np.float32(1e-3)]
    if name == "div":
        operands[1] = np.where(operands[1] == 0, np.float32(2.0), operands[1])
    with np.errstate(over="ignore"):
        result = operator.numpy(*operands)
        expected = np.float32([formula(*(float(o[i]) for o in operands))
                               for i in range(len(SAMPLES))])
    np.testing.assert_allclose(np.asarray(result, dtype=np.float64), expected, rtol=2e-6,
                               atol=1e-30)
    if operator.kind is not Kind.COMPARISON:
        assert result.dtype == np.float32


def test_whole_operand_implementations_match_independent_formulas() -> None:
    vector = SAMPLES[:6].astype(np.float64)
    np.testing.assert_allclose(OPERATORS["softmax"].numpy(vector), _softmax(list(vector)),
                               rtol=1e-12)
    rows = RNG.normal(size=(3, 6))
    batched = OPERATORS["softmax"].numpy(rows)
    for row, result in zip(rows, batched, strict=True):
        np.testing.assert_allclose(result, _softmax(list(row)), rtol=1e-12)
    np.testing.assert_allclose(OPERATORS["matmul"].numpy(rows, vector), _product(rows, vector),
                               rtol=1e-12)
    parts = (vector[:2], vector[2:])
    assert OPERATORS["concat"].numpy(*parts).tolist() == list(parts[0]) + list(parts[1])


def _constant_operands(values: tuple[float, ...], shape: tuple[int, ...]) -> list[np.ndarray]:
    return [np.full(shape, value, dtype=np.float64) for value in values]


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_folds_agree_with_numpy(name: str) -> None:
    """A fold on constants is the numpy implementation on constant tensors; where it says
    None (undefined, overflow) nothing is claimed."""
    operator = OPERATORS[name]
    if operator.fold is None:
        assert operator.kind is Kind.PRODUCT  # folded through its absorbing zero only
        return
    shape = (3,)
    arity = operator.arity or 2
    checked = 0
    for position in range(0, len(SAMPLES) - arity):
        values = tuple(float(v) for v in SAMPLES[position:position + arity])
        if operator.kind is Kind.CONCAT and position % 2:
            values = (values[0],) * arity  # equal constants fold; unequal ones do not
        folded = operator.fold(values, shape)
        if folded is None:
            continue
        with np.errstate(all="ignore"):
            expected = operator.numpy(*_constant_operands(values, shape))
        np.testing.assert_allclose(np.full(expected.shape, folded), expected, rtol=1e-12)
        checked += 1
    assert checked


def _apply(operator: Operator, *operands: np.ndarray | float) -> np.ndarray:
    """The operator on operands broadcast to SAMPLES' length (a product's left operand to a
    matrix of four such rows)."""
    width = len(SAMPLES)
    arrays = [np.broadcast_to(np.asarray(operand, dtype=np.float64), (width,))
              for operand in operands]
    if operator.kind is Kind.PRODUCT:
        arrays[0] = np.broadcast_to(arrays[0], (4, width))
    return np.asarray(operator.numpy(*arrays))


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_algebraic_facts_hold_of_the_numpy_implementation(name: str) -> None:
    """Identities, absorbing elements, mirrored comparisons and zero rules, each as the table
    states it, checked on the semantics (the folds and masks rely on them)."""
    operator = OPERATORS[name]
    x = SAMPLES.astype(np.float64)
    y = np.roll(x, 1)
    if operator.left_identity is not None:
        np.testing.assert_array_equal(_apply(operator, operator.left_identity, x), x)
    if operator.right_identity is not None:
        np.testing.assert_array_equal(_apply(operator, x, operator.right_identity), x)
    if operator.absorbing is not None:
        for operands in ((operator.absorbing, x), (x, operator.absorbing)):
            assert (_apply(operator, *operands) == operator.absorbing).all()
    if operator.mirrored is not None:
        np.testing.assert_array_equal(_apply(operator, x, y),
                                      _apply(OPERATORS[operator.mirrored], y, x))
    if operator.zero is Zero.ALL:
        assert not _apply(operator, *[0.0] * (operator.arity or 2)).any()
    if operator.zero is Zero.ANY:
        assert not _apply(operator, 0.0, x).any() and not _apply(operator, x, 0.0).any()


# Every operator a program can write, each comparison with a count it cannot decide.
EVERY_OPERATOR = """\
model Ops
sizes H = 4, V = 5
structure tree(max_children=3)
param Emb[V, H], W[H, 2H], b[H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    m = max(h[k] for k in children(n))
    s = mean(h[k] for k in children(n))
    a = sigmoid(W @ concat(m, s) + b) * tanh(s) - relu(m) / exp(b)
    c = log(exp(a) + 1) + softmax(a)
    g = (c if num_children(n) == 2 else -c) + (c if num_children(n) != 2 else a)
    l = (g if num_children(n) < 2 else a) + (g if num_children(n) <= 2 else c)
    h = (l if num_children(n) > 2 else g) + (l if num_children(n) >= 2 else c)
output h[root]
"""
WIDTHS = (1, 2, 4, 8, 16)


def _spelled(operator: Operator, source: str) -> bool:
    """Whether the OpenCL source contains `operator` as the table spells it."""
    symbol = re.escape(operator.infix or "")
    zero = r"(\(float\d+\)\()?0\.0f\)?"
    if operator.element is Element.CALL:
        assert operator.c is not None
        called = [lanes for lanes in WIDTHS if f"{operator.c.function(lanes)}(" in source]
        return bool(called) and (operator.c.helper is None or all(
            helper_definition(operator.name, lanes) in source for lanes in called))
    if operator.element is Element.TRUTH:
        return re.search(rf"\(\(\w+ {symbol} [\w.]+\)\) \? 1\.0f : 0\.0f\)", source) is not None
    if operator.element is Element.PREFIX:
        return re.search(rf"\({zero} {symbol} \w+\)", source) is not None
    return re.search(rf"= \(\w+ {symbol} ", source) is not None  # a value, not an index


def test_emitted_code_spells_every_operator_as_the_table_says() -> None:
    program = program_from_source(EVERY_OPERATOR, "ops.cx")
    result = compile_program(program)
    ops = [op for rule in result.recursive.rules() for op in rule.ops]
    used = {operator.name for op in ops if (operator := operator_of(op)) is not None}
    # Every operator is used (matmul and concat as the dot product's segments)...
    assert used | {"matmul", "concat"} == set(OPERATORS)
    for name in sorted(used):
        operator = OPERATORS[name]
        if operator.element is not None:
            assert _spelled(operator, result.source), name
    # ... and softmax is the loop-IR reductions over units, spelled as the table says.
    for reduction in (REDUCTIONS["max"], REDUCTIONS["sum"]):
        combine = OPERATORS[reduction.combine]
        update = f"{combine.infix}=" if combine.c is None else f"= {combine.c.function(1)}("
        assert re.search(rf"for \(int k = 0; k < 4; \+\+k\) \w+ {re.escape(update)}",
                         result.source), reduction.name


# A made-up operator and reduction: one table entry each, nothing else.
CUBE = Operator("cube", 1, Kind.UNARY, "cube", lambda x: x * x * x,
                lambda values, _shape: values[0] ** 3, function="cube", zero=Zero.ALL,
                element=Element.CALL,
                c=CSpelling("cx_cube", "cx_cube{lanes}", helper="x * x * x"))
PRODUCT = Reduction("prod", "mul", 1.0)

DECLARATIONS = """\
sizes H = 4, V = 5
structure binary_tree
param Emb[V, H], W[H, 2H], b[H]
input word: token
state h[H], p[H]
"""
MADE_UP = "model MadeUp\n" + DECLARATIONS + """\
leaf n:
    h = Emb[word(n)] + cube(b)
    p = Emb[word(n)]
internal n:
    s = sum(cube(h[k]) for k in children(n))
    h = cube(W @ concat(h[left(n)], h[right(n)])) * cube(0.5) + s
    p = prod(p[k] for k in children(n))
output h[root]
"""
# The same meaning written without them (every internal node of a perfect tree has both
# children, so the product over children is the product of the two).
SPELLED_OUT = "model SpelledOut\n" + DECLARATIONS + """\
leaf n:
    h = Emb[word(n)] + b * b * b
    p = Emb[word(n)]
internal n:
    t = W @ concat(h[left(n)], h[right(n)])
    l = h[left(n)]
    r = h[right(n)]
    h = t * t * t * 0.125 + (l * l * l + r * r * r)
    p = p[left(n)] * p[right(n)]
output h[root]
"""


def test_a_made_up_operator_reaches_every_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPERATORS, "cube", CUBE)
    monkeypatch.setitem(REDUCTIONS, "prod", PRODUCT)
    program = program_from_source(MADE_UP, "madeup.cx")          # the checker
    reference = program_from_source(SPELLED_OUT, "spelledout.cx")
    structures = [generators.perfect_tree(depth, rng=depth, vocab_size=5) for depth in (1, 3)]
    weights = weights_for(program, seed=3, scale=0.5)
    got = interpret(program, structures, weights)                # the interpreter
    expected = interpret(reference, structures, weights)
    for state in ("h", "p"):
        np.testing.assert_allclose(got.states[state], expected.states[state], rtol=1e-5)

    result = compile_program(program, Options())
    recursive = result.recursive
    uniforms = [op for op in recursive.uniforms if op.attr("op") == "cube"]
    assert uniforms, "cube(b) is hoisted and evaluated on the host"
    assert 0.125 in {op.attr("value") for op in recursive.internal.ops if op.kind == "const"}
    # to_recursive reads the zero rule and the identity: cube of a missing child's zero
    # state is zero, so the sum needs no mask; prod selects its identity for a missing child.
    lowered = to_recursive(program).internal
    ops = lowered.op_map()
    masked = [op for op in lowered.ops if op.kind in ("binary", "select")
              and ops[op.args[-1 if op.kind == "binary" else 0]].kind == "child_exists"]
    assert [(op.kind, ops[op.args[-1]].attr("value")) for op in masked] == [("select", 1.0)] * 2
    ran = run_recursive(recursive, structures, weights)           # the host and node evaluators
    for state in ("h", "p"):
        np.testing.assert_allclose(ran.states[state], got.states[state], rtol=1e-5)
    assert helper_definition("cube", 1) == "float cx_cube(float x) { return x * x * x; }"
    assert re.search(r"cx_cube\d*\(", result.source)                 # codegen
    assert any(helper_definition("cube", lanes) in result.source for lanes in WIDTHS)
    labels = [op_label(op) for op in recursive.uniforms + recursive.internal.ops]
    assert any("= cube\n" in label for label in labels)              # the pictures

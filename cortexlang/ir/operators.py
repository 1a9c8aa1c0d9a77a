"""The operator table: every operator of cortexlang, once, with what each stage needs of it.

One `Operator` per operator: its name in the checked and recursive IR, how many operands it
takes, its kind, how a program writes it (a function name or an infix symbol; the grammar
says where the symbol may stand), how it folds on constants, its numpy implementation, how
stage 2 writes one element of it and how OpenCL C spells that, and its label in pictures.
`REDUCTIONS` does the same for the reductions over children (and the loop IR's reductions
over units), `LOOP_FUNCTIONS` for the loop IR's own index helpers.

The numpy implementations are the semantics: the reference interpreter, the recursive-program
evaluator and the host-side evaluator of uniforms and leaf tables all call them (so there is
one sigmoid). Every stage looks operators up here at the time it needs one, through
`OPERATORS`, `operator_named`, `operator_of` and friends; adding an operator is one entry
here, plus a grammar rule when it brings new syntax.

This module imports no stage: the frontend, passes, evaluators, codegen and viz import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import numpy as np

Shape = tuple[int, ...]
# A fold on constants: the operands' values (each a constant tensor with every element equal
# to the value) and the result's shape -> the result's value, or None when it does not fold.
Fold = Callable[[tuple[float, ...], Shape], "float | None"]


class Kind(Enum):
    """What an operator computes, as the stages that treat kinds alike see it."""

    UNARY = "elementwise unary"
    BINARY = "elementwise binary"
    COMPARISON = "comparison"        # elementwise binary, 1.0 where it holds, else 0.0
    VECTOR = "vector-wide unary"     # every element of the result reads the whole operand
    PRODUCT = "matrix product"       # [m, k] @ [k] or [m, k] @ [k, p]
    CONCAT = "concatenation"         # along axis 0, two or more operands

    @property
    def ir_kind(self) -> str:
        """The recursive IR's `Op.kind` for an application (unary and binary carry the
        operator's name in their `op` attribute; the others are their own kind)."""
        return _IR_KINDS[self]


_IR_KINDS = {Kind.UNARY: "unary", Kind.VECTOR: "unary", Kind.BINARY: "binary",
             Kind.COMPARISON: "binary", Kind.PRODUCT: "matmul", Kind.CONCAT: "concat"}


class Zero(Enum):
    """When the result is zero because operands are: `to_recursive` leaves a missing child's
    term unmasked where it is zero anyway. Only ever an understatement (NEVER is safe)."""

    NEVER = "never"      # not known to be zero (sigmoid(0) is 0.5)
    ALL = "all"          # zero when every operand is zero (tanh, add)
    ANY = "any"          # zero when any operand is zero (mul, matmul)


class Element(Enum):
    """How stage 2 (`loop_elements`) writes one element of an elementwise operator; the loop
    IR's infix symbols are C's."""

    CALL = "call"        # Call(name, operands): a math function, spelled by `c`
    INFIX = "infix"      # Binary(symbol, lhs, rhs)
    TRUTH = "truth"      # Select(Binary(symbol, lhs, rhs), 1.0, 0.0)
    PREFIX = "prefix"    # Binary(symbol, 0.0, operand)


@dataclass(frozen=True, slots=True)
class CSpelling:
    """How OpenCL C spells a loop-IR math function, on a scalar and on a vector of `lanes`.

    scalar:    the C function (or cast) called on scalars, e.g. "tanh", "fmax", "(float)".
    vector:    the one called on vectors, with `{lanes}` for the width, when it differs.
    constants: trailing constant operands the C call adds (relu is fmax(x, 0)).
    helper:    the body, on `x`, of the helper function `scalar` names, which the printer
               emits once per width used (OpenCL has no logistic function).
    """

    scalar: str
    vector: str | None = None
    constants: tuple[float, ...] = ()
    helper: str | None = None

    def function(self, lanes: int) -> str:
        """The C name to call on `lanes` values (1: a scalar)."""
        if lanes > 1 and self.vector is not None:
            return self.vector.format(lanes=lanes)
        return self.scalar


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator. Fields a kind does not use are None.

    name:       in the checked IR (`Unary.op`, `Binary.op`) and recursive IR (`op` attribute,
                or the `Op.kind` itself for matmul and concat).
    arity:      number of operands; None for any number from two (concat).
    function:   the name a program calls it by (`sigmoid(x)`), if it is a function.
    infix:      its symbol, if a program writes it infix (`+`; `-x` for neg; comparisons in
                structural conditions); the loop IR and C use the same symbol.
    precedence: binding strength of `infix` in source (higher binds tighter), for printers.
    label:      how pictures show it.
    numpy:      the semantics, on numpy arrays of one dtype (the operands' dtype is kept).
    fold:       its value on constant operands (Python floats), or None where undefined.
    left_identity, right_identity: e with e OP x == x, x OP e == x (folded away).
    absorbing:  z with z OP x == x OP z == z (folded to z, IEEE corner cases aside).
    mirrored:   the comparison that holds of (b, a) when this one holds of (a, b).
    zero:       when zeros in give zero out (see `Zero`).
    element:    how stage 2 writes one element (see `Element`); None: its own lowering.
    c:          the C spelling of its loop-IR call (`Element.CALL`).
    recompute:  cheap enough to recompute at every read: where a product's operand is built
                of such operators it is read on the fly, not stored (`place_operators`).
    whole_operand: every element of the result reads every element of the operands, which
                must therefore be complete (stored, or on the fly) first.
    flops:      arithmetic per result element, for cost estimates (products count apart).
    """

    name: str
    arity: int | None
    kind: Kind
    label: str
    numpy: Callable[..., np.ndarray]
    fold: Fold | None = None
    function: str | None = None
    infix: str | None = None
    precedence: int | None = None
    left_identity: float | None = None
    right_identity: float | None = None
    absorbing: float | None = None
    mirrored: str | None = None
    zero: Zero = Zero.NEVER
    element: Element | None = None
    c: CSpelling | None = None
    recompute: bool = False
    whole_operand: bool = False
    flops: int = 1


@dataclass(frozen=True, slots=True)
class Reduction:
    """A reduction: over a node's children (`sum(h[k] for k in children(n))`), and in the
    loop IR over units (softmax's max and sum).

    combine:  the binary operator that joins two terms.
    identity: `combine`'s identity: the value of no terms, and what a missing child adds
              (0.0: the term is multiplied by the child's 0/1 mask; otherwise selected).
    average:  the result is divided by the number of children (at least one).
    """

    name: str
    combine: str
    identity: float
    average: bool = False


class OpLike(Protocol):
    """What `operator_of` reads of a recursive-IR `Op` (or a host program's `HostOp`)."""

    @property
    def kind(self) -> str: ...
    def attr(self, key: str, default: Any = None) -> Any: ...


# ---------------------------------------------------------------------------------------------
# numpy implementations (the semantics)


def sigmoid(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp is only ever taken of a non-positive number."""
    exponential = np.exp(-np.abs(values))
    return np.where(values >= 0, 1 / (1 + exponential), exponential / (1 + exponential))


def softmax(values: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x)) along the last axis (a vector, or a batch of rows), shifted by
    the maximum so that exp cannot overflow."""
    exponential = np.exp(values - values.max(axis=-1, keepdims=True))
    return exponential / exponential.sum(axis=-1, keepdims=True)


def relu(values: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise."""
    return np.maximum(values, 0)


def concat(*parts: np.ndarray) -> np.ndarray:
    """The parts one after another along axis 0."""
    return np.concatenate(parts, axis=0)


# ---------------------------------------------------------------------------------------------
# Folds on Python floats


def _scalar(function: Callable[..., float | None]) -> Fold:
    """The fold of an elementwise operator: `function` on the operands' values; None where it
    is undefined (it returns None) or overflows."""
    def fold(values: tuple[float, ...], _shape: Shape) -> float | None:
        try:
            return function(*values)
        except OverflowError:
            return None
    return fold


def _fold_softmax(_values: tuple[float, ...], shape: Shape) -> float:
    return 1.0 / shape[0]


def _fold_concat(values: tuple[float, ...], _shape: Shape) -> float | None:
    return values[0] if len(set(values)) == 1 else None


def _comparison(name: str, symbol: str, label: str, mirrored: str,
                numpy: Callable[..., np.ndarray], test: Callable[[float, float], bool],
                zero: Zero) -> Operator:
    return Operator(name, 2, Kind.COMPARISON, label, numpy,
                    _scalar(lambda a, b: float(test(a, b))), infix=symbol, mirrored=mirrored,
                    zero=zero, element=Element.TRUTH, recompute=True)


_TABLE = (
    Operator("neg", 1, Kind.UNARY, "neg", np.negative, _scalar(lambda x: -x), infix="-",
             precedence=4, zero=Zero.ALL, element=Element.PREFIX, recompute=True),
    Operator("sigmoid", 1, Kind.UNARY, "sigmoid", sigmoid,
             _scalar(lambda x: 1.0 / (1.0 + math.exp(-x))), function="sigmoid",
             element=Element.CALL,
             c=CSpelling("cx_sigmoid", "cx_sigmoid{lanes}",
                         helper="1.0f / (1.0f + exp(-x))")),
    Operator("tanh", 1, Kind.UNARY, "tanh", np.tanh, _scalar(math.tanh), function="tanh",
             zero=Zero.ALL, element=Element.CALL, c=CSpelling("tanh")),
    Operator("relu", 1, Kind.UNARY, "relu", relu, _scalar(lambda x: max(x, 0.0)),
             function="relu", zero=Zero.ALL, element=Element.CALL,
             c=CSpelling("fmax", constants=(0.0,))),
    Operator("exp", 1, Kind.UNARY, "exp", np.exp, _scalar(math.exp), function="exp",
             element=Element.CALL, c=CSpelling("exp")),
    Operator("log", 1, Kind.UNARY, "log", np.log,
             _scalar(lambda x: math.log(x) if x > 0 else None), function="log",
             element=Element.CALL, c=CSpelling("log")),
    Operator("softmax", 1, Kind.VECTOR, "softmax", softmax, _fold_softmax, function="softmax",
             whole_operand=True, flops=3),
    Operator("add", 2, Kind.BINARY, "+", np.add, _scalar(lambda a, b: a + b), infix="+",
             precedence=1, left_identity=0.0, right_identity=0.0, zero=Zero.ALL,
             element=Element.INFIX, recompute=True),
    Operator("sub", 2, Kind.BINARY, "\u2212", np.subtract, _scalar(lambda a, b: a - b),
             infix="-", precedence=1, right_identity=0.0, zero=Zero.ALL,
             element=Element.INFIX, recompute=True),
    Operator("mul", 2, Kind.BINARY, "\u00d7", np.multiply, _scalar(lambda a, b: a * b),
             infix="*", precedence=2, left_identity=1.0, right_identity=1.0, absorbing=0.0,
             zero=Zero.ANY, element=Element.INFIX, recompute=True),
    Operator("div", 2, Kind.BINARY, "\u00f7", np.divide,
             _scalar(lambda a, b: a / b if b != 0 else None), infix="/", precedence=2,
             right_identity=1.0, element=Element.INFIX, recompute=True),
    Operator("max", 2, Kind.BINARY, "max", np.maximum, _scalar(max), zero=Zero.ALL,
             element=Element.CALL, c=CSpelling("fmax"), recompute=True),
    _comparison("lt", "<", "<", "gt", np.less, lambda a, b: a < b, Zero.ALL),
    _comparison("le", "<=", "\u2264", "ge", np.less_equal, lambda a, b: a <= b, Zero.NEVER),
    _comparison("gt", ">", ">", "lt", np.greater, lambda a, b: a > b, Zero.ALL),
    _comparison("ge", ">=", "\u2265", "le", np.greater_equal, lambda a, b: a >= b,
                Zero.NEVER),
    _comparison("eq", "==", "==", "eq", np.equal, lambda a, b: a == b, Zero.NEVER),
    _comparison("ne", "!=", "!=", "ne", np.not_equal, lambda a, b: a != b, Zero.ALL),
    Operator("matmul", 2, Kind.PRODUCT, "@", np.matmul, infix="@", precedence=3,
             absorbing=0.0, zero=Zero.ANY, whole_operand=True),
    Operator("concat", None, Kind.CONCAT, "concat", concat, _fold_concat, function="concat",
             zero=Zero.ALL, recompute=True, flops=0),
)

OPERATORS: dict[str, Operator] = {operator.name: operator for operator in _TABLE}

REDUCTIONS: dict[str, Reduction] = {
    "sum": Reduction("sum", "add", 0.0),
    "mean": Reduction("mean", "add", 0.0, average=True),
    "max": Reduction("max", "max", float("-inf")),
}

# The loop IR's calls that are no operator of the language: index helpers.
LOOP_FUNCTIONS: dict[str, CSpelling] = {
    "imax": CSpelling("max"),        # the larger of two ints (a token id clamped at 0)
    "float": CSpelling("(float)"),   # an int as a float
}


# ---------------------------------------------------------------------------------------------
# Look-ups (each reads the tables when called)


def operator_named(name: str) -> Operator:
    """The operator of a checked-IR or recursive-IR name; KeyError for an unknown one."""
    return OPERATORS[name]


def operator_of(op: OpLike) -> Operator | None:
    """The operator a recursive-IR operator applies (None for sources, slices, selects)."""
    if op.kind in ("unary", "binary"):
        return OPERATORS[op.attr("op")]
    found = OPERATORS.get(op.kind)
    return found if found is not None and found.kind.ir_kind == op.kind else None


def function_operator(name: str) -> Operator | None:
    """The operator a program calls by `name` (`sigmoid`, `concat`), if any."""
    return next((operator for operator in OPERATORS.values() if operator.function == name),
                None)


def function_names(*kinds: Kind) -> tuple[str, ...]:
    """The function names of the operators of these kinds, in table order."""
    return tuple(operator.function for operator in OPERATORS.values()
                 if operator.function is not None and operator.kind in kinds)


def infix_operator(symbol: str, arity: int = 2) -> Operator:
    """The operator a program writes as `symbol` with `arity` operands (KeyError if none)."""
    for operator in OPERATORS.values():
        if operator.infix == symbol and operator.arity == arity:
            return operator
    raise KeyError(symbol)


def comparison(symbol: str) -> Operator:
    """The comparison written `symbol` (`==`, `<`, ...) in a structural condition."""
    operator = infix_operator(symbol)
    if operator.kind is not Kind.COMPARISON:
        raise KeyError(symbol)
    return operator


def c_spelling(function: str) -> CSpelling:
    """How C spells a loop-IR call: an operator's math function or an index helper."""
    operator = OPERATORS.get(function)
    if operator is not None and operator.c is not None:
        return operator.c
    return LOOP_FUNCTIONS[function]


def precedences() -> Mapping[str, int]:
    """Source binding strength of every binary infix symbol (unary operators apart)."""
    return {operator.infix: operator.precedence for operator in OPERATORS.values()
            if operator.infix is not None and operator.precedence is not None
            and operator.arity == 2}

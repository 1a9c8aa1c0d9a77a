"""Integer index arithmetic for the loop IR that keeps printed indices tidy, and the index of
the element being computed."""

from __future__ import annotations

from dataclasses import dataclass

from cortexlang.ir import loops as L


def flat_size(shape: tuple[int, ...]) -> int:
    """How many elements a tensor of this shape holds (1 for a scalar)."""
    total = 1
    for dim in shape:
        total *= dim
    return total


def iconst(value: int) -> L.Expr:
    return L.Const(float(value), integer=True)


def iadd(lhs: L.Expr, rhs: L.Expr) -> L.Expr:
    if isinstance(rhs, L.Const) and rhs.value == 0:
        return lhs
    if isinstance(lhs, L.Const) and lhs.value == 0:
        return rhs
    if isinstance(lhs, L.Const) and isinstance(rhs, L.Const):
        return iconst(int(lhs.value + rhs.value))
    if isinstance(lhs, L.Binary) and lhs.op == "+" and isinstance(lhs.rhs, L.Const) \
            and isinstance(rhs, L.Const):
        return iadd(lhs.lhs, iconst(int(lhs.rhs.value + rhs.value)))
    return L.Binary("+", lhs, rhs)


def imul(lhs: L.Expr, rhs: L.Expr) -> L.Expr:
    if isinstance(rhs, L.Const) and rhs.value == 1:
        return lhs
    if isinstance(lhs, L.Const) and lhs.value == 1:
        return rhs
    if (isinstance(rhs, L.Const) and rhs.value == 0) or \
            (isinstance(lhs, L.Const) and lhs.value == 0):
        return iconst(0)
    if isinstance(lhs, L.Const) and isinstance(rhs, L.Const):
        return iconst(int(lhs.value * rhs.value))
    return L.Binary("*", lhs, rhs)


@dataclass(frozen=True)
class Index:
    """The element being computed: one expression per dimension, and the static range
    [low, high) the row index can take (used to resolve concatenations at compile time)."""

    dims: tuple[L.Expr, ...]
    low: int
    high: int

    def key(self) -> tuple[str, ...]:
        return tuple(L.format_expr(dim) for dim in self.dims)

    def shifted(self, offset: int) -> Index:
        return Index((iadd(self.dims[0], iconst(offset)),) + self.dims[1:], self.low + offset,
                     self.high + offset)

    def flat(self, shape: tuple[int, ...]) -> L.Expr:
        if not shape:
            return iconst(0)
        if len(shape) == 1:
            return self.dims[0]
        return iadd(imul(self.dims[0], iconst(shape[1])), self.dims[1])


SCALAR = Index((), 0, 1)

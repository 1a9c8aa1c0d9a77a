"""One rewrite mechanism for the recursive program: map each operator, then clean up.

`rewrite_rule(rule, rewrite)` walks the operators in order; `rewrite(op, resolved)` sees the
operator with its operands already renamed and returns either the operator (possibly a new
one) or the name of an existing operator that replaces it. Afterwards operators nobody uses
are dropped and identical operators are merged. A rule that does not change comes back as
the same object, so passes can report "(unchanged)".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cortexlang.ir.recursive import Op, RuleProgram

Rewrite = Callable[[Op, dict[str, Op]], "Op | str"]


def rewrite_rule(rule: RuleProgram, rewrite: Rewrite,
                 extra_ops: tuple[Op, ...] = ()) -> RuleProgram:
    """Apply `rewrite` to every operator of `rule`, then drop dead and duplicate operators.

    `extra_ops` are appended before cleaning (e.g. new results a pass adds)."""
    renamed: dict[str, str] = {}
    resolved: dict[str, Op] = {}
    ops: list[Op] = []
    for op in rule.ops + extra_ops:
        args = tuple(renamed.get(arg, arg) for arg in op.args)
        current = op if args == op.args else replace(op, args=args)
        result = rewrite(current, resolved)
        if isinstance(result, str):
            renamed[op.name] = result
            continue
        if result.name != op.name:
            renamed[op.name] = result.name
        resolved[result.name] = result
        ops.append(result)
    results = tuple((state, renamed.get(name, name)) for state, name in rule.results)
    cleaned = _merge_duplicates(_drop_dead(ops, results), results)
    new_rule = RuleProgram(rule.kind, cleaned[0], cleaned[1], rule.span)
    return rule if new_rule == rule else new_rule


def _drop_dead(ops: list[Op], results: tuple[tuple[str, str], ...]) -> list[Op]:
    live = {name for _, name in results}
    kept: list[Op] = []
    for op in reversed(ops):
        if op.name in live:
            kept.append(op)
            live.update(op.args)
    return list(reversed(kept))


def _merge_duplicates(ops: list[Op], results: tuple[tuple[str, str], ...]
                      ) -> tuple[tuple[Op, ...], tuple[tuple[str, str], ...]]:
    seen: dict[tuple[Any, ...], str] = {}
    renamed: dict[str, str] = {}
    merged: list[Op] = []
    for op in ops:
        args = tuple(renamed.get(arg, arg) for arg in op.args)
        op = op if args == op.args else replace(op, args=args)
        key = (op.kind, op.args, op.shape, op.attrs)
        if key in seen:
            renamed[op.name] = seen[key]
            continue
        seen[key] = op.name
        merged.append(op)
    return tuple(merged), tuple((state, renamed.get(name, name)) for state, name in results)


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`, ... whichever is not taken yet."""
    if base not in taken:
        return base
    index = 2
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"

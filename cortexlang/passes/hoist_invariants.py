"""Hoisting: work that does not depend on the node is computed once, not once per node.

Legal always. An operator is node-independent when it reads only constants, parameters and
other node-independent operators (e.g. `sigmoid(b_f)`, or `U @ b` in a leaf whose child
states folded to zero). Such operators move to the program's `uniforms`, computed once when
the weights are bound (a compile-time product, not a per-input one); the rules read them
through `uniform` operators.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir.recursive import NODE_INDEPENDENT_SOURCES, SOURCE_KINDS, Op, RecursiveProgram
from cortexlang.passes.result import PassResult, unchanged
from cortexlang.passes.rewrite import rewrite_rule


def hoist_invariants(program: RecursiveProgram) -> RecursiveProgram:
    """Move node-independent computed operators of every rule into `uniforms` (the same
    object when there are none)."""
    return hoist_invariants_result(program).ir


def hoist_invariants_result(program: RecursiveProgram) -> PassResult[RecursiveProgram]:
    """Move node-independent computed operators into `uniforms`; say how many, or why none."""
    uniforms: dict[str, Op] = {op.name: op for op in program.uniforms}
    hoisted = 0

    def hoist_rule(kind: str):  # type: ignore[no-untyped-def]
        def rewrite(op: Op, resolved: dict[str, Op]) -> Op | str:
            nonlocal hoisted
            if op.kind in SOURCE_KINDS:
                return op
            if not all(resolved[arg].kind in NODE_INDEPENDENT_SOURCES for arg in op.args):
                return op
            args = tuple(_as_uniform(resolved[arg], uniforms, kind) for arg in op.args)
            name = f"{kind}_{op.name}"
            uniforms.setdefault(name, Op(name, op.kind, args, op.shape, op.attrs, op.span))
            hoisted += 1
            return Op(op.name, "uniform", (), op.shape, (("name", name),), op.span)
        return rewrite

    rules = {rule.kind: rewrite_rule(rule, hoist_rule(rule.kind)) for rule in program.rules()}
    if hoisted == 0:
        return unchanged(program, "every computed operator depends on the node")
    note = f"{hoisted} node-independent operators hoisted"
    return PassResult(replace(program, leaf=rules["leaf"], internal=rules["internal"],
                              heads=rules.get("heads"), uniforms=tuple(uniforms.values()),
                              notes=program.notes + (("hoist_invariants", note),)), note)


def _as_uniform(op: Op, uniforms: dict[str, Op], kind: str) -> str:
    """The name under which a rule operand is known among the uniforms."""
    if op.kind == "uniform":
        return str(op.attr("name"))
    name = f"{kind}_{op.name}"
    uniforms.setdefault(name, Op(name, op.kind, (), op.shape, op.attrs, op.span))
    return name

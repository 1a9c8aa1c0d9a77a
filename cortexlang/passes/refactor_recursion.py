"""Recursive refactoring: move `W @ (child states)` to the end of each child's own step.

Where the internal rule multiplies a shared weight by a sum of children's states,
`W @ (h[left(n)] + h[right(n)])`, every node can instead compute `W @ h` once at the end of
its own rule, into a new state, and the parent adds its children's products: the parent's
matrix product disappears and the child's product runs in the same kernel as the child's own
work, on the state it just computed.

Legal when the left operand is a parameter (the same for every node) and the right operand
is a sum of child states, each optionally masked by the child's existence. Not legal when
the children are mixed by position, as in `U @ concat(h[left(n)], h[right(n)])`: a child
would have to know whether it is a left or a right child, and multiply by a different half
of U. The pass notes why it did not apply.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir.checked import StateInfo
from cortexlang.ir.recursive import Op, RecursiveProgram, RuleProgram
from cortexlang.passes.rewrite import fresh_name, rewrite_rule


def _terms(name: str, ops: dict[str, Op]) -> list[Op] | None:
    """The child-state terms of an add tree, or None if it has any other kind of term."""
    op = ops[name]
    if op.kind == "binary" and op.attr("op") == "add":
        left, right = _terms(op.args[0], ops), _terms(op.args[1], ops)
        return None if left is None or right is None else left + right
    if op.kind == "child_state":
        return [op]
    if op.kind == "binary" and op.attr("op") == "mul":
        value, mask = ops[op.args[0]], ops[op.args[1]]
        if value.kind == "child_state" and mask.kind == "child_exists" and \
                mask.attr("child") == value.attr("child"):
            return [op]
    return None


def refactor_recursion(program: RecursiveProgram) -> RecursiveProgram:
    """Rewrite every legal `W @ sum(child states)` of the internal rule."""
    internal = program.internal
    ops = internal.op_map()
    new_states: dict[tuple[str, str], str] = {}   # (param, state) -> refactored state name
    taken = {state.name for state in program.states} | {p.name for p in program.params}
    skipped: list[str] = []
    for op in internal.ops:
        if op.kind != "matmul":
            continue
        weight, operand = ops[op.args[0]], ops[op.args[1]]
        terms = _terms(op.args[1], ops)
        if weight.kind != "param" or terms is None or len(op.shape) != 1:
            if weight.kind == "param" and operand.kind == "concat":
                skipped.append(f"{op.name}: {weight.attr('param')} @ concat(...) mixes children "
                               "by position")
            continue
        for term in terms:
            child_read = term if term.kind == "child_state" else ops[term.args[0]]
            key = (weight.attr("param"), child_read.attr("state"))
            if key not in new_states:
                new_states[key] = fresh_name(f"{key[1]}_{key[0]}", taken)
                taken.add(new_states[key])
    if not new_states:
        note = "; ".join(skipped) if skipped else "no product of a weight and child states"
        return replace(program, notes=program.notes + (("refactor_recursion",
                                                        f"not applied: {note}"),))

    rewritten = _replace_products(internal, new_states)
    states = program.states + tuple(
        StateInfo(name, (program.param_shape(param)[0],)) for (param, _), name in
        new_states.items())
    leaf = _append_products(program.leaf, program, new_states)
    internal_rule = _append_products(rewritten, program, new_states)
    moved = ", ".join(f"{param} @ {state}" for param, state in new_states)
    return replace(program, leaf=leaf, internal=internal_rule, states=states,
                   notes=program.notes + (("refactor_recursion",
                                           f"moved {moved} into each child's step"),))


def _replace_products(rule: RuleProgram, new_states: dict[tuple[str, str], str]) -> RuleProgram:
    """The parent adds its children's precomputed products instead of multiplying."""
    ops: list[Op] = []
    resolved: dict[str, Op] = {}
    renamed: dict[str, str] = {}
    for op in rule.ops:
        op = replace(op, args=tuple(renamed.get(arg, arg) for arg in op.args))
        weight = resolved.get(op.args[0]) if op.args else None
        terms = _terms(op.args[1], resolved) if op.kind == "matmul" else None
        if weight is None or weight.kind != "param" or terms is None or len(op.shape) != 1 \
                or not _all_refactored(weight, terms, resolved, new_states):
            resolved[op.name] = op
            ops.append(op)
            continue
        total: Op | None = None
        for index, term in enumerate(terms):
            child_read = term if term.kind == "child_state" else resolved[term.args[0]]
            state = new_states[(weight.attr("param"), child_read.attr("state"))]
            value = Op(f"{op.name}_c{index}", "child_state", (), op.shape,
                       (("state", state), ("child", child_read.attr("child"))), op.span)
            ops.append(value)
            if term.kind == "binary":  # keep the existence mask
                value = Op(f"{op.name}_m{index}", "binary", (value.name, term.args[1]),
                           op.shape, (("op", "mul"),), op.span)
                ops.append(value)
            if total is not None:
                value = Op(f"{op.name}_s{index}", "binary", (total.name, value.name), op.shape,
                           (("op", "add"),), op.span)
                ops.append(value)
            total = value
        assert total is not None
        renamed[op.name] = total.name
        resolved.update({piece.name: piece for piece in ops[-3 * len(terms):]})
    results = tuple((state, renamed.get(name, name)) for state, name in rule.results)
    return rewrite_rule(RuleProgram(rule.kind, tuple(ops), results, rule.span),
                        lambda op, resolved: op)


def _all_refactored(weight: Op, terms: list[Op], resolved: dict[str, Op],
                    new_states: dict[tuple[str, str], str]) -> bool:
    """Was every child state of this product given a refactored state? A product of a
    child's *refactored* state (the outer product of `A @ (B @ h[left(n)])`, once the inner
    one became a read of the child's `B @ h`) was not, and stays in the parent."""
    for term in terms:
        child_read = term if term.kind == "child_state" else resolved[term.args[0]]
        if (weight.attr("param"), child_read.attr("state")) not in new_states:
            return False
    return True


def _append_products(rule: RuleProgram, program: RecursiveProgram,
                     new_states: dict[tuple[str, str], str]) -> RuleProgram:
    """Each node computes `W @ state` for every refactored pair, as new results."""
    ops = list(rule.ops)
    results = list(rule.results)
    names = {op.name for op in ops}
    for (param, state), new_state in new_states.items():
        weight_name = fresh_name(f"w_{param}", names)
        names.add(weight_name)
        product_name = fresh_name(new_state, names)
        names.add(product_name)
        ops.append(Op(weight_name, "param", (), program.param_shape(param), (("param", param),)))
        ops.append(Op(product_name, "matmul", (weight_name, rule.result(state)),
                      (program.param_shape(param)[0],)))
        results.append((new_state, product_name))
    return rewrite_rule(RuleProgram(rule.kind, tuple(ops), tuple(results), rule.span),
                        lambda op, resolved: op)

"""Where each operator of a rule lives, for `lower_loops` (stage 2).

An operator is *addressable* when any element of it can be read at any time: a
source (a parameter, a child's state, the node's token row), an operator stored to memory
(*materialised*), or an elementwise combination of addressable operators (evaluated on the
fly). The operands of a matrix product and of a softmax must be addressable, since every
element of the result reads every element of the operand; an operand that is not gets
materialised (a concatenation materialises its parts instead). Each computed operator gets a
phase: the earliest one in which its operands are ready. With operator fusion off every
operator is materialised in a phase of its own, one kernel per operator, as a framework would
run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.operators import operator_of
from cortexlang.ir.recursive import SOURCE_KINDS, Op, RuleProgram

# Besides the operators the table says are cheap to recompute (additions, products,
# comparisons, negation, concatenation): read on the fly wherever they are read.
_ON_THE_FLY_KINDS = ("select", "slice")


def _on_the_fly(op: Op) -> bool:
    operator = operator_of(op)
    return op.kind in _ON_THE_FLY_KINDS or (operator is not None and operator.recompute)


def _reads_whole_operands(op: Op) -> bool:
    operator = operator_of(op)
    return operator is not None and operator.whole_operand


@dataclass
class RulePlan:
    """Where each operator of a rule lives: its phase, and its buffer if materialised."""

    rule: RuleProgram
    phase: dict[str, int] = field(default_factory=dict)
    buffers: dict[str, BufferRef] = field(default_factory=dict)   # op -> buffer holding it
    stores: dict[str, list[BufferRef]] = field(default_factory=dict)  # op -> buffers it fills

    @property
    def num_phases(self) -> int:
        return 1 + max((self.phase[op] for op in self.stores), default=0)


def plan_rule(rule: RuleProgram, fuse: bool, result_buffer: dict[str, BufferRef]) -> RulePlan:
    """Choose materialised operators and phases (see the module docstring)."""
    ops = rule.op_map()
    plan = RulePlan(rule)
    computed = [op for op in rule.ops if op.kind not in SOURCE_KINDS]
    materialised: set[str] = set()

    results = {name for _, name in rule.results}

    def addressable(name: str) -> bool:
        """Readable at any index without recomputing anything costly: a source, a stored
        operator, or additions, products, selections, slices and concatenations of those.
        (A state the rule computes is stored anyway, so it is read back, not recomputed.)"""
        op = ops[name]
        if op.kind in SOURCE_KINDS or name in materialised:
            return True
        if name in results:
            return False
        if _on_the_fly(op):
            return all(addressable(arg) for arg in op.args)
        return False

    def ensure_addressable(name: str) -> None:
        if addressable(name):
            return
        if ops[name].kind == "concat":
            for part in ops[name].args:
                ensure_addressable(part)
        else:
            materialised.add(name)

    if fuse:
        for op in computed:
            if _reads_whole_operands(op):
                for arg in op.args:
                    ensure_addressable(arg)
    else:
        materialised.update(op.name for op in computed)

    def ready(name: str) -> int:
        """The first phase in which every element of `name` can be read."""
        op = ops[name]
        if op.kind in SOURCE_KINDS:
            return 0
        if name in materialised:
            return plan.phase[name] + 1
        return max((ready(arg) for arg in op.args), default=0)

    for position, op in enumerate(computed):
        if not fuse:
            plan.phase[op.name] = position
            continue
        cross = _reads_whole_operands(op)
        phase = 0
        for arg in op.args:
            if ops[arg].kind in SOURCE_KINDS:
                continue
            phase = max(phase, ready(arg) if cross else plan.phase[arg])
        plan.phase[op.name] = phase
    for op in rule.ops:
        if op.kind in SOURCE_KINDS:
            plan.phase[op.name] = 0
    for state, name in rule.results:
        plan.stores.setdefault(name, []).append(result_buffer[state])
        plan.buffers.setdefault(name, result_buffer[state])
    for name in (op.name for op in rule.ops if op.name in materialised):  # source order
        if name not in plan.buffers:
            buffer = BufferRef(Role.TEMP, f"{rule.kind}_{name}")
            plan.buffers[name] = buffer
            plan.stores[name] = [buffer]
    return plan

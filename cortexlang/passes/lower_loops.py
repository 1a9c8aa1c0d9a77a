"""Lower the recursive program to the loop IR (stage 2).

Each rule becomes a loop over its batches and their nodes, with one phase per group of fused
operators: `place_operators` chooses which operators are stored and in which phase,
`loop_elements` builds each stored element's scalar expression, and this module assembles
the loops, the heads and the buffers.

With the recursion unrolled (`RecursiveProgram.unroll`), the loop over the internal nodes of
a batch becomes a parallel loop over the batch's groups, each a sequential loop over its
members (the inlined children, then their parent; see `runtime/groups.py`): one work-item
computes a whole group, every phase and every unit, so no barrier separates a child from
its parent.
"""

from __future__ import annotations

from dataclasses import replace

from cortexlang.ir import loops as L
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import (
    BATCH_GROUPS,
    BATCH_LEN,
    BATCH_START,
    CHILDREN,
    GROUP_START,
    HEAD_NODES,
    NUM_CHILDREN,
    BufferRef,
    BufferRows,
    Role,
)
from cortexlang.ir.recursive import RecursiveProgram
from cortexlang.passes.loop_elements import Evaluator
from cortexlang.passes.loop_indices import SCALAR, Index, flat_size, iadd, iconst, imul
from cortexlang.passes.place_operators import RulePlan, plan_rule

# ---------------------------------------------------------------------------------------------
# The loop program


def _phase_body(program: RecursiveProgram, plan: RulePlan, phase: int,
                node_lets: dict[str, L.Let], token_input: dict[str, str]) -> tuple[
                    tuple[L.Stmt, ...], tuple[BufferRef, ...]]:
    """The statements of one phase: one parallel loop over units per output shape."""
    outputs = [name for name in plan.stores if plan.phase[name] == phase]
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name in outputs:
        by_shape.setdefault(plan.rule.op_map()[name].shape, []).append(name)
    body: list[L.Stmt] = []
    stored: list[BufferRef] = []
    for shape, names in sorted(by_shape.items(), key=lambda item: (-flat_size(item[0]), item[0])):
        evaluator = Evaluator(program, plan, phase, node_lets, token_input)
        unit = L.Var("j")
        if len(shape) == 2:
            index = Index((L.Binary("/", unit, iconst(shape[1])),
                           L.Binary("%", unit, iconst(shape[1]))), 0, shape[0])
        elif len(shape) == 1:
            index = Index((unit,), 0, shape[0])
        else:
            index = SCALAR
        stores: list[L.Stmt] = []
        for name in names:
            value = evaluator.element(name, index)
            span = plan.rule.op_map()[name].span
            for buffer in plan.stores[name]:
                row = imul(L.Var("node"), iconst(flat_size(shape)))
                stores.append(L.Store(buffer, iadd(row, index.flat(shape)), value, name, span))
                stored.append(buffer)
        body.append(L.Loop("j", iconst(0), iconst(flat_size(shape)), L.LoopKind.UNITS,
                           tuple(evaluator.lets) + tuple(stores)))
    return tuple(body), tuple(stored)


def _rule_phases(program: RecursiveProgram, plan: RulePlan, label: str,
                 token_input: dict[str, str]) -> tuple[dict[str, L.Let], list[L.Phase]]:
    node_lets: dict[str, L.Let] = {}
    phases: list[L.Phase] = []
    for phase in range(plan.num_phases):
        body, stored = _phase_body(program, plan, phase, node_lets, token_input)
        spans = [plan.rule.op_map()[name].span for name in plan.stores
                 if plan.phase[name] == phase]
        span = next((span for span in spans if span is not None), None)
        if body:
            phases.append(L.Phase(label, phase, body, stored, span))
    return node_lets, phases


def _node_loop(program: RecursiveProgram, node_range: tuple[L.Expr, L.Expr],
               body: tuple[L.Stmt, ...], grouped: bool) -> L.Loop:
    """The loop over a batch's nodes; with the recursion unrolled (`grouped`), over its
    groups and each group's members in order."""
    if not grouped:
        return L.Loop("node", node_range[0], node_range[1], L.LoopKind.NODES, body)
    group, batch = L.Var("g"), L.Var("b")
    members = L.Loop("node", L.Load(GROUP_START, group),
                     L.Load(GROUP_START, L.Binary("+", group, iconst(1))), L.LoopKind.MEMBERS,
                     body)
    return L.Loop("g", L.Load(BATCH_GROUPS, batch),
                  L.Load(BATCH_GROUPS, L.Binary("+", batch, iconst(1))), L.LoopKind.GROUPS,
                  (members,))


def lower_loops(program: RecursiveProgram, fuse_operators: bool = True) -> L.LoopProgram:
    """Stage 2: the loop program of a recursive program."""
    state_buffer = {state.name: BufferRef(Role.STATE, state.name) for state in program.states}
    token_input = {item.name: item.name for item in program.inputs if item.kind == "token"}
    batch = L.Var("b")
    node_range = (L.Load(BATCH_START, batch),
                  L.Binary("+", L.Load(BATCH_START, batch), L.Load(BATCH_LEN, batch)))
    plans = {rule.kind: plan_rule(rule, fuse_operators, state_buffer)
             for rule in (program.leaf, program.internal)}
    body: list[L.Stmt] = []
    unrolled = program.unroll is not None
    shared = not program.specialized and program.leaf.ops == program.internal.ops
    if program.specialized or shared:
        for kind, start, stop, batches in (
                ("leaf", iconst(0), L.Var("num_leaf_batches"), BatchRange.LEAF),
                ("internal", L.Var("num_leaf_batches"), L.Var("num_batches"),
                 BatchRange.INTERNAL)):
            if shared and kind == "leaf":
                continue
            lets, phases = _rule_phases(program, plans[kind], kind, token_input)
            if shared:
                start, batches = iconst(0), BatchRange.ALL
            node_loop = _node_loop(program, node_range, tuple(lets.values()) + tuple(phases),
                                   unrolled and kind == "internal")
            body.append(L.Loop("b", start, stop, L.LoopKind.BATCHES, (node_loop,), batches))
    else:
        leaf_lets, leaf_phases = _rule_phases(program, plans["leaf"], "leaf", token_input)
        internal_lets, internal_phases = _rule_phases(program, plans["internal"], "internal",
                                                      token_input)
        is_leaf = L.Binary("<", L.Var("node"), L.Var("num_leaves"))
        merged: list[L.Stmt] = []
        for phase in range(max(len(leaf_phases), len(internal_phases))):
            then = (leaf_phases[phase],) if phase < len(leaf_phases) else ()
            otherwise = (internal_phases[phase],) if phase < len(internal_phases) else ()
            merged.append(L.Phase("node", phase, (L.If(is_leaf, then, otherwise),),
                                  tuple(s for p in then + otherwise for s in p.stores)))
        merged_lets = tuple({**leaf_lets, **internal_lets}.values())
        node_loop = _node_loop(program, node_range, merged_lets + tuple(merged), unrolled)
        body.append(L.Loop("b", iconst(0), L.Var("num_batches"), L.LoopKind.BATCHES,
                           (node_loop,),
                           BatchRange.ALL))
    if program.heads is not None:
        head_buffer = {name: BufferRef(Role.OUTPUT, name) for name, _ in program.heads.results}
        head_plan = plan_rule(program.heads, fuse_operators, head_buffer)
        lets, phases = _rule_phases(program, head_plan, "heads", token_input)
        locate = L.Let("node", L.Load(HEAD_NODES, L.Var("i")), True)
        # Heads store by head position, not by node id.
        phases = [_rows_by_head(phase, head_buffer.values()) for phase in phases]
        body.append(L.Loop("i", iconst(0), L.Var("num_heads"), L.LoopKind.NODES,
                           (locate,) + tuple(lets.values()) + tuple(phases), BatchRange.HEADS))
        buffers = _rule_buffers(head_plan, "heads")
        head_ops = program.heads.op_map()
        buffers += tuple(L.Buffer(head_buffer[output], BufferRows.HEADS,
                                  flat_size(head_ops[name].shape))
                         for output, name in program.heads.results)
        buffers += (L.Buffer(HEAD_NODES, BufferRows.HEADS, 1, integer=True),)
    else:
        buffers = ()
    buffers = _buffers(program, plans, fuse_operators, tuple(body)) + buffers
    return L.LoopProgram(program.name, _dedupe(buffers), tuple(body), 1, program.notes)


def _rows_by_head(phase: L.Phase, output_buffers) -> L.Phase:  # type: ignore[no-untyped-def]
    outputs = set(output_buffers)

    def rewrite(stmt: L.Stmt) -> L.Stmt:
        if isinstance(stmt, L.Store) and stmt.buffer in outputs:
            index = stmt.index
            assert isinstance(index, L.Binary)
            return replace(stmt, index=_replace_var(index, "node", "i"))
        if isinstance(stmt, L.Loop):
            return L.Loop(stmt.var, stmt.start, stmt.stop, stmt.kind,
                          tuple(rewrite(s) for s in stmt.body))
        return stmt

    return L.Phase(phase.rule, phase.index, tuple(rewrite(s) for s in phase.body), phase.stores)


def _replace_var(expr: L.Expr, old: str, new: str) -> L.Expr:
    if isinstance(expr, L.Var):
        return L.Var(new) if expr.name == old else expr
    if isinstance(expr, L.Binary):
        return L.Binary(expr.op, _replace_var(expr.lhs, old, new),
                        _replace_var(expr.rhs, old, new))
    return expr


def _rule_buffers(plan: RulePlan, kind: str) -> tuple[L.Buffer, ...]:
    ops = plan.rule.op_map()
    return tuple(L.Buffer(buffer, BufferRows.NODES, flat_size(ops[name].shape))
                 for name, buffer in plan.buffers.items() if buffer.role is Role.TEMP)


def _loaded(body: tuple[L.Stmt, ...]) -> set[BufferRef]:
    """Every buffer the statements load from."""
    names: set[BufferRef] = set()
    for stmt in L.walk_stmts(body):
        exprs = [stmt.value] if isinstance(stmt, L.Let) else \
            [stmt.index, stmt.value] if isinstance(stmt, L.Store) else []
        for expr in exprs:
            names.update(sub.buffer for sub in L.walk_exprs(expr) if isinstance(sub, L.Load))
    return names


def _buffers(program: RecursiveProgram, plans: dict[str, RulePlan],
             fuse: bool, body: tuple[L.Stmt, ...]) -> tuple[L.Buffer, ...]:
    buffers: list[L.Buffer] = []
    loaded = _loaded(body)
    for param in program.params:
        buffers.append(L.Buffer(BufferRef(Role.WEIGHT, param.name), BufferRows.PARAM,
                                flat_size(param.shape)))
        transposed = BufferRef(Role.WEIGHT_T, param.name)
        if transposed in loaded:
            buffers.append(L.Buffer(transposed, BufferRows.PARAM, flat_size(param.shape)))
    for op in program.uniforms:
        buffers.append(L.Buffer(BufferRef(Role.UNIFORM, op.name), BufferRows.ONE,
                                flat_size(op.shape)))
    if program.table_rule is not None:
        for table_state, _ in program.table_rule.results:
            buffers.append(L.Buffer(BufferRef(Role.TABLE, f"leaf_{table_state}"), BufferRows.VOCAB,
                                    flat_size(program.state_shape(table_state))))
    for state in program.states:
        buffers.append(L.Buffer(BufferRef(Role.STATE, state.name), BufferRows.NODES,
                                flat_size(state.shape)))
    for item in program.inputs:
        if item.kind == "token":
            buffers.append(L.Buffer(BufferRef(Role.TOKENS, item.name), BufferRows.NODES, 1,
                                    integer=True))
        else:
            buffers.append(L.Buffer(BufferRef(Role.INPUT, item.name), BufferRows.NODES,
                                    flat_size(item.shape)))
    for ref, size in ((CHILDREN, program.max_children), (NUM_CHILDREN, 1)):
        buffers.append(L.Buffer(ref, BufferRows.NODES, size, integer=True))
    buffers.append(L.Buffer(BATCH_START, BufferRows.BATCHES, 1, integer=True))
    buffers.append(L.Buffer(BATCH_LEN, BufferRows.BATCHES, 1, integer=True))
    if program.unroll is not None:
        buffers.append(L.Buffer(GROUP_START, BufferRows.GROUPS, 1, integer=True))
        buffers.append(L.Buffer(BATCH_GROUPS, BufferRows.BATCHES, 1, integer=True))
    for kind, plan in plans.items():
        buffers.extend(_rule_buffers(plan, kind))
    return tuple(buffers)


def _dedupe(buffers: tuple[L.Buffer, ...]) -> tuple[L.Buffer, ...]:
    seen: dict[BufferRef, L.Buffer] = {}
    for buffer in buffers:
        seen.setdefault(buffer.ref, buffer)
    return tuple(seen.values())

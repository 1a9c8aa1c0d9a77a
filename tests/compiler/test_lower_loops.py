# ruff: noqa: E501  (expected printer text is copied verbatim, long lines included)
"""lower_loops: the recursive program becomes loops over batches, nodes and units, with the
operators fused into phases (or one phase per operator without fusion)."""

from __future__ import annotations

import pytest
from compiler_support import EXAMPLE_NAMES, program_from_source, small_example, stage_before

from cortexlang.errors import InternalError
from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BufferRef, Role
from cortexlang.ir.loop_walk import statements
from cortexlang.ir.recursive import RecursiveProgram
from cortexlang.ir.verify_loops import verify_loops
from cortexlang.passes.lower_loops import lower_loops
from cortexlang.passes.pipeline import Options

TINY = """\
model Tiny
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H], W[H, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = W @ (h[left(n)] + h[right(n)])
output h[root]
"""
OPTIONS = Options().without("refactor_recursion")

PREAMBLE = """\
loop program Tiny
buffer param:Emb: float[param][6]
buffer param:W: float[param][4]
buffer param_t:W: float[param][4]
buffer state:h: float[nodes][2]
buffer words:word: int[nodes][1]
buffer children: int[nodes][2]
buffer num_children: int[nodes][1]
buffer batch_start: int[batches][1]
buffer batch_len: int[batches][1]
"""
LEAVES = """\
for b in 0 .. num_leaf_batches:    # sequential
    for node in batch_start[b] .. batch_start[b] + batch_len[b]:    # parallel nodes
        int token_word = imax(words:word[node], 0)
        phase leaf.0:    # stores state:h
            for j in 0 .. 2:    # parallel units
                state:h[node * 2 + j] = param:Emb[token_word * 2 + j]    # h, line 8
"""

# Fused: the sum of the children is evaluated inside the dot product (it is elementwise of
# addressable sources), so the internal rule is one phase; W is read transposed.
EXPECTED_FUSED = PREAMBLE + LEAVES + """\
for b in num_leaf_batches .. num_batches:    # sequential
    for node in batch_start[b] .. batch_start[b] + batch_len[b]:    # parallel nodes
        int child0 = children[node * 2]
        int child1 = children[node * 2 + 1]
        phase internal.0:    # stores state:h
            for j in 0 .. 2:    # parallel units
                float v0 = sum(k in 0..2: param_t:W[k * 2 + j] * (state:h[child0 * 2 + k] + state:h[child1 * 2 + k]))
                state:h[node * 2 + j] = v0    # h, line 10
"""

# Unfused: every operator is stored to memory in a phase of its own, as a framework would.
EXPECTED_UNFUSED = PREAMBLE + "buffer temp:internal_t3: float[nodes][2]\n" + LEAVES + """\
for b in num_leaf_batches .. num_batches:    # sequential
    for node in batch_start[b] .. batch_start[b] + batch_len[b]:    # parallel nodes
        int child0 = children[node * 2]
        int child1 = children[node * 2 + 1]
        phase internal.0:    # stores temp:internal_t3
            for j in 0 .. 2:    # parallel units
                float v0 = state:h[child0 * 2 + j] + state:h[child1 * 2 + j]
                temp:internal_t3[node * 2 + j] = v0    # t3, line 10
        phase internal.1:    # stores state:h
            for j in 0 .. 2:    # parallel units
                float v0 = sum(k in 0..2: param_t:W[k * 2 + j] * temp:internal_t3[node * 2 + k])
                state:h[node * 2 + j] = v0    # h, line 10
"""

# Not specialised: one loop over all batches, and a per-node branch in each phase.
EXPECTED_SHARED = PREAMBLE + """\
for b in 0 .. num_batches:    # sequential
    for node in batch_start[b] .. batch_start[b] + batch_len[b]:    # parallel nodes
        int token_word = imax(words:word[node], 0)
        int child0 = children[node * 2]
        int child1 = children[node * 2 + 1]
        phase node.0:    # stores state:h, state:h
            if node < num_leaves:
                phase leaf.0:    # stores state:h
                    for j in 0 .. 2:    # parallel units
                        state:h[node * 2 + j] = param:Emb[token_word * 2 + j]    # h, line 8
            else:
                phase internal.0:    # stores state:h
                    for j in 0 .. 2:    # parallel units
                        float v0 = sum(k in 0..2: param_t:W[k * 2 + j] * (state:h[child0 * 2 + k] + state:h[child1 * 2 + k]))
                        state:h[node * 2 + j] = v0    # h, line 10
"""


def _tiny(options: Options) -> RecursiveProgram:
    return stage_before(program_from_source(TINY, "tiny.cx"), "lower_loops", options)


def test_fused_operators_make_one_phase_per_rule() -> None:
    program = lower_loops(_tiny(OPTIONS), fuse_operators=True)
    assert L.format_loops(program) == EXPECTED_FUSED
    verify_loops(program)


def test_without_fusion_every_operator_is_materialised() -> None:
    program = lower_loops(_tiny(OPTIONS), fuse_operators=False)
    assert L.format_loops(program) == EXPECTED_UNFUSED
    verify_loops(program)


def test_unspecialised_leaves_branch_per_node() -> None:
    program = lower_loops(_tiny(OPTIONS.without("specialize_leaves")), fuse_operators=True)
    assert L.format_loops(program) == EXPECTED_SHARED
    verify_loops(program)


def _phases(program: L.LoopProgram) -> list[L.Phase]:
    return [stmt for stmt in statements(program.body) if isinstance(stmt, L.Phase)]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_fusion_never_adds_phases_or_temporaries(name: str) -> None:
    before = stage_before(small_example(name), "lower_loops")
    fused, unfused = lower_loops(before, True), lower_loops(before, False)
    for program in (fused, unfused):
        verify_loops(program)
    assert len(_phases(fused)) <= len(_phases(unfused))
    temps = [{b.ref for b in program.buffers if b.ref.role is Role.TEMP}
             for program in (fused, unfused)]
    assert temps[0] <= temps[1]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_state_is_stored_by_both_rules(name: str) -> None:
    recursive = stage_before(small_example(name), "lower_loops")
    program = lower_loops(recursive, True)
    stored: dict[str, set[BufferRef]] = {rule: set() for rule in ("leaf", "internal")}
    for phase in _phases(program):
        if phase.rule in stored:
            stored[phase.rule].update(phase.stores)
    for state in recursive.states:
        for rule in stored:
            assert BufferRef(Role.STATE, state.name) in stored[rule], (rule, state.name)


def test_the_verifier_rejects_an_undeclared_buffer() -> None:
    program = lower_loops(_tiny(OPTIONS), fuse_operators=True)
    broken = L.LoopProgram(program.name, tuple(b for b in program.buffers
                                               if b.ref != BufferRef(Role.STATE, "h")), program.body)
    with pytest.raises(InternalError) as caught:
        verify_loops(broken)
    assert caught.value.step == "verify_loops"

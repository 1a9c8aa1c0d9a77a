# ruff: noqa: E501  (expected printer text is copied verbatim, long lines included)
"""dense_intermediates: temporaries get one row per node of the largest batch, indexed by
the node's position in its batch (`slot`), instead of one row per node."""

from __future__ import annotations

import pytest
from compiler_support import EXAMPLE_NAMES, program_from_source, small_example, stage_before

from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BufferRef, BufferRows, Role
from cortexlang.passes.dense_intermediates import dense_intermediates, dense_intermediates_result
from cortexlang.passes.pipeline import Options

TWO_PRODUCTS = """\
model Two
sizes H = 2, V = 3
structure binary_tree
param Emb[V, H], W[H, H], U[H, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = tanh(W @ tanh(U @ (h[left(n)] + h[right(n)])))
output h[root]
"""
OPTIONS = Options().without("refactor_recursion")

# tanh(U @ ...) is the operand of the second product, so it is materialised (t6); its buffer
# shrinks to [batch] rows and every access goes through `slot`. States keep node rows.
EXPECTED = """\
loop program Two
buffer param:Emb: float[param][6]
buffer param:W: float[param][4]
buffer param_t:W: float[param][4]
buffer param:U: float[param][4]
buffer param_t:U: float[param][4]
buffer state:h: float[nodes][2]
buffer words:word: int[nodes][1]
buffer children: int[nodes][2]
buffer num_children: int[nodes][1]
buffer batch_start: int[batches][1]
buffer batch_len: int[batches][1]
buffer temp:internal_t6: float[batch][2]
for b in 0 .. num_leaf_batches:    # sequential
    for node in batch_start[b] .. batch_start[b] + batch_len[b]:    # parallel nodes
        int slot = node - batch_start[b]
        int token_word = imax(words:word[node], 0)
        phase leaf.0:    # stores state:h
            for j in 0 .. 2:    # parallel units
                state:h[node * 2 + j] = param:Emb[token_word * 2 + j]    # h, line 8
for b in num_leaf_batches .. num_batches:    # sequential
    for node in batch_start[b] .. batch_start[b] + batch_len[b]:    # parallel nodes
        int slot = node - batch_start[b]
        int child0 = children[node * 2]
        int child1 = children[node * 2 + 1]
        phase internal.0:    # stores temp:internal_t6
            for j in 0 .. 2:    # parallel units
                float v0 = sum(k in 0..2: param_t:U[k * 2 + j] * (state:h[child0 * 2 + k] + state:h[child1 * 2 + k]))
                float v1 = tanh(v0)
                temp:internal_t6[slot * 2 + j] = v1    # t6, line 10
        phase internal.1:    # stores state:h
            for j in 0 .. 2:    # parallel units
                float v0 = sum(k in 0..2: param_t:W[k * 2 + j] * temp:internal_t6[slot * 2 + k])
                float v1 = tanh(v0)
                state:h[node * 2 + j] = v1    # h, line 10
"""


def _before() -> L.LoopProgram:
    return stage_before(program_from_source(TWO_PRODUCTS, "two.cx"), "dense_intermediates",
                        OPTIONS)


def test_temporaries_are_indexed_by_slot() -> None:
    before = _before()
    assert before.buffer(BufferRef(Role.TEMP, "internal_t6")).rows is BufferRows.NODES

    after = dense_intermediates(before)

    assert L.format_loops(after) == EXPECTED
    assert after.notes[-1] == ("dense_intermediates", "1 temporaries sized by the largest "
                               "batch instead of the node count")
    L.verify_loops(after)


def test_a_program_without_temporaries_comes_back_unchanged() -> None:
    before = stage_before(small_example("treefc"), "dense_intermediates")
    assert not [b for b in before.buffers if b.ref.role is Role.TEMP]
    assert dense_intermediates(before) is before
    result = dense_intermediates_result(before)
    assert result.ir is before and result.note == "the loop program has no temporaries"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_only_temporaries_change_rows(name: str) -> None:
    before = stage_before(small_example(name), "dense_intermediates",
                          Options().without("fuse_operators"))
    after = dense_intermediates(before)
    L.verify_loops(after)
    for old, new in zip(before.buffers, after.buffers, strict=True):
        assert new.rows is (BufferRows.BATCH if old.ref.role is Role.TEMP else old.rows), new.ref
    loads = [sub for stmt in L.walk_stmts(after.body) for expr in _exprs(stmt)
             for sub in L.walk_exprs(expr) if isinstance(sub, L.Load)]
    for load in loads:
        if load.buffer.role is Role.TEMP:
            assert "node" not in L.format_expr(load.index), L.format_expr(load)


def _exprs(stmt: L.Stmt) -> list[L.Expr]:
    if isinstance(stmt, L.Let):
        return [stmt.value]
    if isinstance(stmt, L.Store):
        return [stmt.index, stmt.value]
    return []

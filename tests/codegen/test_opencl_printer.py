"""The OpenCL printer's pieces on hand-made loop-IR expressions: the writer, comments,
identifiers, numbers, vector loads and broadcasts, and the helpers it declares."""

from __future__ import annotations

import re

from cortexlang.codegen.dialect import buffer_identifiers
from cortexlang.codegen.expressions import Context, c_expr, helper_definition
from cortexlang.codegen.writer import Writer, comment
from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BufferRef, BufferRows, Role

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


P_B, S_H = BufferRef(Role.WEIGHT, "b"), BufferRef(Role.STATE, "h")


def context(buffers: dict[BufferRef, str] | None = None) -> Context:
    return Context(dict(buffers or {}), {"node": "node_t0"}, {})


def test_the_writer_indents_blocks() -> None:
    writer = Writer()
    writer.open("if (x)")
    writer.line("y = 1;")
    writer.close()
    writer.line()
    assert writer.text() == "if (x) {\n    y = 1;\n}\n\n"


def test_a_comment_is_one_line_whatever_its_text() -> None:
    text = comment("a\nb\r\n// c */")
    assert "\n" not in text and text.startswith("// ")


def test_buffer_identifiers_are_unique_valid_c_names() -> None:
    words, transposed = BufferRef(Role.TOKENS, "int"), BufferRef(Role.WEIGHT_T, "W")
    buffers = tuple(L.Buffer(ref, BufferRows.NODES, 1) for ref in (
        BufferRef(Role.WEIGHT, "W"), transposed, BufferRef(Role.STATE, "h"),
        BufferRef(Role.TEMP, "internal_t0"), words, BufferRef(Role.INDEX, "children")))
    names = buffer_identifiers(buffers)
    assert len(set(names.values())) == len(buffers)
    assert all(IDENTIFIER.fullmatch(identifier) for identifier in names.values())
    # Prefixed by role, so that a user's name never meets a C keyword or a local.
    assert names[words] == "w_int" and names[transposed] == "pt_W"


def test_numbers_print_as_floats_and_infinities_as_macros() -> None:
    ctx = context()
    assert c_expr(L.Const(1.0), ctx) == "1.0f"
    assert c_expr(L.Const(2.0, integer=True), ctx) == "2"
    assert c_expr(L.Const(float("-inf")), ctx) == "(-INFINITY)"
    assert c_expr(L.Const(0.5), ctx, lanes=4) == "(float4)(0.5f)"


def test_contiguous_loads_become_vector_loads_and_others_broadcasts() -> None:
    ctx = context({P_B: "p_b", S_H: "s_h"})
    contiguous = L.Load(P_B, L.Var("j"))
    same = L.Load(S_H, L.Var("node"))
    assert c_expr(contiguous, ctx, lanes=8) == "vload8(0, p_b + (j))"
    assert c_expr(same, ctx, lanes=8) == "(float8)(s_h[node_t0])"
    assert c_expr(contiguous, ctx) == "p_b[j]"


def test_sigmoid_records_the_helper_width_it_calls() -> None:
    ctx = context({P_B: "p_b"})
    text = c_expr(L.Call("sigmoid", (L.Load(P_B, L.Var("j")),)), ctx, lanes=4)
    assert text.startswith("cx_sigmoid4(") and ctx.helpers == {("sigmoid", 4)}
    assert helper_definition("sigmoid", 4).startswith("float4 cx_sigmoid4(float4 x)")
    assert helper_definition("sigmoid", 1).startswith("float cx_sigmoid(float x)")

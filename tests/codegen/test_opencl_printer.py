"""The OpenCL printer's pieces on hand-made loop-IR expressions: the writer, comments,
identifiers, numbers, vector loads and broadcasts, and the helpers it declares."""

from __future__ import annotations

import re

from cortexlang.codegen.opencl import (
    Writer,
    _Context,
    _sigmoid_helper,
    buffer_identifiers,
    c_expr,
    comment,
)
from cortexlang.ir import loops as L

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def context(**buffers: str) -> _Context:
    return _Context(dict(buffers), {"node": "node_t0"}, {})


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
    buffers = tuple(L.Buffer(name, role, "nodes", 1) for name, role in (
        ("param:W", "param"), ("param_t:W", "param_t"), ("state:h", "state"),
        ("temp:internal_t0", "temp"), ("words:int", "index"), ("children", "index")))
    names = buffer_identifiers(buffers)
    assert len(set(names.values())) == len(buffers)
    assert all(IDENTIFIER.fullmatch(identifier) for identifier in names.values())
    # Prefixed by role, so that a user's name never meets a C keyword or a local.
    assert names["words:int"] == "w_int" and names["param_t:W"] == "pt_W"


def test_numbers_print_as_floats_and_infinities_as_macros() -> None:
    ctx = context()
    assert c_expr(L.Const(1.0), ctx) == "1.0f"
    assert c_expr(L.Const(2.0, integer=True), ctx) == "2"
    assert c_expr(L.Const(float("-inf")), ctx) == "(-INFINITY)"
    assert c_expr(L.Const(0.5), ctx, lanes=4) == "(float4)(0.5f)"


def test_contiguous_loads_become_vector_loads_and_others_broadcasts() -> None:
    ctx = context(**{"param:b": "p_b", "state:h": "s_h"})
    contiguous = L.Load("param:b", L.Var("j"))
    same = L.Load("state:h", L.Var("node"))
    assert c_expr(contiguous, ctx, lanes=8) == "vload8(0, p_b + (j))"
    assert c_expr(same, ctx, lanes=8) == "(float8)(s_h[node_t0])"
    assert c_expr(contiguous, ctx) == "p_b[j]"


def test_sigmoid_records_the_helper_width_it_calls() -> None:
    ctx = context(**{"param:b": "p_b"})
    text = c_expr(L.Call("sigmoid", (L.Load("param:b", L.Var("j")),)), ctx, lanes=4)
    assert text.startswith("cx_sigmoid4(") and ctx.helpers == {4}
    assert _sigmoid_helper(4).startswith("float4 cx_sigmoid4(float4 x)")
    assert _sigmoid_helper(1).startswith("float cx_sigmoid(float x)")

"""Checker behaviour beyond the golden corpus: what is legal, and one error per mistake."""

from __future__ import annotations

import pytest

from cortexlang.errors import CortexError, UsageError
from cortexlang.frontend.check import check_source
from cortexlang.ir import checked as ir

HEADER = """model M
sizes H = 4, V = 10, K = 3
structure {structure}
param Emb[V, H], W[H, H], b[H], W2[2H, H]
input word: token
state h[H]
"""
LEAF = "leaf n:\n    h = Emb[word(n)]\n"
OUTPUT = "output h[root]\n"


def program(internal: str, *, leaf: str = LEAF, structure: str = "binary_tree",
            output: str = OUTPUT) -> str:
    return HEADER.format(structure=structure) + leaf + "internal n:\n" + internal + output


def accepted(source: str, overrides: dict[str, int] | None = None) -> ir.CheckedProgram:
    return check_source(source, "t.cx", overrides)


def rejected(source: str, overrides: dict[str, object] | None = None
             ) -> list[tuple[str, int | None]]:
    with pytest.raises(CortexError) as caught:
        check_source(source, "t.cx", overrides)  # type: ignore[arg-type]
    return [(d.code, d.span.line if d.span else None) for d in caught.value.diagnostics]


# Structural conditions are legal (P1 allows them) ---------------------------------------------

@pytest.mark.parametrize("guard", ["isleaf(n)", "num_children(n) == 0", "0 == num_children(n)",
                                   "num_children(n) < 1"])
def test_a_leaf_guard_makes_words_readable_without_a_leaf_rule(guard: str) -> None:
    checked = accepted(program(
        f"    h = (W @ Emb[word(n)] if {guard} else zeros(H)) + h[left(n)]\n", leaf=""))
    assert not checked.leaf_explicit
    assert checked.leaf.statements == checked.internal.statements


def test_the_else_of_a_non_leaf_guard_is_a_leaf() -> None:
    accepted(program("    h = h[left(n)] if num_children(n) > 0 else Emb[word(n)]\n", leaf=""))


def test_a_guard_does_not_leak_into_the_other_branch() -> None:
    assert rejected(program("    h = Emb[word(n)] if isleaf(n) else Emb[word(n)]\n",
                            leaf="")) == [("E0407", 8)]


def test_a_comparison_written_backwards_is_flipped() -> None:
    checked = accepted(program("    h = h[left(n)] if 2 > num_children(n) else b\n"))
    select = checked.internal.statements[0].value
    assert isinstance(select, ir.Select)
    assert select.condition == ir.NumChildrenCompare("<", 2)


def test_binary_tree_accepts_its_own_arity() -> None:
    checked = accepted(program("    h = h[left(n)]\n", structure="binary_tree(max_children=2)"))
    assert checked.structure == ir.StructureInfo("binary_tree", 2)


def test_tree_arity_comes_from_a_size_and_its_override() -> None:
    source = program("    h = h[child(n, 4)]\n", structure="tree(max_children=K)")
    assert rejected(source) == [("E0402", 10)]
    assert accepted(source, {"K": 5}).structure == ir.StructureInfo("tree", 5)


# One mistake, one diagnostic ------------------------------------------------------------------

def test_a_failed_split_does_not_cascade() -> None:
    source = program("    a, c = split(W2 @ h[left(n)], 3)\n    h = a + c\n")
    assert rejected(source) == [("E0306", 10)]


def test_a_broken_parameter_is_reported_once() -> None:
    source = program("    h = W @ h[left(n)] + W @ b\n").replace("W[H, H]", "W[H, Q]")
    assert rejected(source) == [("E0201", 4)]


def test_a_broken_state_is_reported_once() -> None:
    source = program("    h = h[left(n)]\n").replace("state h[H]", "state h[H, H, H]")
    assert rejected(source) == [("E0307", 6)]


def test_a_node_function_problem_is_not_also_a_kind_error() -> None:
    assert rejected(program("    h = tanh(parent(n))\n")) == [("E0404", 10)]


def test_reading_another_output_names_the_problem() -> None:
    source = program("    h = h[left(n)]\n") + "output p[root] = h\noutput q[root] = p + h\n"
    with pytest.raises(CortexError) as caught:
        check_source(source, "t.cx")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0201" and "output" in diagnostic.hint


def test_the_leaf_rule_is_checked_when_the_internal_rule_is_missing() -> None:
    source = HEADER.format(structure="binary_tree") + "leaf n:\n    h = nope\n" + OUTPUT
    assert rejected(source) == [("E0206", 1), ("E0201", 8)]


# Other rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    ("    h = h[left(n)] + num_children(n) * b\n", []),
    ("    h = mean(h[k] for k in children(n)) + max(h[k] for k in children(n))\n", []),
    ("    h = h[left(n)][0:H] + concat(b, b)[H:]\n", []),
    ("    h = W @ h[left(n)] / 2 - -b\n", []),
    ("    h = sum(h[k] for k in children(m))\n", [("E0406", 10)]),
    ("    h = sum(h[k] for W in children(n))\n", [("E0202", 10)]),
    ("    h = b[left(n)]\n", [("E0304", 10)]),
    ("    h = b % 2\n", [("E0304", 10)]),
    ("    h = Emb[word(n) % 0] if isleaf(n) else b\n", [("E0302", 10)]),
    ("    h = h[isleaf(n)]\n", [("E0304", 10)]),
    ("    h = h[children(n)]\n", [("E0304", 10)]),
    ("    h = isleaf(n, n) * b\n", [("E0307", 10)]),
    ("    h = h[left(n)] if isleaf(n, n) else b\n", [("E0302", 10)]),
    ("    h = h[child(n)]\n", [("E0302", 10)]),
    ("    h = concat(b)\n", [("E0302", 10)]),
    ("    h = zeros()\n", [("E0302", 10)]),
    ("    h = b * word(n)\n", [("E0304", 10)]),
    ("    h = b * word\n", [("E0304", 10)]),
    ("    h = sum(b)\n", [("E0406", 10)]),
    ("    h = b[0:H][H:]\n", [("E0305", 10)]),
    ("    h = tanh\n", [("E0201", 10)]),
    ("    h = b\n    W = b\n", [("E0202", 11)]),
    ("    h = b\n    tanh = b\n", [("E0202", 11)]),
    ("    h = b\n    n = b\n", [("E0202", 11)]),
    ("    h = H * b + 2H\n", []),
    ("    h = b\n", []),
])
def test_internal_rule(body: str, expected: list[tuple[str, int]]) -> None:
    source = program(body)
    if expected:
        assert rejected(source) == expected
    else:
        accepted(source)


def test_hidden_split_temporaries_never_collide_with_user_names() -> None:
    checked = accepted(program("    a__c__whole = b\n    a, c = split(W2 @ h[left(n)], 2)\n"
                               "    h = a + c + a__c__whole\n"))
    targets = [statement.target for statement in checked.internal.statements]
    assert len(targets) == len(set(targets))


@pytest.mark.parametrize(("declarations", "expected"), [
    ("structure binary_tree\nstructure tree(max_children=2)", [("E0202", 4)]),
    ("structure forest", [("E0210", 3)]),
    ("structure tree(arity=3)", [("E0210", 3)]),
    ("structure tree(max_children=0)", [("E0210", 3)]),
    ("structure tree(max_children=2, max_children=3)", [("E0202", 3)]),
    ("structure sequence(max_children=2)", [("E0210", 3)]),
])
def test_structure_declarations(declarations: str, expected: list[tuple[str, int]]) -> None:
    source = program("    h = b\n").replace("structure binary_tree", declarations)
    assert rejected(source) == expected


@pytest.mark.parametrize(("sizes", "expected"), [
    ("sizes H = 4, V = 10, K = 3, H = 5", [("E0202", 2)]),
    ("sizes H = 4, V = 10, K = 3 / 2", [("E0302", 2)]),
    ("sizes H = 4, V = 10, K = 3 / (H - H)", [("E0302", 2)]),
    ("sizes H = 4, V = 10, K = 65536 * 65536", [("E0302", 2)]),
    ("sizes H = 4, V = 10, K = W", [("E0201", 2)]),  # parameters are declared later
    ("sizes H = 4, V = 10, K = -3", [("E0212", 2)]),
    ("sizes H = 4, V = 10, K = 0 + 0", [("E0212", 2)]),
    ("sizes H = 4, V = 10, K = 7 % 4 - 1 + (2 - 3) * -1", 3),
    ("sizes H = 4, V = 10, K = H / 2 * 3H", 24),
])
def test_size_declarations(sizes: str, expected: list[tuple[str, int]] | int) -> None:
    source = program("    h = b\n").replace("sizes H = 4, V = 10, K = 3", sizes)
    if isinstance(expected, int):
        assert accepted(source).size("K") == expected
    else:
        assert rejected(source) == expected


@pytest.mark.parametrize(("init", "ok"), [
    ("zeros", True), ("ones", True), ("constant(0.5)", True), ("uniform(0.2)", True),
    ("uniform(-1, 1)", True), ("normal(0, 0.1)", True), ("normal(0, -1)", False),
    ("uniform(1, -1)", False), ("constant", False), ("0.5", False), ("uniform(H)", False),
])
def test_initialisers(init: str, ok: bool) -> None:
    source = program("    h = b\n").replace("b[H],", f"b[H] ~ {init},")
    if ok:
        accepted(source)
    else:
        assert rejected(source) == [("E0211", 4)]


def test_outputs() -> None:
    base = program("    h = b\n", output="")
    accepted(base + "output h[root], h2[all] = softmax(W @ h + b)\n")
    assert rejected(base + "output h[root]\noutput h[all]\n") == [("E0202", 12)]
    assert rejected(base + "output W[root] = h\n") == [("E0202", 11)]
    assert rejected(base + "output p[root] = num_children(n) * h\n") == [("E0408", 11)]
    assert rejected(base + "output p[root] = Emb[word(n)]\n") == [("E0407", 11)]


def test_inputs_of_a_dag_exist_at_every_node() -> None:
    source = """model Grid
sizes H = 4, X = 3
structure dag
param U[H, X], W[H, H]
input x[X]
state h[H]
internal n:
    h = tanh(U @ x(n) + W @ (h[child(n, 0)] + h[child(n, 1)]))
output h[root], y[root] = U @ x(n)
"""
    checked = accepted(source)
    assert checked.structure == ir.StructureInfo("dag", 2)
    assert not checked.structure.words_only_at_leaves


# Size overrides (-D) --------------------------------------------------------------------------

def test_overrides_replace_sizes_before_later_sizes_use_them() -> None:
    source = program("    h = b\n").replace("K = 3", "K = 3H")
    assert dict(accepted(source, {"H": 8}).sizes) == {"H": 8, "V": 10, "K": 24}


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"Q": 4}, ("E0213", UsageError)),
    ({"H": "8"}, ("E0214", UsageError)),
    ({"H": True}, ("E0214", UsageError)),
    ({"H": 2**40}, ("E0212", CortexError)),
    ({"H": -1}, ("E0212", CortexError)),
])
def test_bad_overrides(overrides: dict[str, object], expected: tuple[str, type]) -> None:
    code, kind = expected
    with pytest.raises(CortexError) as caught:
        check_source(program("    h = b\n"), "t.cx", overrides)  # type: ignore[arg-type]
    assert caught.value.codes == [code]
    assert type(caught.value) is kind


# Odd names are accepted and kept verbatim (the code generator sanitises them) ---------------

def test_names_are_kept_verbatim() -> None:
    source = program("    __init__ = b\n    h = __init__\n").replace("W2[2H, H]", "e5[H], _[H]")
    checked = accepted(source)
    assert [p.name for p in checked.params][-2:] == ["e5", "_"]

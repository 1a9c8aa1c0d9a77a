"""The executable and the runtime's device-free parts: what is bound, uploaded, checked and
launched, computed without OpenCL."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cortexlang.errors import EnvironmentProblem, InputError, InternalError
from cortexlang.frontend.check import check_source, load_program
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.inputs.weights import init_weights
from cortexlang.ir import executable as X
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.pipeline import Options, Verify, run_pipeline
from cortexlang.runtime.linearize import linearize
from cortexlang.runtime.plan import launch_plan, node_limit, run_layout
from cortexlang.runtime.tokens import check_tokens
from cortexlang.runtime.weights import (
    check_allocations,
    checked_weights,
    in_layout,
    weight_arrays,
    weight_buffers,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CPU = DeviceLimits(compute_units=2)
GPU = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=4)

# Leaves read a wide embedding only through a table: Emb [V, E] is larger than any buffer a
# kernel reads (the tables are [V, H], W is [H, E]).
WIDE = """
model Wide
sizes H = 4, E = 64, V = 50
structure binary_tree
param Emb[V, E]
param W[H, E]
param U[H, 2H]
input word: token
state h[H]

leaf n:
    h = tanh(W @ Emb[word(n)])

internal n:
    h = tanh(U @ concat(h[left(n)], h[right(n)]))

output h[root]
"""


def _executable(program, options=None, limits=CPU) -> X.Executable:  # type: ignore[no-untyped-def]
    return run_pipeline(program, options, limits, instruments=[Verify()]).executable


def _treelstm():  # type: ignore[no-untyped-def]
    return load_program(str(EXAMPLES / "treelstm.cx"), {"H": 8, "V": 40})


def test_tabulated_leaves_bind_and_upload_no_embedding() -> None:
    program = _treelstm()
    weights = init_weights(program.params, 1)
    tabulated = _executable(program)
    bound = {binding.parameter for binding in tabulated.bindings}
    assert "Emb" not in bound and "W_leaf" not in bound
    arrays = weight_arrays(tabulated, checked_weights(tabulated, weights))
    assert {ref.role for ref in arrays} == {X.Role.WEIGHT, X.Role.WEIGHT_T, X.Role.TABLE}
    assert not any(ref.name == "Emb" for ref in arrays)
    # Exactly the buffers a kernel reads are filled, each at its declared size.
    read = {ref for kernel in tabulated.kernels for ref in kernel.args}
    assert set(arrays) == {ref for ref in read if ref.role in (
        X.Role.WEIGHT, X.Role.WEIGHT_T, X.Role.UNIFORM, X.Role.TABLE)}
    for ref, array in arrays.items():
        assert array.nbytes == tabulated.buffer(ref).fixed_bytes, ref
    plain = _executable(program, Options().without("tabulate_leaves"))
    plain_arrays = weight_arrays(plain, checked_weights(plain, weights))
    assert plain_arrays[X.BufferRef(X.Role.WEIGHT, "Emb")].nbytes == 4 * 40 * 8


def test_the_allocation_limit_applies_only_to_buffers_a_kernel_reads() -> None:
    program = check_source(WIDE, "wide.cx")
    embedding = 4 * 50 * 64
    tabulated = _executable(program)
    largest = max(buffer.nbytes for buffer in weight_buffers(tabulated))
    assert largest < embedding
    check_allocations(weight_buffers(tabulated), largest, "test device")
    with pytest.raises(EnvironmentProblem) as raised:
        check_allocations(weight_buffers(tabulated), largest - 4, "test device")
    assert raised.value.codes == ["E0604"]
    plain = _executable(program, Options().without("tabulate_leaves"))
    with pytest.raises(EnvironmentProblem) as raised:
        check_allocations(weight_buffers(plain), embedding - 4, "test device")
    assert raised.value.codes == ["E0604"] and "`Emb`" in str(raised.value)


def test_layouts_place_each_element_where_the_kernels_read_it() -> None:
    rows, columns, block = 6, 8, 4        # a weight [columns, rows]: W[c, k]
    value = np.arange(columns * rows, dtype=np.float32).reshape(columns, rows)
    plain = in_layout(value, X.Layout(X.LayoutKind.PLAIN))
    transposed = in_layout(value, X.Layout(X.LayoutKind.TRANSPOSED))
    blocked = in_layout(value, X.Layout(X.LayoutKind.BLOCKED, block, columns))
    for c in range(columns):
        for k in range(rows):
            assert plain[c * rows + k] == value[c, k]
            assert transposed[k * columns + c] == value[c, k]
            assert blocked[((c // block) * rows + k) * block + c % block] == value[c, k]


def test_bad_weights_are_the_interpreters_errors() -> None:
    executable = _executable(_treelstm())
    weights = init_weights(_treelstm().params, 1)
    for broken, code in (({k: v for k, v in weights.items() if k != "U"}, "E0530"),
                         ({**weights, "U": weights["U"].astype(np.int32)}, "E0535"),
                         ({**weights, "U": weights["U"][:-1]}, "E0532")):
        with pytest.raises(InputError) as raised:
            checked_weights(executable, broken)
        assert raised.value.codes == [code]


def _trees(count: int = 6) -> list[Structure]:
    return generators.sst_like_trees(count, rng=2, vocab_size=40)


def test_the_indices_upload_leads_with_the_run_header_then_offsets() -> None:
    executable = _executable(_treelstm())
    linearized = linearize(_trees(), max_children=2)
    zero_row = linearized.num_nodes + 5
    layout = run_layout(executable, linearized, zero_row)
    header = len(executable.run_header)
    for position, scalar in enumerate(executable.run_header):
        assert layout.indices[position] == layout.scalars[scalar]
    assert layout.scalars[X.RunScalar.ZERO_ROW] == zero_row
    offsets = layout.indices[header:header + len(executable.index_arrays)]
    children = executable.index_arrays.index(X.BufferRef(X.Role.INDEX, "children"))
    start = int(offsets[children])
    stored = layout.indices[start:start + linearized.children.size].reshape(-1, 2)
    np.testing.assert_array_equal(stored, np.where(linearized.children < 0, zero_row,
                                                   linearized.children))
    words = executable.index_arrays.index(X.BufferRef(X.Role.TOKENS, "word"))
    start = int(offsets[words])
    np.testing.assert_array_equal(layout.indices[start:start + linearized.num_nodes],
                                  linearized.words)


@pytest.mark.parametrize("limits, options", [
    (CPU, Options()), (CPU, Options().without("fuse_levels")), (GPU, Options())])
def test_launch_plans_cover_every_nonempty_batch_once(limits: DeviceLimits,
                                                      options: Options) -> None:
    executable = _executable(_treelstm(), options, limits)
    linearized = linearize(_trees(), max_children=2)
    layout = run_layout(executable, linearized, linearized.num_nodes)
    plan = launch_plan(executable, linearized.batch_len, layout.num_leaf_batches,
                       len(layout.head_nodes), layout.first_fused)
    if executable.strategy is X.Strategy.COOPERATIVE:
        assert [launch.batch for launch in plan] == [-1]
        assert plan[0].nodes == linearized.num_nodes + len(layout.head_nodes)
        return
    per_batch = [launch for launch in plan if launch.batch >= 0]
    covered = sorted({launch.batch for launch in per_batch})
    persistent = [launch for launch in plan if launch.batch < 0]
    assert covered == list(range(layout.first_fused if persistent else
                                 linearized.num_batches))
    assert sum(int(linearized.batch_len[batch]) for batch in covered) + \
        sum(launch.nodes for launch in persistent) - (len(layout.head_nodes) if persistent
                                                      else 0) == linearized.num_nodes


def test_the_node_limit_follows_the_largest_node_buffer() -> None:
    executable = _executable(_treelstm())
    row = 4 * 8                             # a state of H = 8 floats
    assert node_limit(executable, 1000 * row, 0) == 999
    assert node_limit(executable, 0, 0) > 1 << 20


def test_tokens_are_checked_against_the_executables_reads() -> None:
    executable = _executable(_treelstm())
    trees = _trees(3)
    check_tokens(executable, linearize(trees, max_children=2))
    leaf = next(node for node, row in enumerate(trees[1].children) if not len(row) or
                all(child < 0 for child in row))
    for word, code in ((-1, "E0554"), (40, "E0555")):
        words = trees[1].words.copy()
        words[leaf] = word
        broken = [trees[0], replace(trees[1], words=words), trees[2]]
        with pytest.raises(InputError) as raised:
            check_tokens(executable, linearize(broken, max_children=2))
        assert raised.value.codes == [code]
        assert f"structure 1, node {leaf}" in str(raised.value)


def test_the_verifier_rejects_a_kernel_argument_nobody_declared() -> None:
    executable = _executable(_treelstm())
    kernel = executable.kernels[0]
    ghost = replace(kernel, args=kernel.args + (X.BufferRef(X.Role.WEIGHT, "Ghost"),))
    with pytest.raises(InternalError):
        X.verify_executable(replace(executable, kernels=(ghost,) + executable.kernels[1:]))
    text = X.format_executable(executable)
    assert text == X.format_executable(_executable(_treelstm()))
    assert "bind weight_t U <- parameter U" in text and "bind weight Emb" not in text


def test_the_runtime_imports_no_compiler_stage() -> None:
    code = ("import sys\nimport cortexlang.runtime.execute\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('cortexlang'))))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout.split()
    forbidden = ("cortexlang.passes", "cortexlang.ir.checked", "cortexlang.ir.recursive",
                 "cortexlang.ir.loops", "cortexlang.ir.kernels", "cortexlang.codegen",
                 "cortexlang.frontend", "cortexlang.interp")
    assert not [name for name in loaded if name.startswith(forbidden)], loaded

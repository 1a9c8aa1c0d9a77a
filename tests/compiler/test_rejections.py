"""What the compiler cannot (or must not) run is rejected with a clear error, never a wrong
answer or a crash: programs at check time, inputs and weights when the model runs (with the
interpreter's error code for the same mistake), and bugs in a pass as InternalErrors that
name the step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from compiler_support import (
    compile_program,
    program_from_source,
    random_batch,
    small_example,
    weights_for,
)
from differential import run_compiled

from cortexlang.errors import CortexError, EnvironmentProblem, InputError, InternalError
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.interp.interpreter import interpret
from cortexlang.ir.checked import CheckedProgram
from cortexlang.ir.recursive import RecursiveProgram
from cortexlang.passes import pipeline
from cortexlang.passes.pipeline import Options, Verify, run_pipeline
from cortexlang.passes.result import PassResult
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import CompiledModel, device_limits

# -- programs the checker must reject (they break P1-P3 or cannot be lowered) ----------------

TREE_HEADER = """\
model Bad
sizes H = 4, V = 8
structure binary_tree
param Emb[V, H], W[H, H], M[H, H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
"""

REJECTED = {
    # softmax is a vector operation: over which axis of a matrix?
    "softmax of a matrix": ("    h = softmax(M @ M) @ h[left(n)]\n", "E0307", 10),
    # P1: the batches must be known before any tensor work.
    "condition on a value": ("    h = h[left(n)] if h[right(n)] else h[right(n)]\n",
                             "E0403", 10),
    # P2: work flows from the leaves to the root.
    "parent read": ("    h = h[parent(n)]\n", "E0404", 10),
    # P3: siblings are independent.
    "sibling read": ("    h = h[sibling(n)]\n", "E0405", 10),
    # Only direct children: the linearizer gives each node its children, not theirs.
    "grandchild read": ("    h = h[left(left(n))]\n", "E0406", 10),
    # Child positions are compile-time constants (the loop IR indexes children[node, i]).
    "child past the arity": ("    h = h[child(n, 2)]\n", "E0402", 10),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_programs_the_compiler_cannot_lower_are_rejected_by_the_checker(case: str) -> None:
    body, code, line = REJECTED[case]
    with pytest.raises(CortexError) as caught:
        program_from_source(TREE_HEADER + body + "output h[root]\n", "bad.cx")
    assert code in caught.value.codes
    diagnostic = next(d for d in caught.value.diagnostics if d.code == code)
    assert diagnostic.span is not None and diagnostic.span.line == line


# -- bugs in a pass are internal errors naming the step ---------------------------------------


def _raise(*_args: object, **_keywords: object) -> None:
    raise ZeroDivisionError("boom")


@pytest.mark.parametrize("step", ["specialize_leaves", "fold_constants", "refactor_recursion",
                                  "hoist_invariants", "tabulate_leaves", "lower_loops",
                                  "dense_intermediates", "plan_kernels"])
def test_a_pass_that_raises_is_an_internal_error_naming_it(
        step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pass that may not apply is listed by its `*_result` form (the IR and the reason).
    monkeypatch.setattr(pipeline, _listed(step), _raise)
    with pytest.raises(InternalError) as caught:
        run_pipeline(small_example("treelstm"), Options())
    assert caught.value.step == step
    assert "ZeroDivisionError: boom" in caught.value.message
    assert f"internal error in {step}" in str(caught.value)
    assert "bug in cortexlang" in str(caught.value)


def test_a_failing_code_generator_is_an_internal_error_naming_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cortexlang.codegen.opencl as opencl

    monkeypatch.setattr(opencl, "emit_opencl", _raise)
    with pytest.raises(InternalError) as caught:
        run_pipeline(small_example("treefc"), Options())
    assert caught.value.step == "emit_opencl"


def _listed(step: str) -> str:
    """The name under which the pipeline module holds the function of `step`."""
    return f"{step}_result" if hasattr(pipeline, f"{step}_result") else step


def _drop_first_leaf_op(program: RecursiveProgram) -> PassResult[RecursiveProgram]:
    """A broken fold: the leaf rule loses an operator that others read."""
    from cortexlang.passes.fold_constants import fold_constants

    folded = fold_constants(program)
    return PassResult(replace(folded, leaf=replace(folded.leaf, ops=folded.leaf.ops[1:])),
                      "dropped the leaf rule's first operator")


def test_a_pass_that_breaks_the_ir_is_caught_by_the_verifier(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "fold_constants_result", _drop_first_leaf_op)
    with pytest.raises(InternalError) as caught:
        run_pipeline(small_example("treelstm"), Options(), instruments=[Verify()])
    assert caught.value.step == "verify_recursive"
    assert "bug in cortexlang" in str(caught.value)


def test_a_verifier_failure_names_the_step_that_broke_the_ir(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "fold_constants_result", _drop_first_leaf_op)
    with pytest.raises(InternalError) as caught:
        run_pipeline(small_example("treelstm"), Options(), instruments=[Verify()])
    assert "fold_constants" in str(caught.value)


# -- inputs and weights the compiled model cannot run on -------------------------------------


def _tree(program: CheckedProgram) -> Structure:
    return generators.perfect_tree(2, rng=1, vocab_size=dict(program.sizes)["V"])


def _with_words(structure: Structure, node: int, word: int) -> Structure:
    words = structure.words.copy()
    words[node] = word
    return replace(structure, words=words)


def _error_of(action: Callable[[], object]) -> BaseException | None:
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the test compares what was raised
        return error
    return None


def _compiled_error(device: Device, program: CheckedProgram, structures: list[Structure],
                    weights: dict[str, np.ndarray], options: Options | None = None,
                    ) -> BaseException | None:
    result = compile_program(program, options or Options(), device_limits(device))

    def run() -> None:
        model = CompiledModel(result, device)
        model.bind_weights(weights)
        model.run(structures)
    return _error_of(run)


Case = tuple[list[Structure], dict[str, np.ndarray]]


def _codes(error: BaseException | None) -> list[str]:
    return list(error.codes) if isinstance(error, CortexError) else [repr(error)]


def _case_vocabulary(program: CheckedProgram) -> Case:
    tree = _tree(program)
    return [tree, _with_words(tree, 1, dict(program.sizes)["V"])], weights_for(program)


def _case_leaf_without_word(program: CheckedProgram) -> Case:
    return [_with_words(_tree(program), 0, -1)], weights_for(program)


def _case_missing_weight(program: CheckedProgram) -> Case:
    weights = weights_for(program)
    del weights["b"]
    return [_tree(program)], weights


def _case_weight_shape(program: CheckedProgram) -> Case:
    weights = weights_for(program)
    weights["b"] = np.zeros(weights["b"].shape[0] + 1, dtype=np.float32)
    return [_tree(program)], weights


def _case_weight_of_integers(program: CheckedProgram) -> Case:
    weights = weights_for(program)
    weights["b"] = weights["b"].astype(np.int32)
    return [_tree(program)], weights


def _case_too_many_children(program: CheckedProgram) -> Case:
    wide = generators.random_nary_tree(3, rng=4, leaves=8, vocab_size=8)
    return [wide], weights_for(program)


def _case_cycle(program: CheckedProgram) -> Case:
    cycle = Structure(children=np.array([[1, -1], [0, -1]], dtype=np.int32),
                      words=np.array([1, 2], dtype=np.int32), root=1)
    return [cycle], weights_for(program)


def _case_child_outside(program: CheckedProgram) -> Case:
    outside = Structure(children=np.array([[-1, -1], [0, 5]], dtype=np.int32),
                        words=np.array([1, -1], dtype=np.int32), root=1)
    return [outside], weights_for(program)


CASES = {
    "word id outside the vocabulary": _case_vocabulary,
    "leaf without a word": _case_leaf_without_word,
    "missing weight": _case_missing_weight,
    "weight of the wrong shape": _case_weight_shape,
    "weight that is not floating point": _case_weight_of_integers,
    "node with too many children": _case_too_many_children,
    "cycle": _case_cycle,
    "child id outside the structure": _case_child_outside,
}


@pytest.mark.opencl
@pytest.mark.parametrize("case", list(CASES))
def test_the_compiled_model_rejects_what_the_interpreter_rejects(opencl_device: Device,
                                                                  case: str) -> None:
    """Same mistake, same InputError code; where the interpreter names the structure and
    node, so must the compiled model."""
    program = small_example("treefc")
    structures, weights = CASES[case](program)
    expected = _error_of(lambda: interpret(program, structures, weights))
    assert isinstance(expected, InputError), expected
    actual = _compiled_error(opencl_device, program, structures, weights)
    assert isinstance(actual, InputError), f"compiled: {actual!r}"
    assert _codes(actual) == _codes(expected), (str(actual), str(expected))
    if "structure 1, node 1" in str(expected):
        assert "structure 1" in str(actual) and "node 1" in str(actual), str(actual)
    if isinstance(actual, CortexError) and "E0530" in actual.codes:
        assert "`b`" in str(actual) and "hint:" in str(actual), str(actual)


@pytest.mark.opencl
def test_tokens_are_checked_where_the_interpreter_reads_them(opencl_device: Device) -> None:
    """A node whose rule reads its token must have one (E0554) inside the table (E0555),
    whatever the options; the error names the node the interpreter names. A token where no
    rule reads it is ignored, as the interpreter ignores it."""
    for name in ("treelstm", "childsum_treelstm", "lstm_sequence"):
        program = small_example(name)
        batch = random_batch(program, 3, seed=5)
        has_word = np.flatnonzero(batch[1].words >= 0)
        without = np.flatnonzero(batch[1].words < 0)
        cases = [[batch[0], _with_words(batch[1], int(has_word[-1]), -1), batch[2]],
                 [batch[0], _with_words(batch[1], int(has_word[0]), 10**6), batch[2]]]
        if without.size:
            cases.append([batch[0], _with_words(batch[1], int(without[0]), 1), batch[2]])
        weights = weights_for(program)
        for options in (Options(), Options.level(0), Options().without("tabulate_leaves")):
            for structures in cases:
                expected = _error_of(partial(interpret, program, structures, weights))
                actual = _compiled_error(opencl_device, program, structures, weights, options)
                assert _codes(actual) == _codes(expected), (name, options, actual)
                if expected is not None:
                    first_line = str(expected).splitlines()[0]
                    assert str(actual).splitlines()[0] == first_line, (name, options, actual)


@pytest.mark.opencl
def test_a_word_outside_the_vocabulary_is_an_input_error_for_every_option_set(
        opencl_device: Device) -> None:
    """Whatever reads the embedding (the leaf rule, a leaf table), the run stops."""
    for name in ("treelstm", "childsum_treelstm", "lstm_sequence"):
        program = small_example(name)
        size = dict(program.sizes)["V"]
        bad = random_batch(program, 3, seed=5)
        leaf = int(np.flatnonzero(bad[1].words >= 0)[0])
        bad[1] = _with_words(bad[1], leaf, size + 7)
        for options in (Options(), Options.level(0), Options().without("tabulate_leaves")):
            error = _compiled_error(opencl_device, program, bad, weights_for(program),
                                    options)
            assert isinstance(error, InputError), (name, options, error)


@pytest.mark.opencl
def test_vector_inputs_are_checked(opencl_device: Device) -> None:
    program = small_example("dagrnn")
    width = program.inputs[0].shape[0]
    without = replace(generators.grid(2, 2, width, rng=1), features=None)
    narrow = generators.grid(2, 2, width + 1, rng=1)
    for structures in ([without], [narrow]):
        expected = _error_of(partial(interpret, program, structures, weights_for(program)))
        actual = _compiled_error(opencl_device, program, structures, weights_for(program))
        assert isinstance(actual, InputError) and _codes(actual) == _codes(expected)


@pytest.mark.opencl
def test_an_empty_batch_gives_empty_outputs(opencl_device: Device) -> None:
    program = small_example("sentiment")
    result = compile_program(program, Options(), device_limits(opencl_device))
    outputs = run_compiled(opencl_device, result, program, [])
    assert outputs.num_structures == 0
    for name, values in list(outputs.states.items()) + list(outputs.outputs.items()):
        assert values.shape[0] == 0, name


@pytest.mark.opencl
def test_runs_split_into_chunks_agree_with_one_run(opencl_device: Device,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs larger than the device holds run in chunks of whole structures."""
    from compiler_support import assert_close

    program = small_example("sentiment")
    structures = random_batch(program, 12, seed=8)
    reference = interpret(program, structures, weights_for(program))
    result = compile_program(program, Options(), device_limits(opencl_device))
    largest = max(structure.num_nodes for structure in structures)
    monkeypatch.setattr(CompiledModel, "max_nodes", lambda self: largest + 3)
    chunked = run_compiled(opencl_device, result, program, structures)
    assert_close("sentiment", "chunked run", chunked, reference)
    monkeypatch.setattr(CompiledModel, "max_nodes", lambda self: largest - 1)
    error = _error_of(lambda: run_compiled(opencl_device, result, program, structures))
    assert isinstance(error, InputError) and error.codes == ["E0557"], error


@pytest.mark.opencl
def test_a_parameter_larger_than_the_device_allows_is_a_clear_error(
        opencl_device: Device) -> None:
    limit = opencl_device.info.max_mem_alloc_size
    if not limit or limit > 1 << 33:
        pytest.skip("the device allows allocations too large to test cheaply")
    hidden = int(np.sqrt(limit / 4)) + 64          # W[H, H] is just over the limit
    program = small_example("treefc", H=hidden)
    options = Options().without("refactor_recursion", "tabulate_leaves")
    result = compile_program(program, options, device_limits(opencl_device))
    # np.zeros maps untouched pages: these weights cost no memory until written.
    weights = {param.name: np.zeros(param.shape, dtype=np.float32) for param in program.params}

    def build_and_bind() -> None:
        model = CompiledModel(result, opencl_device)
        model.bind_weights(weights)

    error = _error_of(build_and_bind)
    assert isinstance(error, EnvironmentProblem) and error.codes == ["E0604"], repr(error)
    assert "parameter `W`" in str(error) and str(limit) in str(error), str(error)


def test_the_node_tile_must_be_at_least_one() -> None:
    for tile in (0, -3):
        with pytest.raises(ValueError, match="node_tile"):
            Options(node_tile=tile)
    with pytest.raises(ValueError, match="node_tile"):
        replace(Options(), node_tile=0)
    assert Options(node_tile=1).node_tile == 1


def test_the_node_tile_is_bounded() -> None:
    """The emitted source grows with the tile (a copy of each phase per node): past
    MAX_NODE_TILE it is a ValueError, not megabytes of OpenCL."""
    from cortexlang.passes.pipeline import MAX_NODE_TILE

    assert Options(node_tile=MAX_NODE_TILE).node_tile == MAX_NODE_TILE
    for tile in (MAX_NODE_TILE + 1, 1024):
        with pytest.raises(ValueError, match="node_tile"):
            Options(node_tile=tile)

"""Every exercise's check rejects plausible wrong answers, and its message teaches.

For each exercise, a set of answers a student could plausibly write (a missing
non-linearity, an off-by-one, a hard-coded number, the mean for the median, ...) goes to
the check, which must report FAIL with a message that says what is wrong without printing
the right answer; the instructor's solution must PASS the same check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from cortexlang.ir.batches import BatchRange

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
EXAMPLES = TUTORIALS.parent / "examples"


@pytest.fixture(scope="module")
def course() -> Iterator[SimpleNamespace]:
    """The course's modules (checks, solutions), imported with the solutions off."""
    sys.path.insert(0, str(TUTORIALS))
    for name in ("checks", "common", "timing"):
        sys.modules.pop(name, None)
    import checks
    import solutions.lesson1
    import solutions.lesson2
    import solutions.lesson3
    import solutions.lesson4
    import solutions.lesson5
    import solutions.lesson6

    yield SimpleNamespace(checks=checks, s1=solutions.lesson1, s2=solutions.lesson2,
                          s3=solutions.lesson3, s4=solutions.lesson4, s5=solutions.lesson5,
                          s6=solutions.lesson6)
    sys.path.remove(str(TUTORIALS))
    for name in ("checks", "common", "timing"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def data() -> SimpleNamespace:
    from cortexlang.inputs.load import load_structures

    loaded = load_structures(EXAMPLES / "data" / "sample.ptb")
    return SimpleNamespace(trees=tuple(loaded.structures[:6]), vocabulary=len(loaded.vocab))


def rejected(checks: ModuleType, run: Callable[[], bool], *hidden: str) -> str:
    """Run a check that must FAIL; return its message, which must not contain `hidden`."""
    checks.RESULTS.clear()
    assert run() is False
    result = checks.RESULTS[-1]
    assert result.status == "FAIL", result
    assert result.detail and "Traceback" not in result.detail
    for text in hidden:
        assert text not in result.detail, (text, result.detail)
    return result.detail


def accepted(checks: ModuleType, run: Callable[[], bool]) -> None:
    checks.RESULTS.clear()
    assert run() is True, checks.RESULTS[-1]


# -- lesson 1 ---------------------------------------------------------------------------------

def treefc_variant(nonlinearity: Callable[[np.ndarray], np.ndarray], *, bias: bool = True,
                   transpose: bool = False, left_only: bool = False,
                   scale: float = 1.0) -> Callable[..., np.ndarray]:
    def treefc(structure: Any, weights: dict[str, np.ndarray]) -> np.ndarray:
        w = weights["W"].T if transpose else weights["W"]

        def h(node: int) -> np.ndarray:
            left, right = (int(child) for child in structure.children[node][:2])
            if left < 0 and right < 0:
                return weights["Emb"][structure.words[node]]
            children = [left] if left_only else [left, right]
            total = scale * sum(h(child) for child in children if child >= 0)
            return nonlinearity(w @ total + (weights["b"] if bias else 0))
        return h(structure.root)
    return treefc


WRONG_TREEFC = {
    "no tanh": treefc_variant(lambda x: x),
    "a cubic for tanh": treefc_variant(lambda x: x - x ** 3 / 3),
    "relu for tanh": treefc_variant(lambda x: np.maximum(x, 0)),
    "no bias": treefc_variant(np.tanh, bias=False),
    "W transposed": treefc_variant(np.tanh, transpose=True),
    "the left child only": treefc_variant(np.tanh, left_only=True),
    "the children's mean": treefc_variant(np.tanh, scale=0.5),
}


@pytest.fixture(scope="module")
def treefc(data: SimpleNamespace) -> SimpleNamespace:
    from cortexlang.frontend.check import load_program
    from cortexlang.inputs.weights import init_weights

    program = load_program(str(EXAMPLES / "treefc.cx"), {"H": 8, "V": data.vocabulary})
    return SimpleNamespace(program=program, weights=init_weights(program.params, seed=0))


@pytest.mark.parametrize("wrong", sorted(WRONG_TREEFC))
def test_1_1_rejects(course: SimpleNamespace, data: SimpleNamespace, treefc: SimpleNamespace,
                     wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_1_1(
        WRONG_TREEFC[wrong], treefc.program, treefc.weights, data.trees))


def test_1_1_accepts_the_solution(course: SimpleNamespace, data: SimpleNamespace,
                                  treefc: SimpleNamespace) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_1_1(
        course.s1.treefc_by_hand, treefc.program, treefc.weights, data.trees))


TREELSTM_EDITS = {
    "forget gates swapped": ("sigmoid(f_l) * c[left(n)] + sigmoid(f_r) * c[right(n)]",
                             "sigmoid(f_r) * c[left(n)] + sigmoid(f_l) * c[right(n)]"),
    "no output gate sigmoid": ("    h = sigmoid(o) * tanh(c)\n\noutput",
                               "    h = o * tanh(c)\n\noutput"),
    "children concatenated right first": ("concat(h[left(n)], h[right(n)])",
                                          "concat(h[right(n)], h[left(n)])"),
    "no input gate at the leaves": ("    c = sigmoid(i) * tanh(u)\n    h",
                                    "    c = tanh(u)\n    h"),
    "split in the wrong order": ("i, f_l, f_r, o, u = split", "i, o, u, f_l, f_r = split"),
}


@pytest.mark.parametrize("wrong", sorted(TREELSTM_EDITS))
def test_1_2_rejects(course: SimpleNamespace, data: SimpleNamespace, wrong: str) -> None:
    old, new = TREELSTM_EDITS[wrong]
    source = course.s1.treelstm_source()
    assert old in source
    edited = source.replace(old, new)
    rejected(course.checks, lambda: course.checks.check_exercise_1_2(
        lambda: edited, data.trees, data.vocabulary))


@pytest.fixture(scope="module")
def sentiment(data: SimpleNamespace) -> Any:
    from cortexlang.frontend.check import load_program

    return load_program(str(EXAMPLES / "sentiment.cx"), {"H": 8, "V": data.vocabulary})


def _slice(outputs: Any, tree: int, shift: int = 0) -> np.ndarray:
    start = int(outputs.node_offset[tree]) + shift
    stop = int(outputs.node_offset[tree + 1]) + shift
    return np.asarray(outputs.outputs["sentiment"][start:stop])


WRONG_PREDICTIONS: dict[str, Callable[[Any, int], Any]] = {
    "every node class 3": lambda out, tree: np.full(_slice(out, tree).shape[0], 3),
    "argmin": lambda out, tree: _slice(out, tree).argmin(axis=1),
    "offset off by one": lambda out, tree: np.asarray(
        out.outputs["sentiment"])[int(out.node_offset[tree]) + 1:
                                  int(out.node_offset[tree + 1]) + 1].argmax(axis=1)
    if int(out.node_offset[tree + 1]) + 1 <= len(out.outputs["sentiment"])
    else _slice(out, tree).argmin(axis=1),
    "always tree 0": lambda out, tree: _slice(out, 0).argmax(axis=1),
    "every node of every tree": lambda out, tree: np.asarray(
        out.outputs["sentiment"]).argmax(axis=1),
    "the root's class everywhere": lambda out, tree: np.full(
        _slice(out, tree).shape[0], int(_slice(out, tree)[-1].argmax())),
}


@pytest.mark.parametrize("wrong", sorted(WRONG_PREDICTIONS))
def test_1_3_rejects(course: SimpleNamespace, data: SimpleNamespace, sentiment: Any,
                     wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_1_3(
        WRONG_PREDICTIONS[wrong], sentiment, data.trees))


def test_1_3_accepts_the_solution(course: SimpleNamespace, data: SimpleNamespace,
                                  sentiment: Any) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_1_3(
        course.s1.node_predictions, sentiment, data.trees))


# -- lesson 2 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def treelstm_o0(data: SimpleNamespace) -> Any:
    from cortexlang.frontend.check import load_program
    from cortexlang.passes.pipeline import Options, run_pipeline

    program = load_program(str(EXAMPLES / "treelstm.cx"), {"H": 8, "V": data.vocabulary})
    return run_pipeline(program, Options.level(0)).recursive


def _computed(rule: Any) -> int:
    from cortexlang.ir.recursive import SOURCE_KINDS

    return sum(op.kind not in SOURCE_KINDS for op in rule.ops)


def _leaves(structures: Any) -> int:
    return sum(int(structure.is_leaf().sum()) for structure in structures)


def _nodes(structures: Any) -> int:
    return sum(structure.num_nodes for structure in structures)


def wrong_calls(course: SimpleNamespace, treelstm_o0: Any,
                data: SimpleNamespace) -> dict[str, Callable[[Any, Any], int]]:
    right_here = course.s2.eager_operator_calls(treelstm_o0, data.trees)
    return {
        "a hard-coded count": lambda program, structures: right_here,
        "sources counted": lambda program, structures: (
            _leaves(structures) * len(program.leaf.ops)
            + (_nodes(structures) - _leaves(structures)) * len(program.internal.ops)),
        "every node the internal rule": lambda program, structures: (
            _nodes(structures) * _computed(program.internal)),
        "rules swapped": lambda program, structures: (
            _leaves(structures) * _computed(program.internal)
            + (_nodes(structures) - _leaves(structures)) * _computed(program.leaf)),
        "the first structure only": lambda program, structures: (
            course.s2.eager_operator_calls(program, structures[:1])),
    }


@pytest.mark.parametrize("wrong", ["a hard-coded count", "sources counted",
                                   "every node the internal rule", "rules swapped",
                                   "the first structure only"])
def test_2_1_rejects(course: SimpleNamespace, data: SimpleNamespace, treelstm_o0: Any,
                     wrong: str) -> None:
    answer = wrong_calls(course, treelstm_o0, data)[wrong]
    rejected(course.checks, lambda: course.checks.check_exercise_2_1(
        answer, {"TreeLSTM -O0": treelstm_o0}, data.trees))


def test_2_1_accepts_the_solution(course: SimpleNamespace, data: SimpleNamespace,
                                  treelstm_o0: Any) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_2_1(
        course.s2.eager_operator_calls, {"TreeLSTM -O0": treelstm_o0}, data.trees))


def _batches(linearized: Any) -> dict[BatchRange, int]:
    leaf = int((linearized.batch_start < linearized.num_leaves).sum())
    return {BatchRange.LEAF: leaf, BatchRange.INTERNAL: linearized.num_batches - leaf,
            BatchRange.ALL: linearized.num_batches}


WRONG_LAUNCHES: dict[str, Callable[[Any, Any], int]] = {
    "heads never launched": lambda kernels, linearized: sum(
        _batches(linearized).get(over, 0) for _, over in kernels.launches),
    "heads once per batch": lambda kernels, linearized: sum(
        _batches(linearized).get(over, linearized.num_batches)
        for _, over in kernels.launches),
    "one launch per kernel": lambda kernels, linearized: len(kernels.launches),
    "every kernel over every batch": lambda kernels, linearized: (
        len(kernels.launches) * linearized.num_batches),
}


@pytest.fixture(scope="module")
def level_models(data: SimpleNamespace, opencl_device: object) -> dict[str, Any]:
    sys.path.insert(0, str(TUTORIALS))
    from common import compile_model

    from cortexlang.frontend.check import load_program
    from cortexlang.inputs.weights import init_weights
    from cortexlang.passes.pipeline import Options

    program = load_program(str(EXAMPLES / "treelstm.cx"), {"H": 8, "V": data.vocabulary})
    weights = init_weights(program.params, seed=0)
    return {"-O2": compile_model(program, Options.level(2), weights)}


@pytest.mark.opencl
@pytest.mark.parametrize("wrong", sorted(WRONG_LAUNCHES))
def test_2_2_rejects(course: SimpleNamespace, data: SimpleNamespace,
                     level_models: dict[str, Any], wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_2_2(
        WRONG_LAUNCHES[wrong], level_models, data.trees))


@pytest.mark.opencl
def test_2_2_accepts_the_solution(course: SimpleNamespace, data: SimpleNamespace,
                                  level_models: dict[str, Any]) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_2_2(
        course.s2.predicted_launches, level_models, data.trees))


RELU_BODIES = {
    "tanh": "    h = tanh(W @ (h[left(n)] + h[right(n)]) + b)",
    "no bias": "    h = relu(W @ (h[left(n)] + h[right(n)]))",
    "the left child only": "    h = relu(W @ h[left(n)] + b)",
    "relu before the product": "    h = W @ relu(h[left(n)] + h[right(n)]) + b",
}


@pytest.mark.parametrize("wrong", sorted(RELU_BODIES))
def test_2_3_rejects(course: SimpleNamespace, data: SimpleNamespace, wrong: str) -> None:
    source = course.s2.legal_relu_source()
    internal = "    h = relu(W @ (h[left(n)] + h[right(n)]) + b)"
    assert internal in source
    edited = source.replace(internal, RELU_BODIES[wrong])
    rejected(course.checks, lambda: course.checks.check_exercise_2_3(
        lambda: edited, data.trees, data.vocabulary))


# -- lesson 3 ---------------------------------------------------------------------------------

def depth_from_root(structure: Any) -> np.ndarray:
    depth = np.zeros(structure.num_nodes, dtype=np.int32)
    stack = [(int(structure.root), 0)]
    while stack:
        node, level = stack.pop()
        depth[node] = max(depth[node], level)
        stack.extend((int(child), level + 1) for child in structure.children[node] if child >= 0)
    return depth


def shortest_heights(structure: Any) -> np.ndarray:
    children = structure.children.tolist()
    memo: dict[int, int] = {}

    def height(node: int) -> int:
        if node not in memo:
            present = [child for child in children[node] if child >= 0]
            memo[node] = 1 + min(height(child) for child in present) if present else 0
        return memo[node]
    return np.array([height(node) for node in range(structure.num_nodes)], dtype=np.int32)


WRONG_HEIGHTS: dict[str, Callable[[Any], Any]] = {
    "all ones": lambda structure: np.ones(structure.num_nodes, dtype=np.int32),
    "depth from the root": depth_from_root,
    "the shortest path to a leaf": shortest_heights,
    "leaves at 1": lambda structure: course_heights(structure) + 1,
}


def course_heights(structure: Any) -> np.ndarray:
    sys.path.insert(0, str(TUTORIALS))
    from solutions.lesson3 import heights

    return np.asarray(heights(structure))


@pytest.mark.parametrize("wrong", sorted(WRONG_HEIGHTS))
def test_3_1_rejects(course: SimpleNamespace, data: SimpleNamespace, wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_3_1(
        WRONG_HEIGHTS[wrong], data.trees))


def wrong_new_ids(course: SimpleNamespace) -> dict[str, Callable[[Any], Any]]:
    def merged_heights(structures: Any) -> np.ndarray:
        return np.concatenate([course.s3.heights(structure) for structure in structures])

    def by_height_descending(structures: Any) -> np.ndarray:
        order = np.argsort(-merged_heights(structures), kind="stable")
        new = np.empty_like(order)
        new[order] = np.arange(order.shape[0])
        return new

    def the_order_not_the_ids(structures: Any) -> np.ndarray:
        return np.argsort(merged_heights(structures), kind="stable")

    def ties_reversed(structures: Any) -> np.ndarray:
        heights = merged_heights(structures)
        order = np.lexsort((-np.arange(heights.shape[0]), heights))
        new = np.empty_like(order)
        new[order] = np.arange(order.shape[0])
        return new

    return {"identity": lambda structures: np.arange(sum(s.num_nodes for s in structures)),
            "height descending": by_height_descending,
            "the order instead of the new ids": the_order_not_the_ids,
            "ties reversed": ties_reversed}


@pytest.mark.parametrize("wrong", ["identity", "height descending",
                                   "the order instead of the new ids", "ties reversed"])
def test_3_2_rejects(course: SimpleNamespace, data: SimpleNamespace, wrong: str) -> None:
    answer = wrong_new_ids(course)[wrong]
    rejected(course.checks, lambda: course.checks.check_exercise_3_2(answer, data.trees))


def edited_linearize(course: SimpleNamespace, edit: Callable[[dict[str, Any], Any], None]
                     ) -> Callable[..., dict[str, Any]]:
    def linearize(structures: Any, max_children: int) -> dict[str, Any]:
        result = dict(course.s3.my_linearize(structures, max_children))
        edit(result, structures)
        return result
    return linearize


def _old_children(result: dict[str, Any], structures: Any) -> None:
    order = np.argsort(result["new_id"])
    children = result["children"]
    result["children"] = np.where(children >= 0, order[np.maximum(children, 0)], -1)


LINEARIZE_EDITS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "no roots": lambda result, structures: result.pop("roots"),
    "roots in old ids": lambda result, structures: result.update(
        roots=np.array([structure.root for structure in structures], dtype=np.int32)),
    "children in old ids": _old_children,
    "words in input order": lambda result, structures: result.update(
        words=np.concatenate([structure.words for structure in structures])),
    "num_leaves counts every node": lambda result, structures: result.update(
        num_leaves=int(result["new_id"].shape[0])),
}


@pytest.mark.parametrize("wrong", sorted(LINEARIZE_EDITS))
def test_3_3_rejects(course: SimpleNamespace, data: SimpleNamespace, wrong: str) -> None:
    answer = edited_linearize(course, LINEARIZE_EDITS[wrong])
    rejected(course.checks, lambda: course.checks.check_exercise_3_3(answer, data.trees))


def batched_variant(course: SimpleNamespace, edit: str) -> Callable[..., np.ndarray]:
    def treefc(linearized: Any, weights: dict[str, np.ndarray]) -> np.ndarray:
        emb, w, b = weights["Emb"], weights["W"], weights["b"]
        h = np.zeros((linearized.num_nodes, w.shape[0]))
        leaves = slice(0, linearized.num_leaves)
        h[leaves] = emb[linearized.words[leaves]]
        order = list(zip(linearized.batch_start, linearized.batch_len, strict=True))
        if edit == "batches from the top":
            order = order[::-1]
        for start, count in order:
            if start < linearized.num_leaves:
                continue
            rows = slice(int(start), int(start + count))
            left, right = linearized.children[rows, 0], linearized.children[rows, 1]
            product = (h[left] + h[right]) @ (w if edit == "W not transposed" else w.T)
            h[rows] = product + b if edit == "no tanh" else np.tanh(product + b)
        if edit == "rows in input order":
            return h[linearized.new_id]
        return h
    return treefc


@pytest.mark.parametrize("wrong", ["batches from the top", "W not transposed", "no tanh",
                                   "rows in input order"])
def test_3_4_rejects(course: SimpleNamespace, data: SimpleNamespace, treefc: SimpleNamespace,
                     wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_3_4(
        batched_variant(course, wrong), treefc.program, treefc.weights, data.trees))


def test_3_4_accepts_the_solution(course: SimpleNamespace, data: SimpleNamespace,
                                  treefc: SimpleNamespace) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_3_4(
        course.s3.treefc_batched, treefc.program, treefc.weights, data.trees))


# -- lesson 4 ---------------------------------------------------------------------------------

def flipped(course: SimpleNamespace, model: str) -> Callable[[], dict[str, Any]]:
    def predict() -> dict[str, Any]:
        answer = dict(course.s4.predict_refactoring())
        answer[model] = not answer[model]
        return answer
    return predict


@pytest.mark.parametrize("wrong", ["all True", "all False", "treegru flipped",
                                   "lstm_sequence flipped", "strings", "one model missing"])
def test_4_1_rejects_without_naming_the_answers(course: SimpleNamespace, wrong: str) -> None:
    models = course.checks.REFACTORING_MODELS
    answers: dict[str, Callable[[], Any]] = {
        "all True": lambda: dict.fromkeys(models, True),
        "all False": lambda: dict.fromkeys(models, False),
        "treegru flipped": flipped(course, "treegru"),
        "lstm_sequence flipped": flipped(course, "lstm_sequence"),
        "strings": lambda: dict.fromkeys(models, "yes"),
        "one model missing": lambda: {model: True for model in models[1:]},
    }
    detail = rejected(course.checks, lambda: course.checks.check_exercise_4_1(answers[wrong]))
    if wrong in ("all True", "all False", "treegru flipped", "lstm_sequence flipped"):
        # How many are wrong, never which: that would give the answers away.
        assert not any(model in detail for model in models), detail


def test_4_1_accepts_the_solution(course: SimpleNamespace) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_4_1(
        course.s4.predict_refactoring))


def wrong_independent(course: SimpleNamespace) -> dict[str, Callable[[Any], Any]]:
    from cortexlang.ir.recursive import SOURCE_KINDS

    def only_parameters(rule: Any) -> set[str]:
        independent: set[str] = set()
        kinds = {op.name: op.kind for op in rule.ops}
        for op in rule.ops:
            if op.kind not in SOURCE_KINDS and all(
                    kinds[arg] in ("param", "uniform") or arg in independent
                    for arg in op.args):
                independent.add(op.name)
        return independent

    def any_operand(rule: Any) -> set[str]:
        independent: set[str] = set()
        kinds = {op.name: op.kind for op in rule.ops}
        for op in rule.ops:
            if op.kind not in SOURCE_KINDS and any(
                    kinds[arg] in ("const", "param", "uniform") or arg in independent
                    for arg in op.args):
                independent.add(op.name)
        return independent

    def not_transitive(rule: Any) -> set[str]:
        kinds = {op.name: op.kind for op in rule.ops}
        return {op.name for op in rule.ops if op.kind not in SOURCE_KINDS
                and all(kinds[arg] in ("const", "param", "uniform") for arg in op.args)}

    def everything(rule: Any) -> set[str]:
        return {op.name for op in rule.ops if op.kind not in SOURCE_KINDS}

    return {"constants not counted": only_parameters, "any operand": any_operand,
            "not transitive": not_transitive, "every computed operator": everything,
            "nothing": lambda rule: set()}


@pytest.mark.parametrize("wrong", ["constants not counted", "any operand", "not transitive",
                                   "every computed operator", "nothing"])
def test_4_2_rejects(course: SimpleNamespace, wrong: str) -> None:
    answer = wrong_independent(course)[wrong]
    rejected(course.checks, lambda: course.checks.check_exercise_4_2(
        answer, course.checks.hoisting_programs()))


def test_4_2_accepts_the_solution(course: SimpleNamespace) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_4_2(
        course.s4.node_independent_ops, course.checks.hoisting_programs()))


def wrong_removed(course: SimpleNamespace) -> dict[str, Callable[[Any], Any]]:
    def signs_flipped(records: Any) -> dict[str, int]:
        return {step: -count for step, count in course.s4.operators_removed(records).items()}

    def with_sources(records: Any) -> dict[str, int]:
        removed = {}
        for previous, record in zip(records, records[1:], strict=False):
            if previous.stage == "recursive" and record.stage == "recursive":
                removed[record.step] = sum(len(rule.ops) for rule in (
                    previous.ir.leaf, previous.ir.internal)) - sum(
                    len(rule.ops) for rule in (record.ir.leaf, record.ir.internal))
        return removed

    def internal_only(records: Any) -> dict[str, int]:
        removed = {}
        for previous, record in zip(records, records[1:], strict=False):
            if previous.stage == "recursive" and record.stage == "recursive":
                removed[record.step] = (_computed(previous.ir.internal)
                                        - _computed(record.ir.internal))
        return removed

    def changed_steps_only(records: Any) -> dict[str, int]:
        return {step: count for step, count in course.s4.operators_removed(records).items()
                if count}

    return {"signs flipped": signs_flipped, "sources counted": with_sources,
            "the internal rule only": internal_only, "unchanged steps left out":
            changed_steps_only}


@pytest.fixture(scope="module")
def childsum() -> Any:
    from cortexlang.frontend.check import load_program

    return load_program(str(EXAMPLES / "childsum_treelstm.cx"), {"H": 8})


@pytest.mark.parametrize("wrong", ["signs flipped", "sources counted",
                                   "the internal rule only", "unchanged steps left out"])
def test_4_3_rejects(course: SimpleNamespace, childsum: Any, wrong: str) -> None:
    answer = wrong_removed(course)[wrong]
    rejected(course.checks, lambda: course.checks.check_exercise_4_3(answer, childsum))


# -- lesson 5 ---------------------------------------------------------------------------------

def wrong_tiles(course: SimpleNamespace) -> dict[str, Callable[..., Any]]:
    def gpu_everywhere(start: int, count: int, tile: int, node_tile: int, gpu: bool) -> Any:
        return course.s5.tile_nodes(start, count, tile, node_tile, True)

    def cpu_everywhere(start: int, count: int, tile: int, node_tile: int, gpu: bool) -> Any:
        return course.s5.tile_nodes(start, count, tile, node_tile, False)

    def unclamped(start: int, count: int, tile: int, node_tile: int, gpu: bool) -> Any:
        return [(start + tile * node_tile + lane, True) for lane in range(node_tile)]

    def batch_start_ignored(start: int, count: int, tile: int, node_tile: int,
                            gpu: bool) -> Any:
        return course.s5.tile_nodes(0, count, tile, node_tile, gpu)

    return {"the GPU placement everywhere": gpu_everywhere,
            "the CPU placement everywhere": cpu_everywhere, "no clamping": unclamped,
            "the batch start ignored": batch_start_ignored}


@pytest.fixture(scope="module")
def treefc16() -> Any:
    from cortexlang.frontend.check import load_program

    return load_program(str(EXAMPLES / "treefc.cx"), {"H": 16})


@pytest.mark.parametrize("wrong", ["the GPU placement everywhere", "the CPU placement "
                                   "everywhere", "no clamping", "the batch start ignored"])
def test_5_1_rejects(course: SimpleNamespace, treefc16: Any, wrong: str) -> None:
    answer = wrong_tiles(course)[wrong]
    rejected(course.checks, lambda: course.checks.check_exercise_5_1(answer, treefc16))


KERNEL_EDITS = {
    "no tanh": ("h[node * H + j] = tanh(sum);", "h[node * H + j] = sum;"),
    "W transposed": ("W[j * H + k]", "W[k * H + j]"),
    "the left child only": ("(h[left * H + k] + h[right * H + k])", "h[left * H + k]"),
    "no bias": ("float sum = b[j];", "float sum = 0.0f;"),
    "another name": ("void treefc_level(", "void treefc(")}


@pytest.mark.opencl
@pytest.mark.parametrize("wrong", sorted(KERNEL_EDITS))
def test_5_2_rejects(course: SimpleNamespace, data: SimpleNamespace, treefc: SimpleNamespace,
                     opencl_device: object, wrong: str) -> None:
    old, new = KERNEL_EDITS[wrong]
    source = course.s5.treefc_level_kernel()
    assert old in source
    edited = source.replace(old, new)
    rejected(course.checks, lambda: course.checks.check_exercise_5_2(
        lambda: edited, treefc.program, treefc.weights, data.trees))


# -- lesson 6 ---------------------------------------------------------------------------------

def timer(pick: Callable[[list[float]], float], *, time_warmup: bool = False,
          warmup_after: bool = False, seconds: bool = False,
          skip_warmup: bool = False) -> Callable[..., float]:
    def measure(fn: Callable[[], object], warmup: int, repeats: int) -> float:
        samples = []
        if not warmup_after and not skip_warmup:
            for _ in range(warmup):
                started = time.perf_counter()
                fn()
                if time_warmup:
                    samples.append(time.perf_counter() - started)
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        if warmup_after:
            for _ in range(warmup):
                fn()
        value = pick(samples)
        return value if seconds else value * 1e3
    return measure


WRONG_TIMERS = {
    "the warm-up timed too": timer(lambda samples: float(np.median(samples)), time_warmup=True),
    "the warm-up after the timing": timer(lambda samples: float(np.median(samples)),
                                          warmup_after=True),
    "no warm-up": timer(lambda samples: float(np.median(samples)), skip_warmup=True),
    "the mean": timer(lambda samples: float(np.mean(samples))),
    "the minimum": timer(min),
    "the maximum": timer(max),
    "the last sample": timer(lambda samples: samples[-1]),
    "seconds": timer(lambda samples: float(np.median(samples)), seconds=True),
}


@pytest.mark.parametrize("wrong", sorted(WRONG_TIMERS))
def test_6_1_rejects(course: SimpleNamespace, wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_6_1(WRONG_TIMERS[wrong]))


def test_6_1_accepts_the_solution(course: SimpleNamespace) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_6_1(course.s6.median_ms))


def measured_table() -> dict[int, dict[str, Any]]:
    sys.path.insert(0, str(TUTORIALS))
    from timing import Timing

    def row(*samples: float) -> Timing:
        return Timing("measured", samples)
    return {8: {"one group": row(1, 1.1, 1.2), "level": row(2, 2.1, 2.2)},
            128: {"one group": row(5, 6, 7), "level": row(4, 5, 6.5)}}


WRONG_CROSSOVERS: dict[str, Callable[[Any], Any]] = {
    "medians compared": lambda results: next(
        (hidden for hidden in sorted(results)
         if all(results[h]["level"].median < results[h]["one group"].median
                for h in results if h >= hidden)), None),
    "the first size where level wins": lambda results: next(
        (hidden for hidden in sorted(results)
         if results[hidden]["level"].p90 < results[hidden]["one group"].p10), None),
    "the largest size": lambda results: max(results),
    "never": lambda results: None,
}


@pytest.mark.parametrize("wrong", sorted(WRONG_CROSSOVERS))
def test_6_2_rejects(course: SimpleNamespace, wrong: str) -> None:
    rejected(course.checks, lambda: course.checks.check_exercise_6_2(
        WRONG_CROSSOVERS[wrong], measured_table()))


def test_6_2_accepts_the_solution(course: SimpleNamespace) -> None:
    accepted(course.checks, lambda: course.checks.check_exercise_6_2(
        course.s6.crossover, measured_table()))


def fake_run(linearize: float, prepare: float, compute: float) -> SimpleNamespace:
    return SimpleNamespace(timings={"linearize": linearize, "prepare": prepare,
                                    "compute": compute})


WRONG_SHARES: dict[str, Callable[[Any], Any]] = {
    "over compute only": lambda run: run.timings["linearize"] / run.timings["compute"],
    "over prepare only": lambda run: run.timings["linearize"] / run.timings["prepare"],
    "linearize counted twice": lambda run: run.timings["linearize"] / (
        run.timings["linearize"] + run.timings["prepare"] + run.timings["compute"]),
    "a percentage": lambda run: 100 * run.timings["linearize"] / (
        run.timings["prepare"] + run.timings["compute"]),
}


@pytest.mark.parametrize("wrong", sorted(WRONG_SHARES))
def test_6_3_rejects(course: SimpleNamespace, wrong: str) -> None:
    runs = [fake_run(0.001, 0.003, 0.010), fake_run(0.002, 0.002, 0.001)]
    rejected(course.checks, lambda: course.checks.check_exercise_6_3(WRONG_SHARES[wrong], runs))

"""Checks for the exercises: each `check_exercise_L_N` says whether an answer is right.

A check never crashes the lesson: an exercise not done yet (`NotImplementedError`) is
reported as TODO, a wrong answer as FAIL with what differs, and an exception inside your code
as FAIL with the exception. Every check compares your answer with what cortexlang itself
computes (the interpreter, the linearizer, the compiler), never with numbers written here.

Exercises are functions marked `@exercise("L.N")` in the lessons. With `--solutions` (or
CORTEXLANG_TUTORIAL_SOLUTIONS=1) the decorator swaps in the instructor's function of the same
name from `solutions/lessonL.py`; that is how the course's own tests run every lesson.

`summary()` at the end of a lesson lists the results. It exits with status 1 only when the
solutions are in use and one of them fails: that is a broken lesson, not a student's mistake.
"""

from __future__ import annotations

import functools
import importlib
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from common import EXAMPLES, solutions_enabled

Function = TypeVar("Function", bound=Callable[..., Any])


class Wrong(Exception):
    """An answer that is not right; the message says what differs."""


@dataclass
class Result:
    number: str
    title: str
    status: str          # PASS, TODO or FAIL
    detail: str = ""


RESULTS: list[Result] = []


def exercise(number: str) -> Callable[[Function], Function]:
    """Mark a function as exercise `number` ("3.2"). With the solutions enabled, the function
    of the same name in `solutions/lesson3.py` replaces it."""
    def mark(function: Function) -> Function:
        if not solutions_enabled():
            return function
        lesson = number.split(".")[0]
        module = importlib.import_module(f"solutions.lesson{lesson}")
        solution: Function = getattr(module, function.__name__)
        return solution
    return mark


def _run(number: str, title: str, body: Callable[[], str | None]) -> bool:
    """Run one check's body; record and print PASS, TODO or FAIL."""
    try:
        detail = body() or ""
        result = Result(number, title, "PASS", detail)
    except NotImplementedError:
        result = Result(number, title, "TODO", "not done yet: replace the "
                        "`raise NotImplementedError` with your code")
    except Wrong as wrong:
        result = Result(number, title, "FAIL", str(wrong))
    except Exception as error:  # the student's code raised: show where, briefly
        frames = traceback.extract_tb(error.__traceback__)
        where = next((f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
                      for frame in reversed(frames)), "?")
        result = Result(number, title, "FAIL",
                        f"your code raised {type(error).__name__} at {where}: {error}")
    RESULTS.append(result)
    print(f"[{result.status}] exercise {number}: {title}")
    if result.detail:
        for line in result.detail.split("\n"):
            print(f"       {line}")
    return result.status == "PASS"


def summary() -> None:
    """Print every exercise's result; exit 1 if the instructor's solutions fail a check."""
    print("\nexercises:")
    for result in RESULTS:
        print(f"  [{result.status}] {result.number} {result.title}")
    passed = sum(result.status == "PASS" for result in RESULTS)
    print(f"{passed} of {len(RESULTS)} exercises right")
    if solutions_enabled() and passed != len(RESULTS):
        print("the instructor's solutions fail a check: this lesson is broken")
        sys.exit(1)


def _close(mine: Any, theirs: np.ndarray, what: str, rtol: float = 1e-4,
           atol: float = 1e-5) -> None:
    mine = np.asarray(mine)
    if mine.shape != theirs.shape:
        raise Wrong(f"{what}: your array has shape {mine.shape}, expected {theirs.shape}")
    if not np.allclose(mine, theirs, rtol=rtol, atol=atol):
        worst = np.unravel_index(np.argmax(np.abs(mine - theirs)), theirs.shape)
        raise Wrong(f"{what}: differs at index {tuple(int(i) for i in worst)}: yours "
                    f"{float(mine[worst]):.6g}, cortexlang's {float(theirs[worst]):.6g}")


def _equal(mine: Any, theirs: np.ndarray, what: str) -> None:
    mine = np.asarray(mine)
    if mine.shape != theirs.shape:
        raise Wrong(f"{what}: your array has shape {mine.shape}, expected {theirs.shape}")
    if not np.array_equal(mine, theirs):
        first = tuple(int(i) for i in np.argwhere(mine != theirs)[0])
        raise Wrong(f"{what}: differs first at index {first}: yours {mine[first]}, "
                    f"cortexlang's {theirs[first]}")


def _check_source(source: str, overrides: Mapping[str, int]) -> Any:
    """A student's .cx text checked, or Wrong with the checker's own messages."""
    from cortexlang.errors import CortexError
    from cortexlang.frontend.check import check_source

    if not isinstance(source, str):
        raise Wrong(f"return the program's text as a str, not {type(source).__name__}")
    try:
        return check_source(source, "<your program>", overrides)
    except CortexError as error:
        raise Wrong("cortexlang check rejects the program:\n" + error.render()) from None


def _same_parameters(mine: Any, reference: Any) -> None:
    shapes = {param.name: list(param.shape) for param in reference.params}
    yours = {param.name: list(param.shape) for param in mine.params}
    if yours != shapes:
        raise Wrong(f"parameters: yours are {yours}, the exercise asks for {shapes}")


def _example(name: str, overrides: Mapping[str, int]) -> Any:
    from cortexlang.frontend.check import load_program

    return load_program(str(EXAMPLES / f"{name}.cx"), dict(overrides))


# -- lesson 1 ---------------------------------------------------------------------------------

def strong_weights(program: Any, seed: int, scale: float = 10.0) -> dict[str, np.ndarray]:
    """Weights `scale` times the declared initialiser's (float64): large enough that tanh and
    sigmoid work far from their linear middle, so that an answer with the wrong
    non-linearity (none, a cubic, a ReLU) gives visibly different numbers."""
    from cortexlang.inputs.weights import init_weights

    return {name: value * scale for name, value
            in init_weights(program.params, seed=seed, dtype=np.float64).items()}


def check_exercise_1_1(treefc_by_hand: Callable[..., Any], program: Any,
                       weights: Mapping[str, np.ndarray], structures: Sequence[Any]) -> bool:
    """Your numpy TreeFC gives the interpreter's root states on every tree, with the lesson's
    weights and with weights large enough that tanh is far from linear."""
    def body() -> str:
        from cortexlang.interp import interpret

        weight_sets = {"the lesson's weights": dict(weights),
                       "weights 10x larger (tanh far from linear)": strong_weights(program, 7)}
        for label, chosen in weight_sets.items():
            reference = interpret(program, structures, chosen, dtype=np.float64)
            for index, structure in enumerate(structures):
                mine = treefc_by_hand(structure, chosen)
                _close(mine, reference.outputs["h"][index],
                       f"{label}, tree {index}'s root state h")
        return (f"{len(structures)} trees agree with cortexlang.interp.interpret, with small "
                "and large weights")
    return _run("1.1", "TreeFC by hand, in numpy", body)


TREELSTM_PARAMS = ("Emb", "W_leaf", "b_leaf", "U", "b")


def check_exercise_1_2(treelstm_source: Callable[[], str], structures: Sequence[Any],
                       vocabulary: int) -> bool:
    """Your TreeLSTM program computes what examples/treelstm.cx computes, at every node."""
    def body() -> str:
        from cortexlang.inputs.weights import init_weights
        from cortexlang.interp import interpret

        sizes = {"H": 8, "V": vocabulary}
        mine = _check_source(treelstm_source(), sizes)
        reference = _example("treelstm", sizes)
        _same_parameters(mine, reference)
        if {state.name for state in mine.states} != {"h", "c"}:
            raise Wrong("declare exactly the states h[H] and c[H]")
        for weights in (init_weights(reference.params, seed=1, dtype=np.float64),
                        strong_weights(reference, seed=2, scale=5.0)):
            expected = interpret(reference, structures, weights, dtype=np.float64)
            got = interpret(mine, structures, weights, dtype=np.float64)
            for state in ("h", "c"):
                _close(got.states[state], expected.states[state],
                       f"state {state} (all nodes)", rtol=1e-9, atol=1e-12)
        return f"h and c agree at all {expected.states['h'].shape[0]} nodes"
    return _run("1.2", "TreeLSTM in the language", body)


def classifier_weights(program: Any, seed: int) -> dict[str, np.ndarray]:
    """Weights for examples/sentiment.cx under which the predicted class changes from node
    to node (with the declared initialiser alone every node predicts the same class, and an
    answer that ignores the outputs would pass)."""
    weights = strong_weights(program, seed)
    weights["b_s"] = np.zeros_like(weights["b_s"])
    weights["W_s"] = weights["W_s"] * 4.0
    return weights


def check_exercise_1_3(node_predictions: Callable[[Any, int], Any], program: Any,
                       structures: Sequence[Any]) -> bool:
    """Your per-node classes are the argmax of each node's `sentiment` row, for every tree,
    under two sets of weights whose predictions vary from node to node."""
    def body() -> str:
        from cortexlang.interp import interpret

        for seed in (0, 1):
            outputs = interpret(program, structures, classifier_weights(program, seed),
                                dtype=np.float64)
            classes = outputs.outputs["sentiment"].argmax(axis=1)
            if len(set(classes.tolist())) < 3:
                raise Wrong("the check's weights no longer vary the predicted classes: "
                            "lesson 1 is out of date (tell the instructor)")
            for tree in range(len(structures)):
                start = int(outputs.node_offset[tree])
                stop = int(outputs.node_offset[tree + 1])
                mine = node_predictions(outputs, tree)
                if np.asarray(mine).shape != (stop - start,):
                    raise Wrong(f"tree {tree} has {stop - start} nodes: return one class per "
                                f"node of that tree, not an array of shape "
                                f"{np.asarray(mine).shape}")
                _equal(np.asarray(mine), classes[start:stop],
                       f"tree {tree}'s classes (weights seed {seed})")
        return f"classes right for the {len(structures)} trees, under two sets of weights"
    return _run("1.3", "reading per-node outputs", body)


# -- lesson 2 ---------------------------------------------------------------------------------

def _reference_eager_calls(recursive: Any, structures: Sequence[Any]) -> int:
    from cortexlang.ir.recursive import SOURCE_KINDS

    def computed(rule: Any) -> int:
        return sum(op.kind not in SOURCE_KINDS for op in rule.ops)

    leaves = sum(int(structure.is_leaf().sum()) for structure in structures)
    nodes = sum(structure.num_nodes for structure in structures)
    return leaves * computed(recursive.leaf) + (nodes - leaves) * computed(recursive.internal)


def eager_programs() -> dict[str, Any]:
    """Recursive programs whose rules differ in size: TreeFC and ChildSumTreeLSTM as
    written (-O0) and ChildSumTreeLSTM fully optimised (its derived leaf rule is shorter)."""
    from cortexlang.passes.pipeline import Options, run_pipeline

    treefc = _example("treefc", {"H": 8})
    childsum = _example("childsum_treelstm", {"H": 8})
    return {"TreeFC -O0": run_pipeline(treefc, Options.level(0)).recursive,
            "ChildSumTreeLSTM -O0": run_pipeline(childsum, Options.level(0)).recursive,
            "ChildSumTreeLSTM -O3": run_pipeline(childsum, Options()).recursive}


def check_exercise_2_1(eager_operator_calls: Callable[[Any, Sequence[Any]], int],
                       programs: Mapping[str, Any], structures: Sequence[Any]) -> bool:
    """Your count of per-node operator calls matches, for every recursive program given and
    three more, on the lesson's trees and on a part of them."""
    def body() -> str:
        counts = []
        every = {**programs, **eager_programs()}
        parts = {"all trees": list(structures), "the first 3": list(structures[:3])}
        for name, recursive in every.items():
            for part, chosen in parts.items():
                expected = _reference_eager_calls(recursive, chosen)
                mine = eager_operator_calls(recursive, chosen)
                if mine != expected:
                    raise Wrong(f"{name} on {part}: you count {mine} operator calls, the "
                                f"right count is {'more' if expected > mine else 'fewer'}. "
                                "A leaf runs the leaf rule's computed operators, an internal "
                                "node the internal rule's; sources are not calls")
            counts.append(f"{name} {_reference_eager_calls(recursive, structures)}")
        return "right for " + ", ".join(counts)
    return _run("2.1", "operator calls of node-by-node execution", body)


def _planned_launches(executable: Any, linearized: Any, num_heads: int) -> int:
    """How many launches the runtime's plan makes for `linearized` (runtime/plan.py)."""
    from cortexlang.runtime.plan import first_fused_batch, launch_plan

    leaf_batches = int((linearized.batch_start < linearized.num_leaves).sum())
    return len(launch_plan(executable, linearized.batch_len, leaf_batches, num_heads,
                           first_fused_batch(executable, linearized.batch_len)))


def check_exercise_2_2(predicted_launches: Callable[[Any, Any], int],
                       models: Mapping[str, Any], structures: Sequence[Any]) -> bool:
    """Your launch count equals what the executor launched (`last_launches`) for each
    compiled model with the `level` strategy, and what the executor's launch plan holds for
    the sentiment classifier, whose output head runs at every node (`heads`)."""
    def body() -> str:
        from cortexlang.passes.pipeline import Options, run_pipeline
        from cortexlang.runtime.linearize import linearize

        lines = []
        for name, model in models.items():
            if model.result.kernels.strategy != "level":
                continue
            model.run(structures)
            linearized = linearize(structures, max_children=model.result.recursive.max_children,
                                   dynamic_batching=model.result.options.dynamic_batching)
            mine = predicted_launches(model.result.kernels, linearized)
            if mine != model.last_launches:
                raise Wrong(f"{name}: you predict {mine} launches; the executor made "
                            f"{model.last_launches} (strategy {model.result.kernels.strategy})")
            lines.append(f"{name} {mine}")
        if not lines:
            raise Wrong("no model with the level strategy to check: lesson 2 is out of date")
        sentiment = _example("sentiment", {"H": 8})
        for label, options in (("-O2", Options.level(2)), ("-O1", Options.level(1))):
            compiled = run_pipeline(sentiment, options)
            kernels = compiled.kernels
            for part in (list(structures), list(structures[:2])):
                linearized = linearize(part, max_children=2)
                expected = _planned_launches(compiled.executable, linearized,
                                             linearized.num_nodes)
                mine = predicted_launches(kernels, linearized)
                if mine != expected:
                    raise Wrong(f"examples/sentiment.cx {label} on {len(part)} trees: you "
                                f"predict {mine} launches, the executor would make "
                                f"{'more' if expected > mine else 'fewer'}. Look at its "
                                "launches: which of them are `over heads`, and how often "
                                "does such a kernel run?")
            lines.append(f"sentiment {label} {expected}")
        return "right for " + ", ".join(lines)
    return _run("2.2", "predicting kernel launches", body)


RELU_TREEFC = """\
model TreeFC
sizes H = 8, V = 1000
structure binary_tree
param Emb[V, H]
param W[H, H], b[H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
    h = relu(W @ (h[left(n)] + h[right(n)]) + b)
output h[root]
"""


def check_exercise_2_3(legal_source: Callable[[], str], structures: Sequence[Any],
                       vocabulary: int) -> bool:
    """Your program passes the checker and computes h = max(0, W (h_l + h_r) + b)."""
    def body() -> str:
        from cortexlang.frontend.check import check_source
        from cortexlang.inputs.weights import init_weights
        from cortexlang.interp import interpret

        sizes = {"H": 8, "V": vocabulary}
        mine = _check_source(legal_source(), sizes)
        reference = check_source(RELU_TREEFC, "<relu TreeFC>", sizes)
        _same_parameters(mine, reference)
        weights = init_weights(reference.params, seed=3, dtype=np.float64)
        # Shift b so that both sides of the ReLU's kink occur.
        weights["b"] = weights["b"] + np.linspace(-0.2, 0.2, weights["b"].shape[0])
        expected = interpret(reference, structures, weights, dtype=np.float64)
        got = interpret(mine, structures, weights, dtype=np.float64)
        _close(got.states["h"], expected.states["h"], "state h (all nodes)", 1e-9, 1e-12)
        return "accepted by the checker, and the same states as max(0, ...) at every node"
    return _run("2.3", "a legal program instead of a value-dependent branch", body)


# -- lesson 3 ---------------------------------------------------------------------------------

def linearizer_inputs(structures: Sequence[Any]) -> dict[str, tuple[list[Any], int]]:
    """Named batches of structures, with their max_children, that exercise the linearizer:
    real trees, the extreme binary shapes, n-ary trees and a DAG grid."""
    from cortexlang.inputs import generators

    return {
        "the lesson's trees": (list(structures), 2),
        "a single leaf": ([generators.single_leaf(rng=0)], 2),
        "a perfect tree of height 3": ([generators.perfect_tree(3, rng=0)], 2),
        "a left-deep and a right-deep tree": ([generators.skewed(6, "left", rng=0),
                                               generators.skewed(5, "right", rng=1)], 2),
        "a chain of 40 nodes": ([generators.chain(40, rng=0)], 2),
        "two 4-ary trees": ([generators.random_nary_tree(4, rng=2, leaves=9),
                             generators.random_nary_tree(4, rng=3, leaves=6)], 4),
        "a 3 x 4 DAG grid": ([generators.grid(3, 4, features=2, rng=0)], 2),
    }


def _library_heights(structure: Any, max_children: int) -> np.ndarray:
    from cortexlang.runtime.linearize import linearize

    linearized = linearize([structure], max_children=max_children)
    return linearized.height[linearized.new_id]


def check_exercise_3_1(heights: Callable[[Any], Any], structures: Sequence[Any]) -> bool:
    """Your heights equal the linearizer's, node by node, on every kind of input."""
    def body() -> str:
        count = 0
        for name, (batch, max_children) in linearizer_inputs(structures).items():
            for index, structure in enumerate(batch):
                expected = _library_heights(structure, max_children)
                _equal(np.asarray(heights(structure)), expected,
                       f"{name}, structure {index}: heights by original node id")
                count += 1
        return f"right on {count} structures (trees, chains, n-ary trees, a grid)"
    return _run("3.1", "node heights", body)


def check_exercise_3_2(new_ids: Callable[[Sequence[Any]], Any],
                       structures: Sequence[Any]) -> bool:
    """Your renumbering equals `Linearized.new_id` for every batch of inputs."""
    def body() -> str:
        from cortexlang.runtime.linearize import linearize

        for name, (batch, max_children) in linearizer_inputs(structures).items():
            expected = linearize(batch, max_children=max_children).new_id
            _equal(np.asarray(new_ids(batch)), expected, f"{name}: new_id")
        return "the same new ids as cortexlang.runtime.linearize for every input"
    return _run("3.2", "renumbering by height", body)


LINEARIZED_FIELDS = ("new_id", "height", "batch_start", "batch_len", "children", "words",
                     "roots", "num_leaves")


def check_exercise_3_3(my_linearize: Callable[..., Mapping[str, Any]],
                       structures: Sequence[Any]) -> bool:
    """Every field of your linearization equals the library's, for every batch of inputs."""
    def body() -> str:
        from cortexlang.runtime.linearize import linearize

        for name, (batch, max_children) in linearizer_inputs(structures).items():
            expected = linearize(batch, max_children=max_children)
            mine = my_linearize(batch, max_children)
            for field in LINEARIZED_FIELDS:
                if field not in mine:
                    raise Wrong(f"your result has no {field!r} (it needs: "
                                f"{', '.join(LINEARIZED_FIELDS)})")
                _equal(np.asarray(mine[field]), np.asarray(getattr(expected, field)),
                       f"{name}: {field}")
        return "every field agrees with cortexlang.runtime.linearize on every input"
    return _run("3.3", "a linearizer of your own", body)


def check_exercise_3_4(treefc_batched: Callable[[Any, Mapping[str, np.ndarray]], Any],
                       program: Any, weights: Mapping[str, np.ndarray],
                       structures: Sequence[Any]) -> bool:
    """Your batch-by-batch TreeFC gives the interpreter's h at every node (new ids mapped
    back to input order), with small and with large weights, on the lesson's trees and on a
    chain and a left-deep tree (one node per batch)."""
    def body() -> str:
        from cortexlang.inputs import generators
        from cortexlang.interp import interpret
        from cortexlang.runtime.linearize import linearize

        vocabulary = int(np.asarray(weights["Emb"]).shape[0])
        shapes = [generators.skewed(6, "left", rng=0, vocab_size=vocabulary),
                  generators.perfect_tree(3, rng=1, vocab_size=vocabulary)]
        inputs = {"the lesson's trees": list(structures), "a left-deep and a perfect tree":
                  shapes}
        weight_sets = {"the lesson's weights": dict(weights),
                       "weights 10x larger": strong_weights(program, seed=4)}
        for name, batch in inputs.items():
            linearized = linearize(batch, max_children=2)
            for label, chosen in weight_sets.items():
                reference = interpret(program, batch, chosen, dtype=np.float64).states["h"]
                mine = np.asarray(treefc_batched(linearized, chosen))
                expected_shape = (linearized.num_nodes, reference.shape[1])
                if mine.shape != expected_shape:
                    raise Wrong(f"{name}: return [num_nodes, H] = {list(expected_shape)}, not "
                                f"an array of shape {list(mine.shape)}")
                _close(mine[linearized.new_id], reference, f"{name}, {label}: h of every "
                       "node (your rows are new ids; compared in input order)")
        return "every node agrees with the interpreter, batch by batch"
    return _run("3.4", "TreeFC batch by batch, in numpy", body)


# -- lesson 4 ---------------------------------------------------------------------------------

def _records(program: Any, options: Any = None) -> list[Any]:
    from cortexlang.passes.pipeline import Options, Recorder, run_pipeline

    recorder = Recorder()
    run_pipeline(program, options or Options(), instruments=[recorder])
    return recorder.records


def hoisting_programs() -> dict[str, Any]:
    """Programs where hoisting finds work to move, and where it finds none."""
    from cortexlang.frontend.check import check_source

    learned_leaf = (EXAMPLES.parent / "tutorials" / "models" / "treelstm_learned_leaf.cx")
    projected_bias = (EXAMPLES.parent / "tutorials" / "models" / "treefc_projected_bias.cx")
    shifted_bias = (EXAMPLES.parent / "tutorials" / "models" / "treefc_shifted_bias.cx")
    programs = {"treelstm": _example("treelstm", {"H": 8}),
                "childsum_treelstm": _example("childsum_treelstm", {"H": 8})}
    for path in (learned_leaf, projected_bias, shifted_bias):
        programs[path.stem] = check_source(path.read_text(), str(path), {"H": 8})
    return programs


def check_exercise_4_2(node_independent_ops: Callable[[Any], Any],
                       programs: Mapping[str, Any]) -> bool:
    """Your node-independent operators are exactly those `hoist_invariants` moves out of each
    rule (found by comparing the rule before and after the pass)."""
    def body() -> str:
        from cortexlang.ir.recursive import SOURCE_KINDS

        found = []
        for name, program in programs.items():
            records = _records(program)
            steps = [record.step for record in records]
            if "hoist_invariants" not in steps:
                raise Wrong("the pipeline no longer has a hoist_invariants pass: lesson 4 "
                            "is out of date")
            at = steps.index("hoist_invariants")
            before, after = records[at - 1].ir, records[at].ir
            for kind in ("leaf", "internal"):
                rule_before = getattr(before, kind)
                after_ops = getattr(after, kind).op_map()
                expected = {op.name for op in rule_before.ops if op.kind not in SOURCE_KINDS
                            and (op.name not in after_ops
                                 or after_ops[op.name].kind == "uniform")}
                mine = set(node_independent_ops(rule_before))
                if mine != expected:
                    missing = sorted(expected - mine)
                    extra = sorted(mine - expected)
                    raise Wrong(f"{name}, {kind} rule: "
                                + (f"you miss {missing}" if missing else "")
                                + ("; " if missing and extra else "")
                                + (f"these depend on the node: {extra}" if extra else ""))
                found.append(f"{name}.{kind} {len(expected)}")
        return "hoistable operators right: " + ", ".join(found)
    return _run("4.2", "which operators are node-independent", body)


REFACTORING_MODELS = ("treefc", "treelstm", "treegru", "childsum_treelstm", "mvrnn",
                      "dagrnn", "lstm_sequence")


@functools.cache
def refactoring_applies(model: str) -> tuple[bool, str]:
    """Whether refactor_recursion changes `model`'s rules, and what the pass says: the
    program's note of what it moved, or the reason it gave for returning the program as
    it was."""
    records = _records(_example(model, {"H": 8}))
    record = next(record for record in records if record.step == "refactor_recursion")
    if not record.changed:
        return False, f"not applied: {record.reason}"
    notes = [note for step, note in record.ir.notes if step == "refactor_recursion"]
    return True, "; ".join(notes)


def check_exercise_4_1(predict_refactoring: Callable[[], Mapping[str, bool]]) -> bool:
    """Your predictions of where recursive refactoring applies are the compiler's."""
    def body() -> str:
        predictions = dict(predict_refactoring())
        missing = [model for model in REFACTORING_MODELS if model not in predictions]
        if missing:
            raise Wrong(f"predict every model; missing: {', '.join(missing)}")
        odd = [model for model in REFACTORING_MODELS
               if not isinstance(predictions[model], (bool, np.bool_))]
        if odd:
            raise Wrong(f"predict True or False for each model, not {predictions[odd[0]]!r}")
        wrong = [model for model in REFACTORING_MODELS
                 if bool(predictions[model]) != refactoring_applies(model)[0]]
        if wrong:
            # Only how many: naming the wrong models would give their answers away.
            raise Wrong(f"{len(wrong)} of {len(REFACTORING_MODELS)} predictions are wrong. "
                        "For each internal rule, find the products with child states: the "
                        "pass needs a parameter times a sum of child states, every child "
                        "multiplied by the same matrix (one child counts as a sum of one)")
        notes = [f"{model}: {refactoring_applies(model)[1]}" for model in REFACTORING_MODELS]
        return f"all {len(REFACTORING_MODELS)} predictions right; the pass's notes:\n" + \
            "\n".join(notes)
    return _run("4.1", "where recursive refactoring applies", body)


def _computed_ops(program: Any) -> int:
    from cortexlang.ir.recursive import SOURCE_KINDS

    return sum(op.kind not in SOURCE_KINDS for rule in (program.leaf, program.internal)
               for op in rule.ops)


def check_exercise_4_3(operators_removed: Callable[[Sequence[Any]], Mapping[str, int]],
                       program: Any) -> bool:
    """Your per-pass operator counts match the recorded pipeline's."""
    def body() -> str:
        records = _records(program)
        expected = {}
        for previous, record in zip(records, records[1:], strict=False):
            if previous.stage == "recursive" and record.stage == "recursive":
                expected[record.step] = _computed_ops(previous.ir) - _computed_ops(record.ir)
        mine = dict(operators_removed(records))
        if mine != expected:
            if set(mine) != set(expected):
                raise Wrong(f"you report the steps {sorted(mine)}; the passes on the "
                            f"recursive program are {sorted(expected)}")
            step = next(step for step in expected if mine[step] != expected[step])
            raise Wrong(f"{step}: you count {mine[step]} operators removed; that is not what "
                        "the recorded programs show")
        return ", ".join(f"{step} {count:+d}" for step, count in expected.items())
    return _run("4.3", "operators removed by each pass", body)


# -- lesson 5 ---------------------------------------------------------------------------------

# The GPU whose plan exercise 5.1 reads (planned only: nothing runs on it).
GPU_LIMITS = {"is_gpu": True, "max_work_group_size": 64}


def _tile_forms(source: str, node_tile: int, gpu: bool) -> None:
    """The generated OpenCL must still place a tile's nodes the way exercise 5.1 describes;
    otherwise the lesson is out of date. CPU plans (work-groups of one work-item): a full tile
    computes lanes start + tile * T + I unguarded, a partial one its nodes in sub-tiles of
    halving sizes (each node once, in order). GPU
    plans: lane I computes start + min(tile * T + I, count - 1) and stores if
    tile * T + I < count. A tile of one node is placed the GPU way in both."""
    plan = "GPU" if gpu else "CPU"
    clamped = gpu or node_tile == 1
    expected: list[str] = []
    absent: list[str] = []
    if clamped:
        for lane in range(node_tile):
            expected.append(f"const int node_t{lane} = start + min(tile * {node_tile} + "
                            f"{lane}, count - 1);")
            if lane:
                expected.append(f"if (tile * {node_tile} + {lane} < count) ")
        absent.append(f"if (tile * {node_tile} + {node_tile} <= count)")
    else:
        expected.append(f"if (tile * {node_tile} + {node_tile} <= count) {{")
        expected += [f"const int node_t{lane} = start + tile * {node_tile} + {lane};"
                     for lane in range(node_tile)]
        expected += [f"int n = tile * {node_tile};", "if (n + 1 <= count) {",
                     "const int node_t0 = start + n + 0;"]
        absent += [f"min(tile * {node_tile} + ", f"if (tile * {node_tile} + 1 < count)"]
    for text in expected:
        if text not in source:
            raise Wrong(f"the generated OpenCL of the {plan} plan, node tile {node_tile}, no "
                        f"longer contains `{text}`: lesson 5 is out of date (tell the "
                        "instructor)")
    for text in absent:
        if text in source:
            raise Wrong(f"the generated OpenCL of the {plan} plan, node tile {node_tile}, now "
                        f"contains `{text}`: lesson 5 is out of date (tell the instructor)")


def _tile_reference(start: int, count: int, tile: int, node_tile: int,
                    gpu: bool) -> list[tuple[int, bool]]:
    first = tile * node_tile
    if not gpu and first + node_tile > count:
        return [(start + n, True) for n in range(first, count)]
    return [(start + min(first + lane, count - 1), first + lane < count)
            for lane in range(node_tile)]


def check_exercise_5_1(tile_nodes: Callable[[int, int, int, int, bool], Sequence[Any]],
                       program: Any) -> bool:
    """Your (node, stored) pairs are those the generated kernels compute, in the CPU and the
    GPU plans, for several node tiles and batch shapes."""
    def body() -> str:
        from cortexlang.passes.pipeline import Options, run_pipeline
        from cortexlang.passes.plan_kernels import DeviceLimits

        plans = {False: DeviceLimits(), True: DeviceLimits(**GPU_LIMITS)}
        cases = 0
        for node_tile in (1, 2, 4, 8):
            for gpu, limits in plans.items():
                result = run_pipeline(program, Options(node_tile=node_tile), limits)
                if result.kernels.node_tile != node_tile:
                    raise Wrong(f"the planner no longer keeps node tile {node_tile} for "
                                f"{program.name}: lesson 5 is out of date")
                _tile_forms(result.source, node_tile, gpu)
                for start, count in ((0, 1), (10, 7), (40, 16), (3, 9)):
                    for tile in range(-(-count // node_tile)):
                        expected = _tile_reference(start, count, tile, node_tile, gpu)
                        mine = [(int(node), bool(stored)) for node, stored
                                in tile_nodes(start, count, tile, node_tile, gpu)]
                        if mine != expected:
                            raise Wrong(f"{'GPU' if gpu else 'CPU'} plan, node tile "
                                        f"{node_tile}, batch start {start} count {count}, "
                                        f"tile {tile}: yours {mine}, the kernel's {expected}")
                        cases += 1
        return f"{cases} tiles right, CPU and GPU plans, node tiles 1, 2, 4 and 8"
    return _run("5.1", "which nodes a work-item computes", body)


def _run_level_kernel(kernel: Any, device: Any, weights: Mapping[str, np.ndarray],
                      linearized: Any) -> np.ndarray:
    """Fill the leaves' rows with their embeddings, launch `kernel` once per internal batch
    with the global size (batch length, H), and read every state back (new ids)."""
    import pyopencl as cl

    hidden = int(weights["W"].shape[0])
    states = np.zeros((linearized.num_nodes, hidden), dtype=np.float32)
    leaves = slice(0, linearized.num_leaves)
    states[leaves] = np.asarray(weights["Emb"])[linearized.words[leaves]]
    flags = cl.mem_flags
    queue = device.queue

    def constant(array: Any, dtype: Any) -> Any:
        return cl.Buffer(device.context, flags.READ_ONLY | flags.COPY_HOST_PTR,
                         hostbuf=np.ascontiguousarray(array, dtype=dtype))

    w_buffer, b_buffer = constant(weights["W"], np.float32), constant(weights["b"], np.float32)
    c_buffer = constant(linearized.children, np.int32)
    h_buffer = cl.Buffer(device.context, flags.READ_WRITE | flags.COPY_HOST_PTR, hostbuf=states)
    for batch in range(linearized.num_batches):
        start = int(linearized.batch_start[batch])
        count = int(linearized.batch_len[batch])
        if start < linearized.num_leaves:
            continue
        kernel(queue, (count, hidden), None, w_buffer, b_buffer, h_buffer, c_buffer,
               np.int32(start), np.int32(hidden))
    cl.enqueue_copy(queue, states, h_buffer)
    queue.finish()
    return states


def check_exercise_5_2(treefc_level_kernel: Callable[[], str], program: Any,
                       weights: Mapping[str, np.ndarray], structures: Sequence[Any]) -> bool:
    """Your OpenCL kernel, launched once per internal batch, gives the interpreter's states."""
    def body() -> str:
        import pyopencl as cl

        from cortexlang.interp import interpret
        from cortexlang.runtime.devices import select_device
        from cortexlang.runtime.linearize import linearize

        source = treefc_level_kernel()
        if not isinstance(source, str):
            raise Wrong("return the kernel's OpenCL source as a str")
        device = select_device()
        try:
            built = cl.Program(device.context, source).build()
        except cl.Error as error:
            raise Wrong(f"the OpenCL compiler rejects the kernel:\n{error}") from None
        try:
            kernel = built.treefc_level
        except (AttributeError, cl.Error):
            raise Wrong("the source has no kernel named treefc_level") from None
        linearized = linearize(structures, max_children=2)
        weight_sets = {"the lesson's weights": dict(weights),
                       "weights 5x larger (tanh far from linear)":
                           strong_weights(program, seed=5, scale=5.0)}
        for label, chosen in weight_sets.items():
            states = _run_level_kernel(kernel, device, chosen, linearized)
            reference = interpret(program, structures, chosen, dtype=np.float64)
            _close(states[linearized.new_id], reference.states["h"],
                   f"{label}: state h of every node (input order)", rtol=1e-3, atol=1e-4)
        launches = int((linearized.batch_start >= linearized.num_leaves).sum())
        return (f"{linearized.num_nodes} nodes agree with the interpreter after {launches} "
                "launches of your kernel")
    return _run("5.2", "a TreeFC level kernel by hand", body)


# -- lesson 6 ---------------------------------------------------------------------------------

def check_exercise_6_1(median_ms: Callable[..., float]) -> bool:
    """Your timer calls the function warmup + repeats times, leaves the warm-up out, and
    returns the median in milliseconds (not the mean, the minimum or the maximum)."""
    def body() -> str:
        import time

        calls = []

        def slow_then_fast() -> None:
            # The first 4 calls are slow, as a first run that builds kernels is: more slow
            # calls than timed ones, so that a timer which times them cannot hide them.
            calls.append(None)
            time.sleep(0.04 if len(calls) <= 4 else 0.002)

        result = median_ms(slow_then_fast, warmup=4, repeats=3)
        if len(calls) != 7:
            raise Wrong(f"with warmup=4 and repeats=3 your function called fn {len(calls)} "
                        "times, not 7")
        if not isinstance(result, (int, float)):
            raise Wrong(f"return a number of milliseconds, not {type(result).__name__}")
        if result >= 20:
            raise Wrong(f"{result:.1f} ms: the slow warm-up calls are inside your measurement"
                        " (or the result is not in milliseconds)")
        if result < 1:
            raise Wrong(f"{result:.3f}: each timed call sleeps 2 ms; return milliseconds")
        calls.clear()
        durations = (0.030, 0.030, 0.120, 0.030, 0.001)   # median 30 ms, mean 42, last 1

        def uneven() -> None:
            calls.append(None)
            time.sleep(durations[(len(calls) - 1) % len(durations)])

        middle = median_ms(uneven, warmup=0, repeats=5)
        if not 25 <= middle <= 38:
            raise Wrong(f"{middle:.1f} ms for samples of about 30, 30, 120, 30 and 1 ms: that "
                        "is not their median (a mean? the smallest? the largest? the last?)")
        return f"warm-up left out; median {result:.2f} ms of calls sleeping 2 ms"
    return _run("6.1", "a timer that can be trusted", body)


def _beats(row: Any, other: Any) -> bool:
    """`row` is faster than `other` by the course's verdict (`timing.verdict`)."""
    from timing import verdict

    return verdict(row, other).kind == "faster"


def crossover_reference(results: Mapping[int, Mapping[str, Any]]) -> int | None:
    answer = None
    for hidden in sorted(results, reverse=True):
        if not _beats(results[hidden]["level"], results[hidden]["one group"]):
            break
        answer = hidden
    return answer


def _made_up(one_group: tuple[float, float, float],
             level: tuple[float, float, float]) -> dict[str, Any]:
    """Two rows of made-up samples (p10, median, p90 close to the given numbers)."""
    from timing import Timing

    def spread(low: float, middle: float, high: float) -> Timing:
        return Timing("made up", (low,) * 2 + (middle,) * 7 + (high,) * 2)
    return {"one group": spread(*one_group), "level": spread(*level)}


def check_exercise_6_2(crossover: Callable[[Mapping[int, Mapping[str, Any]]], int | None],
                       measured: Mapping[int, Mapping[str, Any]]) -> bool:
    """Your crossover is right on your measurements and on made-up tables with known
    answers (never, from the first size, one out of order, a lucky small size, a win within
    the noise)."""
    def body() -> str:
        made_up = [
            {8: _made_up((1, 1, 1.1), (2, 2, 2.1)), 64: _made_up((2, 2, 2.2), (3, 3, 3.3))},
            {8: _made_up((3, 3, 3.1), (2, 2, 2.1)), 64: _made_up((5, 5, 5.5), (1, 1, 1.1))},
            {256: _made_up((9, 9, 9.5), (4, 4, 4.5)), 16: _made_up((1, 1, 1.1), (2, 2, 2.2)),
             64: _made_up((2, 2, 2.1), (1.5, 1.5, 1.6))},
            {8: _made_up((1, 1, 1.1), (0.8, 0.9, 0.95)),
             32: _made_up((1, 1, 1.1), (1.1, 1.1, 1.2)),
             128: _made_up((3, 3, 3.2), (2, 2, 2.2))},
            # The level median is lower at 64, but the ranges overlap: not a win.
            {16: _made_up((2, 2, 2.4), (3, 3, 3.3)), 64: _made_up((2, 3, 4), (2.5, 2.8, 3.5))},
        ]
        for table in [*made_up, measured]:
            expected = crossover_reference(table)
            mine = crossover(table)
            if mine != expected:
                shown = {hidden: {name: f"{row.p10:.3g}/{row.median:.3g}/{row.p90:.3g} ms"
                                  for name, row in rows.items() if name in ("one group",
                                                                            "level")}
                         for hidden, rows in sorted(table.items())}
                raise Wrong(f"for {shown} (p10/median/p90) you answer {mine!r}; that is not "
                            "the smallest H from which the level strategy is faster than "
                            "one work-group by the course's verdict (`verdict(level, "
                            "one_group).kind == \"faster\"`) at that size and every larger "
                            "one")
        answer = crossover_reference(measured)
        return ("on this machine: " + (f"from H = {answer} on" if answer is not None else
                                       "not beyond the noise at the sizes measured"))
    return _run("6.2", "the research question: where do the strategies cross?", body)


def check_exercise_6_3(linearize_share: Callable[[Any], float], outputs: Sequence[Any]) -> bool:
    """Your share of the host time spent linearizing matches the run's own timings."""
    def body() -> str:
        for result in outputs:
            timings = result.timings
            expected = timings["linearize"] / (timings["prepare"] + timings["compute"])
            mine = linearize_share(result)
            if not isinstance(mine, (int, float)) or abs(mine - expected) > 1e-9:
                raise Wrong(f"timings {timings}: you give {mine!r}, the share is "
                            f"{'larger' if mine < expected else 'smaller'}")
        return f"right for {len(outputs)} runs"
    return _run("6.3", "how much of a run is linearization", body)

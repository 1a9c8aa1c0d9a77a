"""Every baseline agrees with the numpy node-by-node one, which follows the equations.

The structures are small: random binary trees with shuffled node ids (made here), and from
the project's generators a single leaf, left- and right-deep caterpillars, a chain (every
node one child, the other missing) and grids for the DAG-RNN. The numpy reference is itself
checked against a recursive evaluation written straight from the equations, on every
structure of every batch. The OpenCL GEMM kernel and the quick machine measurement are
checked at the end (correctness only; speeds belong to the benchmarks).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from benchmarks.baselines.common import (
    MODELS,
    OUTPUT_NAMES,
    canonical_model,
    plan_levels,
    random_weights,
)
from benchmarks.baselines.numpy_nodes import make_numpy_nodes
from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure

HIDDEN = 8
VOCABULARY = 50
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_JAX = importlib.util.find_spec("jax") is not None


def tree(children: list[list[int]], root: int, rng: np.random.Generator) -> Structure:
    array = np.array(children, dtype=np.int32).reshape(-1, 2)
    words = rng.integers(0, VOCABULARY, size=len(children)).astype(np.int32)
    words[(array >= 0).any(axis=1)] = -1
    return Structure(children=array, words=words, root=root)


def random_tree(leaves: int, rng: np.random.Generator) -> Structure:
    """A random binary tree over `leaves` leaves, node ids shuffled."""
    children: list[list[int]] = [[-1, -1] for _ in range(leaves)]
    frontier = list(range(leaves))
    while len(frontier) > 1:
        at = int(rng.integers(0, len(frontier) - 1))
        children.append([frontier[at], frontier[at + 1]])
        frontier[at:at + 2] = [len(children) - 1]
    permutation = rng.permutation(len(children))
    renumbered = [[-1, -1] for _ in children]
    for old, kids in enumerate(children):
        renumbered[permutation[old]] = [permutation[k] if k >= 0 else -1 for k in kids]
    return tree(renumbered, int(permutation[frontier[0]]), rng)


def grid(rows: int, columns: int, rng: np.random.Generator) -> Structure:
    return generators.grid(rows, columns, HIDDEN, rng)


def batches(model: str) -> dict[str, list[Structure]]:
    """Few batches, each mixing shapes, so that the JAX tests compile few shapes."""
    rng = np.random.default_rng(7)
    if model == "dagrnn":
        return {"grid 1x1": [grid(1, 1, rng)],
                "grids mixed": [grid(3, 4, rng), grid(1, 5, rng), grid(4, 4, rng),
                                grid(5, 1, rng)]}
    leaf = generators.single_leaf(rng, vocab_size=VOCABULARY)
    return {"single leaf": [leaf],
            "mixed batch": [random_tree(13, rng), leaf,
                            generators.skewed(6, "left", rng, vocab_size=VOCABULARY),
                            generators.skewed(4, "right", rng, vocab_size=VOCABULARY),
                            generators.chain(5, rng, vocab_size=VOCABULARY),
                            random_tree(2, rng), random_tree(20, rng)]}


def weights_for(model: str) -> dict[str, np.ndarray]:
    # A larger scale than the protocol's 0.1 so that the gates are not all near 0.5.
    return random_weights(model, HIDDEN, VOCABULARY, seed=3, scale=0.5)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def direct(model: str, weights: dict[str, np.ndarray], structure: Structure,
           node: int) -> tuple[np.ndarray, ...]:
    """Recursive evaluation straight from the equations, for one node of one structure."""
    w = weights
    hid = HIDDEN
    left, right = (int(k) for k in structure.children[node])
    if model == "dagrnn":
        zero = (np.zeros(hid, np.float32),)
        h_left = direct(model, w, structure, left) if left >= 0 else zero
        h_up = direct(model, w, structure, right) if right >= 0 else zero
        x = structure.features[node]
        return (np.tanh(w["U"] @ x + w["W"] @ (h_left[0] + h_up[0]) + w["b"]),)
    word = int(structure.words[node])
    if left < 0 and right < 0:
        e = w["Emb"][word]
        if model == "treefc":
            return (e,)
        if model == "treegru":
            z, u = np.split(w["W_leaf"] @ e + w["b_leaf"], 2)
            return ((1 - sigmoid(z)) * np.tanh(u),)
        if model == "treelstm":
            i, o, u = np.split(w["W_leaf"] @ e + w["b_leaf"], 3)
            c = sigmoid(i) * np.tanh(u)
            return (sigmoid(o) * np.tanh(c), c)
        return (e, w["EmbM"][word % 32])
    sizes = {"treefc": 1, "treegru": 1, "treelstm": 2, "mvrnn": 2}[model]
    zero = (np.zeros(hid, np.float32), np.zeros((hid, hid), np.float32))
    if model == "treelstm":
        zero = (np.zeros(hid, np.float32),) * 2
    lhs = direct(model, w, structure, left) if left >= 0 else zero[:sizes]
    rhs = direct(model, w, structure, right) if right >= 0 else zero[:sizes]
    if model == "treefc":
        return (np.tanh(w["W"] @ (lhs[0] + rhs[0]) + w["b"]),)
    if model == "treegru":
        h_l, h_r = lhs[0], rhs[0]
        z, r_l, r_r = np.split(sigmoid(w["U_g"] @ np.concatenate([h_l, h_r]) + w["b_g"]), 3)
        u = np.tanh(w["U_h"] @ np.concatenate([r_l * h_l, r_r * h_r]) + w["b_h"])
        return (z * (h_l + h_r) / 2 + (1 - z) * u,)
    if model == "treelstm":
        (h_l, c_l), (h_r, c_r) = lhs, rhs
        i, f_l, f_r, o, u = np.split(w["U"] @ np.concatenate([h_l, h_r]) + w["b"], 5)
        c = sigmoid(i) * np.tanh(u) + sigmoid(f_l) * c_l + sigmoid(f_r) * c_r
        return (sigmoid(o) * np.tanh(c), c)
    (a, a_mat), (b, b_mat) = lhs, rhs
    p = np.tanh(w["W"] @ np.concatenate([b_mat @ a, a_mat @ b]) + w["b_W"])
    return (p, w["W_M"] @ np.concatenate([a_mat, b_mat]))


@pytest.mark.parametrize("model", MODELS)
def test_numpy_reference_follows_the_equations(model: str) -> None:
    weights = weights_for(model)
    for name, structures in batches(model).items():
        outputs = make_numpy_nodes(model, weights, HIDDEN)(structures)
        for index, structure in enumerate(structures):
            expected = direct(model, weights, structure, structure.root)
            for key, value in zip(OUTPUT_NAMES[model], expected, strict=True):
                np.testing.assert_allclose(outputs[key][index], value, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{model} {name} {key}")


def test_level_plan_is_topological_and_covers_every_node() -> None:
    rng = np.random.default_rng(1)
    structures = [random_tree(11, rng), generators.chain(4, rng), grid(3, 3, rng)]
    plan = plan_levels(structures)
    assert plan.num_rows == 1 + sum(s.num_nodes for s in structures)
    assert plan.bounds[0] == 1 and plan.bounds[-1] == plan.num_rows
    level_of = np.zeros(plan.num_rows, dtype=np.int64)
    for level in range(plan.num_levels):
        level_of[plan.bounds[level]:plan.bounds[level + 1]] = level
    for row in range(1, plan.num_rows):
        kids = [k for k in plan.children[row] if k > 0]
        assert all(level_of[k] < level_of[row] for k in kids)
        if kids:
            assert level_of[row] == 1 + max(level_of[k] for k in kids)


def implementations() -> list[object]:
    params: list[object] = []
    marks_torch = [pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")]
    marks_jax = [pytest.mark.skipif(not HAVE_JAX, reason="jax is not installed")]
    params.append(pytest.param("torch_eager", marks=marks_torch))
    params.append(pytest.param("torch_level", marks=marks_torch))
    params.append(pytest.param("jax_level", marks=marks_jax))
    return params


def make(implementation: str, model: str, weights: dict[str, np.ndarray]):  # noqa: ANN201
    module = importlib.import_module(f"benchmarks.baselines.{implementation}")
    return getattr(module, f"make_{implementation}")(model, weights, HIDDEN)


@pytest.mark.parametrize("implementation", implementations())
@pytest.mark.parametrize("model", MODELS)
def test_baseline_agrees_with_numpy_node_by_node(implementation: str, model: str) -> None:
    weights = weights_for(model)
    reference = make_numpy_nodes(model, weights, HIDDEN)
    baseline = make(implementation, model, weights)
    for name, structures in batches(model).items():
        expected = reference(structures)
        prepared = baseline.prepare(structures)
        for attempt in range(2):  # the second run reuses whatever the first one cached
            got = baseline.run(prepared)
            assert sorted(got) == sorted(OUTPUT_NAMES[model])
            for key in OUTPUT_NAMES[model]:
                assert got[key].shape == expected[key].shape, (name, key)
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5,
                                           err_msg=f"{implementation} {model} {name} {key} "
                                                   f"run {attempt}")


def torch_devices() -> list[object]:
    have_cuda = HAVE_TORCH and __import__("torch").cuda.is_available()
    return [pytest.param("cpu", marks=pytest.mark.skipif(not HAVE_TORCH,
                                                         reason="torch is not installed")),
            pytest.param("cuda", marks=pytest.mark.skipif(not have_cuda,
                                                          reason="no CUDA device"))]


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("implementation", ["torch_eager", "torch_level"])
@pytest.mark.parametrize("model", MODELS)
def test_torch_baselines_on_a_named_device_agree(implementation: str, model: str,
                                                 device: str) -> None:
    """The device option (the GPU check runs these on CUDA): same roots as numpy."""
    from benchmarks.baselines import make_baseline

    weights = weights_for(model)
    reference = make_numpy_nodes(model, weights, HIDDEN)
    baseline = make_baseline(implementation, model, weights, HIDDEN, device=device)
    assert ("intra-op threads" in baseline.notes) == (device == "cpu")
    for name, structures in batches(model).items():
        expected = reference(structures)
        got = baseline(structures)
        for key in OUTPUT_NAMES[model]:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5,
                                       err_msg=f"{implementation} {model} {name} {key} "
                                               f"on {device}")


def test_only_the_torch_baselines_take_a_device() -> None:
    from benchmarks.baselines import make_baseline

    with pytest.raises(ValueError, match="CPU only"):
        make_baseline("numpy_nodes", "treefc", weights_for("treefc"), HIDDEN, device="cuda")


def test_model_names_are_canonicalised() -> None:
    assert canonical_model("TreeLSTM") == "treelstm"
    assert canonical_model("MV-RNN") == "mvrnn"
    assert canonical_model("DAG-RNN") == "dagrnn"
    with pytest.raises(ValueError):
        canonical_model("transformer")


# The OpenCL GEMM kernel of benchmarks.gemm (the seed of the compiler's fast kernels) and the
# machine measurement: correctness only; their speed is reported by the benchmarks.

def opencl_device():  # noqa: ANN201
    pytest.importorskip("pyopencl")
    from cortexlang.errors import EnvironmentProblem
    from cortexlang.runtime.devices import select_device
    try:
        return select_device()
    except EnvironmentProblem as problem:
        pytest.skip(f"no working OpenCL device: {problem}")


@pytest.mark.parametrize("rows, vectors, width, packed_a, unroll, local", [
    (1, 2, 16, False, 1, (1, 1)), (4, 2, 16, False, 4, None), (6, 2, 8, True, 1, (1, 1)),
    (8, 1, 16, True, 3, None), (3, 4, 4, False, 2, (2, 2)), (3, 1, 8, True, 4, None)])
def test_gemm_kernel_matches_numpy(rows: int, vectors: int, width: int, packed_a: bool,
                                   unroll: int, local: tuple[int, int] | None) -> None:
    from benchmarks.gemm import GemmConfig, time_gemm
    device = opencl_device()
    rng = np.random.default_rng(5)
    config = GemmConfig(rows, vectors, width, packed_a, unroll, local)
    for m, k, n in ((1, 8, 16), (7, 25, 40), (10, 64, 100)):
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        timing = time_gemm(device, config, a, b, warmup=0, repeats=1)
        assert timing.max_error < 1e-5, (config, m, k, n)


def test_measure_machine_quick_reports_positive_limits() -> None:
    from benchmarks.machine import measure_machine
    limits = measure_machine(opencl_device(), quick=True)
    for value in (limits.peak_gflops, limits.fma_peak_gflops, limits.bandwidth_gbs,
                  limits.read_bandwidth_gbs, limits.numpy_copy_gbs, limits.launch_wait_us,
                  limits.enqueue_us, limits.numpy_sgemm_gflops):
        assert value > 0
    assert limits.quick and limits.device_name

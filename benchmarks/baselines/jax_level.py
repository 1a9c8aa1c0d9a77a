"""The JAX batched-by-level baseline under `jax.jit`.

The nodes are renumbered by level exactly as for the PyTorch level baseline (row 0 is the zero
state, each level a contiguous range of rows). Every jitted function sees only bucketed
shapes, so a new batch rarely compiles anything new:

- level widths are rounded up to a bucket (1, 2, 3, 4, 6, 8, 12, 16, 24, ...: at most 1.5x
  padding); padded nodes read the zero row and write rows past the level's end, rows that a
  later level (or the spare tail of the state) overwrites, so no masking is needed;
- the state's row count is rounded up the same way, with room for the last padded write.

Two ways to run the levels are provided (`mode`):

- "level" (the default): one jitted call per level, states donated so XLA updates them in
  place;
- "scan": consecutive levels that share a width bucket run as one `lax.scan` inside one
  jitted call (its length also bucketed; padded steps write to the spare tail), so a batch
  costs one call per distinct bucket instead of one per level. It saves dispatches (about
  5 us each) but XLA runs the products inside the loop no faster, and on SST batches of 10
  it measured slower than "level", so it is kept as an option only.

Leaf work (or the DAG-RNN's input product U x + b for all cells) and the allocation of the
zeroed state are one jitted call; gathering the roots is one more. Compilation happens in
`prepare` (one untimed run of a batch whose shapes are new), is excluded from the timed
`run`, and its time is added up in the returned baseline's `compile_seconds`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from benchmarks.baselines.common import (
    NUM_WORD_MATRICES,
    OUTPUT_NAMES,
    Baseline,
    LevelPlan,
    canonical_model,
    cell_inputs,
    plan_levels,
    require_features,
)
from cortexlang.inputs.structure import Structure

try:
    import jax
    import jax.numpy as jnp
    from jax import lax
except ImportError:  # pragma: no cover - exercised only where jax is missing
    jax = None  # type: ignore[assignment]


def bucket(n: int) -> int:
    """Round n up to a bucket: exact up to 8, then 4 buckets per octave (10, 12, 14, 16, 20,
    24, 28, 32, 40, ...), so padding wastes at most 25% and a batch meets few new shapes."""
    if n <= 8:
        return max(n, 1)
    step = 1 << (math.floor(math.log2(n - 1)) - 2)
    return -(-n // step) * step


# Each model is three pure functions:
#   init(params, words, context_inputs, num_rows) -> (states, context)
#   step(params, states, context, children [n, 2], start) -> states with rows start.. written
#   roots(states, rows) -> outputs

def _write(states: tuple[Any, ...], rows: tuple[Any, ...], start: Any) -> tuple[Any, ...]:
    return tuple(lax.dynamic_update_slice_in_dim(state, new, start, axis=0)
                 for state, new in zip(states, rows, strict=True))


def _zeros(num_rows: int, *shapes: tuple[int, ...]) -> tuple[Any, ...]:
    return tuple(jnp.zeros((num_rows, *shape), jnp.float32) for shape in shapes)


def _pairs(state: Any, children: Any) -> Any:
    """Both children's rows of every node in one gather: [n, 2, ...] (left, right)."""
    n = children.shape[0]
    return state[children.reshape(-1)].reshape(n, 2, *state.shape[1:])


def _treefc_init(params: dict, words: Any, features: Any, num_rows: int, hid: int) -> Any:
    (h,) = _zeros(num_rows, (hid,))
    return _write((h,), (params["Emb"][words],), 1), None


def _treefc_step(params: dict, states: tuple, context: Any, children: Any, start: Any,
                 hid: int) -> tuple:
    (h,) = states
    both = _pairs(h, children).sum(axis=1)
    return _write(states, (jnp.tanh(both @ params["W_t"] + params["b"]),), start)


def _treegru_init(params: dict, words: Any, features: Any, num_rows: int, hid: int) -> Any:
    (h,) = _zeros(num_rows, (hid,))
    zu = params["Emb"][words] @ params["W_leaf_t"] + params["b_leaf"]
    leaf = (1.0 - jax.nn.sigmoid(zu[:, :hid])) * jnp.tanh(zu[:, hid:])
    return _write((h,), (leaf,), 1), None


def _treegru_step(params: dict, states: tuple, context: Any, children: Any, start: Any,
                  hid: int) -> tuple:
    (h,) = states
    pairs = _pairs(h, children)
    h_lr = pairs.reshape(pairs.shape[0], 2 * hid)
    gates = jax.nn.sigmoid(h_lr @ params["U_g_t"] + params["b_g"])
    z = gates[:, :hid]
    u = jnp.tanh((gates[:, hid:] * h_lr) @ params["U_h_t"] + params["b_h"])
    return _write(states, (z * pairs.sum(axis=1) * 0.5 + (1.0 - z) * u,), start)


def _treelstm_init(params: dict, words: Any, features: Any, num_rows: int, hid: int) -> Any:
    h, c = _zeros(num_rows, (hid,), (hid,))
    iou = params["Emb"][words] @ params["W_leaf_t"] + params["b_leaf"]
    cell = jax.nn.sigmoid(iou[:, :hid]) * jnp.tanh(iou[:, 2 * hid:])
    leaf_h = jax.nn.sigmoid(iou[:, hid:2 * hid]) * jnp.tanh(cell)
    return _write((h, c), (leaf_h, cell), 1), None


def _treelstm_step(params: dict, states: tuple, context: Any, children: Any, start: Any,
                   hid: int) -> tuple:
    h, c = states
    n = children.shape[0]
    gates = _pairs(h, children).reshape(n, 2 * hid) @ params["U_t"] + params["b"]
    ifo = jax.nn.sigmoid(gates[:, :4 * hid])
    forget = (ifo[:, hid:3 * hid].reshape(n, 2, hid) * _pairs(c, children)).sum(axis=1)
    cell = ifo[:, :hid] * jnp.tanh(gates[:, 4 * hid:]) + forget
    return _write(states, (ifo[:, 3 * hid:] * jnp.tanh(cell), cell), start)


def _mvrnn_init(params: dict, words: Any, features: Any, num_rows: int, hid: int) -> Any:
    p, m = _zeros(num_rows, (hid,), (hid, hid))
    leaf = (params["Emb"][words], params["EmbM"][words % NUM_WORD_MATRICES])
    return _write((p, m), leaf, 1), None


def _mvrnn_step(params: dict, states: tuple, context: Any, children: Any, start: Any,
                hid: int) -> tuple:
    p, m = states
    n = children.shape[0]
    vectors, matrices = _pairs(p, children), _pairs(m, children)
    # [B a; A b]: matrix of each child times the vector of the other one.
    products = jnp.einsum("ncij,ncj->nci", matrices[:, ::-1], vectors).reshape(n, 2 * hid)
    vector = jnp.tanh(products @ params["W_t"] + params["b_W"])
    matrix = jnp.einsum("ik,nkj->nij", params["W_M"], matrices.reshape(n, 2 * hid, hid))
    return _write(states, (vector, matrix), start)


def _dagrnn_init(params: dict, words: Any, features: Any, num_rows: int, hid: int) -> Any:
    (h,) = _zeros(num_rows, (hid,))
    return (h,), features @ params["U_t"] + params["b"]


def _dagrnn_step(params: dict, states: tuple, context: Any, children: Any, start: Any,
                 hid: int) -> tuple:
    (h,) = states
    inputs = lax.dynamic_slice_in_dim(context, start, children.shape[0], axis=0)
    both = _pairs(h, children).sum(axis=1)
    return _write(states, (jnp.tanh(inputs + both @ params["W_t"]),), start)


_MODELS: dict[str, tuple[Callable, Callable]] = {
    "treefc": (_treefc_init, _treefc_step), "treegru": (_treegru_init, _treegru_step),
    "treelstm": (_treelstm_init, _treelstm_step), "mvrnn": (_mvrnn_init, _mvrnn_step),
    "dagrnn": (_dagrnn_init, _dagrnn_step)}


@dataclass(frozen=True)
class JaxLevels:
    """A batch ready for the jitted level loop: device arrays with bucketed shapes.

    groups: per jitted call after init: (children [L, n, 2], starts [L]) for "scan" mode,
            or (children [n, 2], start) for "level" mode.
    """

    num_rows: int
    words: Any
    features: Any
    groups: tuple[tuple[Any, Any], ...]
    roots: Any
    num_structures: int


@dataclass
class JaxLevelBaseline(Baseline):
    compile_seconds: float = 0.0
    compiled_shapes: set = field(default_factory=set)


def _level_groups(plan: LevelPlan, first_level: int, mode: str
                  ) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Split the levels into jitted calls; return the groups and the rows the state needs."""
    runs: list[list[int]] = []
    for level in range(first_level, plan.num_levels):
        width = bucket(plan.bounds[level + 1] - plan.bounds[level])
        same = runs and mode == "scan" and bucket(
            plan.bounds[runs[-1][-1] + 1] - plan.bounds[runs[-1][-1]]) == width
        if same:
            runs[-1].append(level)
        else:
            runs.append([level])
    spare = plan.num_rows   # padded steps and padded nodes write at or after this row
    groups = []
    needed = plan.num_rows
    for run in runs:
        width = bucket(plan.bounds[run[0] + 1] - plan.bounds[run[0]])
        length = bucket(len(run)) if mode == "scan" else 1
        children = np.zeros((length, width, 2), dtype=np.int32)
        starts = np.full(length, spare, dtype=np.int32)
        for step, level in enumerate(run):
            start, end = plan.bounds[level], plan.bounds[level + 1]
            children[step, :end - start] = plan.children[start:end]
            starts[step] = start
            needed = max(needed, start + width)
        if length > len(run):
            needed = max(needed, spare + width)
        groups.append((children, starts))
    return groups, needed


def make_jax_level(model: str, weights: dict[str, np.ndarray], H: int,
                   mode: str = "level") -> JaxLevelBaseline:
    """JAX with jit, all nodes of a level at once, bucketed shapes; see the module docstring."""
    if jax is None:
        raise ImportError("jax is not installed")
    if mode not in ("scan", "level"):
        raise ValueError("mode must be 'scan' or 'level'")
    model = canonical_model(model)
    params = {name: jnp.asarray(np.asarray(value, dtype=np.float32))
              for name, value in weights.items()}
    # Every matrix that multiplies a batch of rows is stored transposed, [in, out], so each
    # product is a plain `rows @ W_t` (XLA then needs no transpose of a constant operand).
    params.update({f"{name}_t": jnp.asarray(np.ascontiguousarray(np.asarray(value).T))
                   for name, value in weights.items()
                   if name in ("W", "W_leaf", "U", "U_g", "U_h")})
    init_body, step_body = _MODELS[model]
    step = partial(step_body, hid=H)

    @partial(jax.jit, static_argnames=("num_rows",))
    def init(params: dict, words: Any, features: Any, num_rows: int) -> Any:
        return init_body(params, words, features, num_rows, H)

    @partial(jax.jit, donate_argnums=(1,))
    def run_level(params: dict, states: tuple, context: Any, children: Any, start: Any
                  ) -> tuple:
        return step(params, states, context, children, start)

    @partial(jax.jit, donate_argnums=(1,))
    def run_scan(params: dict, states: tuple, context: Any, children: Any, starts: Any
                 ) -> tuple:
        def body(carry: tuple, level: tuple) -> tuple:
            return step(params, carry, context, level[0], level[1]), None
        return lax.scan(body, states, (children, starts))[0]

    @jax.jit
    def take_roots(states: tuple, roots: Any) -> tuple:
        return tuple(state[roots] for state in states)

    def execute(batch: JaxLevels) -> dict[str, np.ndarray]:
        states, context = init(params, batch.words, batch.features, num_rows=batch.num_rows)
        run_group = run_scan if mode == "scan" else run_level
        for children, starts in batch.groups:
            states = run_group(params, states, context, children, starts)
        outputs = take_roots(states, batch.roots)
        return {name: np.asarray(value)[:batch.num_structures]
                for name, value in zip(OUTPUT_NAMES[model], outputs, strict=True)}

    def prepare(structures: Sequence[Structure]) -> JaxLevels:
        plan = plan_levels(structures)
        require_features(model, plan)
        first_level = 0 if model == "dagrnn" else 1
        groups, needed = _level_groups(plan, first_level, mode)
        num_rows = bucket(needed)
        if model == "dagrnn":
            words = jnp.zeros(0, jnp.int32)
            inputs = cell_inputs(plan)
            padded_features = np.zeros((num_rows, inputs.shape[1]), np.float32)
            padded_features[:plan.num_rows] = inputs
            features = jnp.asarray(padded_features)
        else:
            leaves = plan.words[plan.bounds[0]:plan.bounds[1]].astype(np.int32)
            padded = np.zeros(bucket(len(leaves)), dtype=np.int32)
            padded[:len(leaves)] = leaves
            num_rows = bucket(max(needed, 1 + len(padded)))
            words = jnp.asarray(padded)
            features = jnp.zeros(0, jnp.float32)
        if mode == "level":
            device_groups = tuple((jnp.asarray(children[0]), jnp.asarray(starts[0]))
                                  for children, starts in groups)
        else:
            device_groups = tuple((jnp.asarray(children), jnp.asarray(starts))
                                  for children, starts in groups)
        roots = np.zeros(bucket(len(plan.roots)), dtype=np.int32)
        roots[:len(plan.roots)] = plan.roots
        batch = JaxLevels(num_rows, words, features, device_groups, jnp.asarray(roots),
                          len(plan.roots))
        signature = (num_rows, words.shape, features.shape, roots.shape,
                     tuple(children.shape for children, _ in device_groups))
        if signature not in baseline.compiled_shapes:
            started = time.perf_counter()
            execute(batch)      # compiles whatever this batch's shapes still need
            baseline.compile_seconds += time.perf_counter() - started
            baseline.compiled_shapes.add(signature)
        return batch

    baseline = JaxLevelBaseline(
        f"jax batched by level ({mode})", model, prepare, execute,
        notes=f"jax {jax.__version__}, jit, bucketed level widths, mode={mode}")
    return baseline

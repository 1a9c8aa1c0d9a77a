"""The PyTorch batched-by-level baseline: what a careful user writes by hand.

`prepare` merges the batch's structures, renumbers the nodes so that each height level is a
contiguous range of rows (row 0 is the zero state a missing child reads) and turns the child
tables into index tensors. The timed `run` then does, per level, one `index_select` that
gathers both children of every node of the level (the left and right rows interleaved, so
that a view of the result is already the concatenation [h_l; h_r] per node), one matrix
product for all nodes of the level with the bias fused (`addmm`), the element-wise gate
arithmetic, and writes the level's rows of the state tensor in place (`out=` a slice).

Further choices that keep it strong: `torch.inference_mode()`; PyTorch's default intra-op
threads (2 here); weights transposed once into contiguous [in, out] copies (MKL multiplies
those about 10% faster than a transposed view); state tensors kept between calls
(re-allocating the MV-RNN's matrix state, N x H x H floats, on every call costs page
faults); the DAG-RNN's input product `U x + b` done for all cells in one product before
the levels, since it does not depend on the recursion. MV-RNN's two per-child products
(B a and A b) are one `bmm` over the level.

`device="cuda"` runs it on a GPU: weights and state tensors live there, `prepare` moves the
batch's index tensors and features there (outside the timed call), and `run` synchronises
before it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from benchmarks.baselines.common import (
    NUM_WORD_MATRICES,
    Baseline,
    LevelPlan,
    canonical_model,
    plan_levels,
    require_features,
)
from benchmarks.baselines.torch_eager import device_name, synchronize, torch_device
from cortexlang.inputs.structure import Structure

try:
    import torch
except ImportError:  # pragma: no cover - exercised only where torch is missing
    torch = None  # type: ignore[assignment]


@dataclass(frozen=True)
class TorchLevels:
    """A batch ready for the level loop.

    leaf_words:     word ids of level 0's rows (trees), int64.
    leaf_matrices:  word ids modulo 32 of level 0's rows (MV-RNN), int64.
    levels:         per level from 1 (trees) or 0 (grids): (first row, end row, children)
                    where children is int64 [2 n] = left0, right0, left1, right1, ...
    swapped:        the same per level with each pair as right, left (MV-RNN).
    features:       float32 [num_rows, X] (grids) or None.
    """

    num_rows: int
    leaf_end: int
    leaf_words: torch.Tensor
    leaf_matrices: torch.Tensor
    levels: tuple[tuple[int, int, torch.Tensor], ...]
    swapped: tuple[torch.Tensor, ...]
    roots: torch.Tensor
    features: torch.Tensor | None


def prepare_levels(model: str, structures: Sequence[Structure]) -> TorchLevels:
    """Per-batch host work: level plan and index tensors."""
    plan: LevelPlan = plan_levels(structures)
    require_features(model, plan)
    first_level = 0 if model == "dagrnn" else 1
    levels = []
    swapped = []
    for level in range(first_level, plan.num_levels):
        start, end = plan.bounds[level], plan.bounds[level + 1]
        pairs = plan.children[start:end]
        levels.append((start, end, torch.from_numpy(pairs.reshape(-1).copy())))
        swapped.append(torch.from_numpy(pairs[:, ::-1].reshape(-1).copy()))
    leaf_words = plan.words[plan.bounds[0]:plan.bounds[1]]
    features = None if plan.features is None else torch.from_numpy(plan.features)
    return TorchLevels(plan.num_rows, plan.bounds[1], torch.from_numpy(leaf_words.copy()),
                       torch.from_numpy(leaf_words % NUM_WORD_MATRICES),
                       tuple(levels), tuple(swapped), torch.from_numpy(plan.roots), features)


def levels_on(batch: TorchLevels, target: torch.device) -> TorchLevels:
    """The same batch with every tensor on `target`."""
    def move(value: object) -> object:
        if isinstance(value, torch.Tensor):
            return value.to(target)
        if isinstance(value, tuple):
            return tuple(move(item) for item in value)
        return value
    return replace(batch, **{f.name: move(getattr(batch, f.name)) for f in fields(batch)})


class StateBuffers:
    """Reusable state tensors, grown when a batch needs more rows; row 0 is kept zero."""

    def __init__(self, *row_shapes: tuple[int, ...], device: torch.device | None = None
                 ) -> None:
        self.row_shapes = row_shapes
        self.device = device
        self.tensors: list[torch.Tensor] = []

    def get(self, num_rows: int) -> list[torch.Tensor]:
        if not self.tensors or self.tensors[0].shape[0] < num_rows:
            self.tensors = [torch.zeros((num_rows, *shape), device=self.device)
                            for shape in self.row_shapes]
        return self.tensors


Run = Callable[[TorchLevels], dict[str, "torch.Tensor"]]


def weights_device(weights: dict[str, torch.Tensor]) -> torch.device:
    """The device the weights (and so the states) live on."""
    return next(iter(weights.values())).device


def _treefc(weights: dict[str, torch.Tensor], hid: int) -> Run:
    emb, w_t, b = weights["Emb"], weights["W_t"], weights["b"]
    buffers = StateBuffers((hid,), device=weights_device(weights))

    def run(batch: TorchLevels) -> dict[str, torch.Tensor]:
        (h,) = buffers.get(batch.num_rows)
        torch.index_select(emb, 0, batch.leaf_words, out=h[1:batch.leaf_end])
        for start, end, children in batch.levels:
            n = end - start
            both = h.index_select(0, children).view(n, 2, hid).sum(1)
            torch.tanh(torch.addmm(b, both, w_t), out=h[start:end])
        return {"h": h.index_select(0, batch.roots)}
    return run


def _treegru(weights: dict[str, torch.Tensor], hid: int) -> Run:
    emb, w_leaf_t, b_leaf = weights["Emb"], weights["W_leaf_t"], weights["b_leaf"]
    u_g_t, b_g = weights["U_g_t"], weights["b_g"]
    u_h_t, b_h = weights["U_h_t"], weights["b_h"]
    buffers = StateBuffers((hid,), device=weights_device(weights))

    def run(batch: TorchLevels) -> dict[str, torch.Tensor]:
        (h,) = buffers.get(batch.num_rows)
        zu = torch.addmm(b_leaf, emb.index_select(0, batch.leaf_words), w_leaf_t)
        torch.mul(torch.sigmoid(zu[:, :hid].neg_()), zu[:, hid:].tanh_(),
                  out=h[1:batch.leaf_end])
        for start, end, children in batch.levels:
            n = end - start
            h_lr = h.index_select(0, children).view(n, 2 * hid)
            gates = torch.addmm(b_g, h_lr, u_g_t).sigmoid_()
            u = torch.addmm(b_h, gates[:, hid:] * h_lr, u_h_t).tanh_()
            mean = h_lr.view(n, 2, hid).sum(1).mul_(0.5).sub_(u)
            torch.addcmul(u, gates[:, :hid], mean, out=h[start:end])
        return {"h": h.index_select(0, batch.roots)}
    return run


def _treelstm(weights: dict[str, torch.Tensor], hid: int) -> Run:
    emb, w_leaf_t, b_leaf = weights["Emb"], weights["W_leaf_t"], weights["b_leaf"]
    u_t, b_all = weights["U_t"], weights["b"]
    buffers = StateBuffers((hid,), (hid,), device=weights_device(weights))

    def run(batch: TorchLevels) -> dict[str, torch.Tensor]:
        h, c = buffers.get(batch.num_rows)
        leaves = slice(1, batch.leaf_end)
        iou = torch.addmm(b_leaf, emb.index_select(0, batch.leaf_words), w_leaf_t)
        io = iou[:, :2 * hid].sigmoid_()
        torch.mul(io[:, :hid], iou[:, 2 * hid:].tanh_(), out=c[leaves])
        torch.mul(io[:, hid:], torch.tanh(c[leaves]), out=h[leaves])
        for start, end, children in batch.levels:
            n = end - start
            gates = torch.addmm(b_all, h.index_select(0, children).view(n, 2 * hid), u_t)
            c_lr = c.index_select(0, children).view(n, 2 * hid)
            ifo = gates[:, :4 * hid].sigmoid_()
            forget = (ifo[:, hid:3 * hid] * c_lr).view(n, 2, hid).sum(1)
            cell = torch.addcmul(forget, ifo[:, :hid], gates[:, 4 * hid:].tanh_(),
                                 out=c[start:end])
            torch.mul(ifo[:, 3 * hid:], torch.tanh(cell), out=h[start:end])
        return {"h": h.index_select(0, batch.roots), "c": c.index_select(0, batch.roots)}
    return run


def _mvrnn(weights: dict[str, torch.Tensor], hid: int) -> Run:
    emb, emb_m, b_w, w_m = weights["Emb"], weights["EmbM"], weights["b_W"], weights["W_M"]
    # [B a; A b] is computed as [A b; B a] (one bmm over the pairs in stored order), so the
    # two column blocks of W are swapped once here to match.
    w_swapped_t = torch.cat((weights["W"][:, hid:], weights["W"][:, :hid]), dim=1).t()
    w_swapped_t = w_swapped_t.contiguous()
    buffers = StateBuffers((hid,), (hid, hid), device=weights_device(weights))

    def run(batch: TorchLevels) -> dict[str, torch.Tensor]:
        p, m = buffers.get(batch.num_rows)
        torch.index_select(emb, 0, batch.leaf_words, out=p[1:batch.leaf_end])
        torch.index_select(emb_m, 0, batch.leaf_matrices, out=m[1:batch.leaf_end])
        for (start, end, children), swapped in zip(batch.levels, batch.swapped, strict=True):
            n = end - start
            matrices = m.index_select(0, children)                 # [2n, H, H]: A, B
            vectors = p.index_select(0, swapped).unsqueeze(2)      # [2n, H, 1]: b, a
            products = torch.bmm(matrices, vectors).view(n, 2 * hid)   # [A b; B a]
            torch.tanh(torch.addmm(b_w, products, w_swapped_t), out=p[start:end])
            torch.matmul(w_m, matrices.view(n, 2 * hid, hid), out=m[start:end])
        return {"p": p.index_select(0, batch.roots), "P": m.index_select(0, batch.roots)}
    return run


def _dagrnn(weights: dict[str, torch.Tensor], hid: int) -> Run:
    u_t, w_t, b = weights["U_t"], weights["W_t"], weights["b"]
    buffers = StateBuffers((hid,), device=weights_device(weights))

    def run(batch: TorchLevels) -> dict[str, torch.Tensor]:
        (h,) = buffers.get(batch.num_rows)
        assert batch.features is not None, "prepare_levels checked the DAG-RNN's inputs"
        inputs = torch.addmm(b, batch.features, u_t)
        for start, end, children in batch.levels:
            n = end - start
            both = h.index_select(0, children).view(n, 2, hid).sum(1)
            torch.tanh(torch.addmm(inputs[start:end], both, w_t), out=h[start:end])
        return {"h": h.index_select(0, batch.roots)}
    return run


_BUILDERS = {"treefc": _treefc, "treegru": _treegru, "treelstm": _treelstm,
             "mvrnn": _mvrnn, "dagrnn": _dagrnn}


def make_torch_level(model: str, weights: dict[str, np.ndarray], H: int,
                     device: str = "cpu") -> Baseline:
    """PyTorch, all nodes of a height level at once; returns the root outputs as numpy.

    `device` is a torch device ("cpu", "cuda"); see the module docstring."""
    if torch is None:
        raise ImportError("torch is not installed")
    target = torch_device(device)
    model = canonical_model(model)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).to(target)
               for name, value in weights.items()}
    tensors.update({f"{name}_t": tensors[name].t().contiguous()
                    for name in ("W", "W_leaf", "U", "U_g", "U_h") if name in tensors})
    body = _BUILDERS[model](tensors, H)

    def prepare(structures: Sequence[Structure]) -> TorchLevels:
        batch = prepare_levels(model, structures)
        return batch if target.type == "cpu" else levels_on(batch, target)

    def run(batch: TorchLevels) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = body(batch)
            synchronize(target)
        return {name: value.cpu().numpy() for name, value in outputs.items()}

    threads = (f"{torch.get_num_threads()} intra-op threads" if target.type == "cpu"
               else f"on {device_name(target)}")
    return Baseline("torch batched by level", model, prepare, run,
                    notes=f"torch {torch.__version__}, inference_mode, {threads}, "
                          "index_select + addmm per level")

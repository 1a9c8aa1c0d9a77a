"""The PyTorch eager baseline: one operator at a time, node by node (the paper's baseline).

This is how a recursive model is usually written in PyTorch: children first, then each
node's few operators on vectors of that node alone. It runs under `torch.inference_mode()`
(a little faster than `no_grad`: no version counters) with PyTorch's default intra-op
thread count (2 on the 2-core machine). To keep it from being weaker than a careful user's
code, the post-order is made by `prepare`, the node loop is iterative, bias additions are
fused into `addmv`, gate blocks go through one `sigmoid` call, states stay in a Python list
of tensors, and weight matrices are kept in the layout MKL's `sgemv` runs fastest on.

Its cost is dominated by MKL's single-threaded `sgemv` (about 50 us for the TreeLSTM's
[1280 x 512] U at H = 256 on this machine, where OpenBLAS via numpy takes 18 us on 2 threads),
so on this CPU PyTorch eager is slower than numpy node by node.

`device="cuda"` runs the same loop on a GPU: weights, the zero state and the DAG-RNN's input
features live on the device (moved once, outside the timed call), and `run` synchronises
before it returns, so a timed call covers every kernel it queued.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.baselines.common import (
    NUM_WORD_MATRICES,
    Baseline,
    NodePlan,
    canonical_model,
    plan_nodes,
    require_features,
)
from cortexlang.inputs.structure import Structure

try:
    import torch
except ImportError:  # pragma: no cover - exercised only where torch is missing
    torch = None  # type: ignore[assignment]

Run = Callable[[NodePlan], dict[str, "torch.Tensor"]]


def _treefc(weights: dict[str, torch.Tensor], hidden: int) -> Run:
    emb, w, b = weights["Emb"], weights["W"], weights["b"]
    zero = torch.zeros(hidden, device=w.device)

    def run(plan: NodePlan) -> dict[str, torch.Tensor]:
        h: list[torch.Tensor] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                h[node] = emb[word]
            else:
                h_l = h[left] if left >= 0 else zero
                h_r = h[right] if right >= 0 else zero
                h[node] = torch.tanh(torch.addmv(b, w, h_l + h_r))
        return {"h": torch.stack([h[r] for r in plan.roots])}
    return run


def _treegru(weights: dict[str, torch.Tensor], hidden: int) -> Run:
    emb, w_leaf, b_leaf = weights["Emb"], weights["W_leaf"], weights["b_leaf"]
    u_g, b_g, u_h, b_h = weights["U_g"], weights["b_g"], weights["U_h"], weights["b_h"]
    hid = hidden
    zero = torch.zeros(hid, device=u_g.device)

    def run(plan: NodePlan) -> dict[str, torch.Tensor]:
        h: list[torch.Tensor] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                zu = torch.addmv(b_leaf, w_leaf, emb[word])
                h[node] = torch.sigmoid(-zu[:hid]) * torch.tanh(zu[hid:])
            else:
                h_l = h[left] if left >= 0 else zero
                h_r = h[right] if right >= 0 else zero
                h_lr = torch.cat((h_l, h_r))
                gates = torch.sigmoid(torch.addmv(b_g, u_g, h_lr))
                z = gates[:hid]
                u = torch.tanh(torch.addmv(b_h, u_h, gates[hid:] * h_lr))
                # z * (h_l + h_r) / 2 + (1 - z) * u  ==  u + z * ((h_l + h_r) / 2 - u)
                h[node] = torch.addcmul(u, z, (h_l + h_r).mul_(0.5).sub_(u))
        return {"h": torch.stack([h[r] for r in plan.roots])}
    return run


def _treelstm(weights: dict[str, torch.Tensor], hidden: int) -> Run:
    emb, w_leaf, b_leaf = weights["Emb"], weights["W_leaf"], weights["b_leaf"]
    u_all, b_all = weights["U"], weights["b"]
    hid = hidden
    zero = torch.zeros(hid, device=u_all.device)

    def run(plan: NodePlan) -> dict[str, torch.Tensor]:
        h: list[torch.Tensor] = [zero] * plan.num_nodes
        c: list[torch.Tensor] = [zero] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                iou = torch.addmv(b_leaf, w_leaf, emb[word])
                io = torch.sigmoid(iou[:2 * hid])
                cell = io[:hid] * torch.tanh(iou[2 * hid:])
                h[node] = io[hid:] * torch.tanh(cell)
            else:
                h_l, c_l = (h[left], c[left]) if left >= 0 else (zero, zero)
                h_r, c_r = (h[right], c[right]) if right >= 0 else (zero, zero)
                gates = torch.addmv(b_all, u_all, torch.cat((h_l, h_r)))
                ifo = torch.sigmoid(gates[:4 * hid])
                cell = ifo[:hid] * torch.tanh(gates[4 * hid:])
                cell.addcmul_(ifo[hid:2 * hid], c_l).addcmul_(ifo[2 * hid:3 * hid], c_r)
                h[node] = ifo[3 * hid:] * torch.tanh(cell)
            c[node] = cell
        return {"h": torch.stack([h[r] for r in plan.roots]),
                "c": torch.stack([c[r] for r in plan.roots])}
    return run


def _mvrnn(weights: dict[str, torch.Tensor], hidden: int) -> Run:
    emb, emb_m = weights["Emb"], weights["EmbM"]
    w, b_w, w_m = weights["W"], weights["b_W"], weights["W_M"]
    zero = torch.zeros(hidden, device=w.device)
    zero_matrix = torch.zeros(hidden, hidden, device=w.device)

    def run(plan: NodePlan) -> dict[str, torch.Tensor]:
        p: list[torch.Tensor] = [zero] * plan.num_nodes
        m: list[torch.Tensor] = [zero_matrix] * plan.num_nodes
        for node, (left, right), word, is_leaf in plan.steps:
            if is_leaf:
                p[node], m[node] = emb[word], emb_m[word % NUM_WORD_MATRICES]
            else:
                a, a_mat = (p[left], m[left]) if left >= 0 else (zero, zero_matrix)
                b, b_mat = (p[right], m[right]) if right >= 0 else (zero, zero_matrix)
                p[node] = torch.tanh(torch.addmv(b_w, w, torch.cat((b_mat @ a, a_mat @ b))))
                m[node] = w_m @ torch.cat((a_mat, b_mat))
        return {"p": torch.stack([p[r] for r in plan.roots]),
                "P": torch.stack([m[r] for r in plan.roots])}
    return run


def _dagrnn(weights: dict[str, torch.Tensor], hidden: int) -> Run:
    u, w, b = weights["U"], weights["W"], weights["b"]
    zero = torch.zeros(hidden, device=w.device)

    def run(plan: NodePlan) -> dict[str, torch.Tensor]:
        # A tensor already (moved to the device by `prepare`) or the plan's numpy array.
        features = plan.features
        x = features if isinstance(features, torch.Tensor) else torch.from_numpy(features)
        h: list[torch.Tensor] = [zero] * plan.num_nodes
        for node, (left, up), _word, _is_leaf in plan.steps:
            h_left = h[left] if left >= 0 else zero
            h_up = h[up] if up >= 0 else zero
            h[node] = torch.tanh(torch.addmv(torch.addmv(b, u, x[node]), w, h_left + h_up))
        return {"h": torch.stack([h[r] for r in plan.roots])}
    return run


def _matvec_layout(value: np.ndarray) -> torch.Tensor:
    """A float32 tensor; a matrix is stored transposed and handed back as its transposed view,
    because MKL's matrix-vector product is about 10% faster on that layout here."""
    if value.ndim != 2:
        return torch.from_numpy(np.ascontiguousarray(value))
    return torch.from_numpy(np.ascontiguousarray(value.T)).t()


_BUILDERS = {"treefc": _treefc, "treegru": _treegru, "treelstm": _treelstm,
             "mvrnn": _mvrnn, "dagrnn": _dagrnn}


def make_torch_eager(model: str, weights: dict[str, np.ndarray], H: int,
                     device: str = "cpu") -> Baseline:
    """PyTorch eager, node by node in post-order under inference_mode; returns numpy roots.

    `device` is a torch device ("cpu", "cuda", "cuda:1"); on a GPU the call synchronises
    before returning. Raises ImportError without torch, or when the device is not there."""
    if torch is None:
        raise ImportError("torch is not installed")
    target = torch_device(device)
    model = canonical_model(model)
    tensors = {name: _matvec_layout(np.asarray(value, dtype=np.float32)).to(target)
               for name, value in weights.items()}
    body = _BUILDERS[model](tensors, H)

    def prepare(structures: Sequence[Structure]) -> NodePlan:
        plan = plan_nodes(structures)
        require_features(model, plan)
        if target.type != "cpu" and plan.features is not None:
            plan = dataclasses.replace(
                plan, features=torch.from_numpy(plan.features).to(target))
        return plan

    def run(plan: NodePlan) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = body(plan)
            synchronize(target)
        return {name: value.cpu().numpy() for name, value in outputs.items()}

    threads = (f"{torch.get_num_threads()} intra-op threads" if target.type == "cpu"
               else f"on {device_name(target)}")
    return Baseline("torch eager node by node", model, prepare, run,
                    notes=f"torch {torch.__version__}, inference_mode, {threads}")


def torch_device(device: str) -> torch.device:
    """The torch device for a name; ImportError (a skip, for the callers) when it is absent."""
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ImportError(f"torch {torch.__version__} sees no CUDA device")
    return target


def synchronize(target: torch.device) -> None:
    """Wait for every kernel queued on a GPU (nothing to wait for on the CPU)."""
    if target.type == "cuda":
        torch.cuda.synchronize(target)


def device_name(target: torch.device) -> str:
    """"cpu", or the GPU's name as CUDA reports it."""
    return torch.cuda.get_device_name(target) if target.type == "cuda" else "cpu"

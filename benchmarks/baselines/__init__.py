"""Reference implementations of the five models that cortexlang's kernels are compared with.

Each module offers `make_<implementation>(model, weights, H) -> Baseline`: `prepare` does the
per-batch host work, `run` is the timed inference step, and calling the baseline does both.
Frameworks are imported only by the module that uses them, so `make_baseline` works for the
numpy baseline where torch or jax is not installed.
"""

from __future__ import annotations

import importlib

import numpy as np

from benchmarks.baselines.common import Baseline

IMPLEMENTATIONS = ("numpy_nodes", "torch_eager", "torch_level", "jax_level")
"""The baselines, in the order tables show them."""

TITLES = {
    "numpy_nodes": "numpy node by node",
    "torch_eager": "PyTorch eager node by node",
    "torch_level": "PyTorch batched by level",
    "jax_level": "JAX jit batched by level",
}


def make_baseline(implementation: str, model: str, weights: dict[str, np.ndarray],
                  H: int, device: str | None = None) -> Baseline:
    """`make_<implementation>(model, weights, H)` from `benchmarks.baselines.<implementation>`;
    raises ImportError when the implementation's framework is not installed. `device` (a
    torch device such as "cuda") is passed on to the PyTorch baselines; the others run on
    the CPU only and reject it."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown baseline {implementation!r}; expected one of "
                         f"{', '.join(IMPLEMENTATIONS)}")
    module = importlib.import_module(f"benchmarks.baselines.{implementation}")
    make = getattr(module, f"make_{implementation}")
    if device is None:
        return make(model, weights, H)
    if not implementation.startswith("torch_"):
        raise ValueError(f"{TITLES[implementation]} runs on the CPU only, not on {device!r}")
    return make(model, weights, H, device=device)

"""cortexlang: an interpreter and optimising compiler for recursive deep-learning models.

The Python API (see docs/api.md):

    import cortexlang as cx
    model = cx.load("examples/treelstm.cx", sizes={"H": 64})
    model.load_weights("w.safetensors")        # .npz, .safetensors, .pt, or a dict
    out = model.compile().run(["(3 (2 good) (2 film))"])
    out["h"]                                   # numpy, one row per structure

Names are imported on first use, so `import cortexlang` stays cheap (no OpenCL, no numpy
work) for the command line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "cortexlang.api",
    "Model": "cortexlang.api",
    "Result": "cortexlang.api_result",
    "Compiled": "cortexlang.api",
    "Structure": "cortexlang.inputs.structure",
    "Vocab": "cortexlang.inputs.vocab",
    "WeightMapping": "cortexlang.inputs.weightmap",
    "CortexError": "cortexlang.errors",
    "InputError": "cortexlang.errors",
    "UsageError": "cortexlang.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cortexlang' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

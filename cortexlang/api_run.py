"""`Compiled`: a model ready to run on one backend, from `cortexlang.Model.compile`.

The compiled backend walks `run_pipeline` for the chosen device (the same choice as the
command line: `--device`, else PYOPENCL_CTX, else the first working device) and builds the
kernels once (from the build cache when they were built before); weights are bound once.
For a model loaded from a `.cxa`, the OpenCL emitted is compared with the artifact's: the
same text on a device with the limits it was planned for (so the cached binary is reused),
and re-planned, as the provenance says, on a device with other limits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cortexlang.backends import BackendOptions, get_backend

if TYPE_CHECKING:
    from cortexlang.api import Model, Result


class Compiled:
    """A model bound to a backend (and device), its weights and its vocabulary."""

    def __init__(self, model: Model, *, backend: str, device: str | None, options: Any,
                 dtype: str, cache: bool) -> None:
        self.model = model
        self.backend = backend
        self.options = options
        self.dtype = dtype
        self.kernels_note = ""
        self.device_name = "the host (numpy)"
        self._result: Any = None
        self._runner: Any = None
        self.limits: Any = None
        if backend == "compiled":
            self._compile(device, cache)
        else:
            self._interpreter = get_backend("interp")

    def _compile(self, device_spec: str | None, cache: bool) -> None:
        from cortexlang.passes.pipeline import run_pipeline
        from cortexlang.runtime.devices import select_device
        from cortexlang.runtime.execute import CompiledModel, device_limits

        device = select_device(device_spec)
        self.device_name = f"{device.info.device_name} ({device.info.spec})"
        self.limits = device_limits(device)
        self._result = run_pipeline(self.model.program, self.options, self.limits)
        artifact = self.model.artifact
        if artifact is not None:
            if self._result.source == artifact.kernel_source:
                self.kernels_note = f"the kernels of {artifact.path}"
            elif self.limits != artifact.limits or self.options != artifact.options:
                self.kernels_note = (f"re-planned for this device (the kernels of "
                                     f"{artifact.path} were planned for other limits)")
            else:
                self.kernels_note = (f"re-emitted: this cortexlang emits other OpenCL than "
                                     f"the one that wrote {artifact.path}")
        self._runner = CompiledModel(self._result, device, use_cache=cache)
        self._runner.bind_weights(self.model._require_weights().weights)
        if self._runner.cache_hit and not self.kernels_note:
            self.kernels_note = "built from the cache"
        elif self._runner.cache_hit:
            self.kernels_note += ", built from the cache"

    def compile_result(self) -> Any:
        """The pipeline's `CompileResult` (compiled backend only)."""
        if self._result is None:
            from cortexlang.api import _usage

            raise _usage("only the compiled backend has kernels to save",
                         "compile with backend=\"compiled\"")
        return self._result

    def provenance(self, vocab_choice: Any = None) -> dict[str, Any]:
        """Model, weights, vocabulary, backend and device, as `cortexlang run --json`."""
        model = self.model
        weights = model._require_weights()
        vocab = vocab_choice if vocab_choice is not None else model._vocab
        facts: dict[str, Any] = {
            "model": model.name, "path": model.program.path, "sizes": model.sizes,
            "weights": weights.summary(), "vocab": None if vocab is None else vocab.summary(),
            "backend": self.backend, "dtype": self.dtype, "device": self.device_name}
        if self.kernels_note:
            facts["kernels"] = self.kernels_note
        return facts

    def run(self, structures: Iterable[Any], *, binarize: str | None = None,
            collapse_unary: bool = False) -> Result:
        """Run on structures: PTB strings, `Structure`s, nltk Trees, nested tuples or JSON
        records (`cortexlang.inputs.python`). `binarize` ("left", "right") splits wider
        nodes; `collapse_unary` replaces one-child nodes by their child. Returns a `Result`."""
        from cortexlang.api import Result

        items, vocab_choice = self.model._structures(structures, binarize, collapse_unary)
        if self._runner is not None:
            outputs = self._runner.run(items)
        else:
            weights = self.model._require_weights().weights
            if self.dtype != "float32":
                weights = {name: value.astype(self.dtype) for name, value in weights.items()}
            outputs = self._interpreter(self.model.program, items, weights,
                                        BackendOptions(dtype=self.dtype))
        return Result(outputs, self.provenance(vocab_choice), items)

    def save(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Write a `.cxa` artifact: source, sizes, options, OpenCL, weights, vocabulary."""
        from cortexlang.api import save_artifact

        return save_artifact(self, path)

    def __repr__(self) -> str:
        return f"<cortexlang.Compiled {self.model.name} on {self.backend}, {self.device_name}>"


"""The compiled backend: compile once per program, options and device; bind weights once.

Backend settings (from `cortexlang run --set NAME=VALUE`, or the dedicated flags
`--disable`, `-O` and `--no-cache`):

    disable=NAME[,NAME...]   switch optimisations off (see `Options.names()`)
    level=N                  start from -ON instead of -O3
    node_tile=N              nodes per work-item
    cache=off                rebuild kernels instead of using the build cache
    vector_width=W           plan for float vectors of W (1, 2, 4, 8, 16), not the device's
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from cortexlang.backends import Backend, BackendOptions
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs.structure import Structure
from cortexlang.ir.checked import CheckedProgram
from cortexlang.outputs import Outputs
from cortexlang.passes.pipeline import Options

SETTINGS = ("disable", "level", "node_tile", "cache", "vector_width")


def options_from_settings(options: BackendOptions) -> tuple[Options, bool]:
    """The compiler Options and whether to use the build cache, from backend settings."""
    for key, _ in options.settings:
        if key not in SETTINGS:
            raise UsageError(Diagnostic("E0013", f"the compiled backend has no setting `{key}`",
                                        None, "", "its settings: " + ", ".join(SETTINGS)))
    level = options.setting("level")
    compiled = Options.level(_integer(level, "level")) if level is not None else Options()
    disabled = [name for key, value in options.settings if key == "disable"
                for name in value.split(",") if name]
    compiled = compiled.without(*disabled)
    tile = options.setting("node_tile")
    if tile is not None:
        nodes = _integer(tile, "node_tile")
        if nodes < 1:
            # The same mistake as `--node-tile 0`, the same error.
            raise UsageError(Diagnostic(
                "E0705", f"node_tile={nodes}: a node tile is a number of nodes, at least 1",
                None))
        compiled = replace(compiled, node_tile=nodes)
    return compiled, options.setting("cache", "on") != "off"


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(Diagnostic("E0013", f"setting {name} needs a whole number, not "
                                    f"`{text}`", None)) from None


def _vector_width(text: str | None) -> int | None:
    from cortexlang.runtime.devices import VECTOR_WIDTHS

    if text is None:
        return None
    width = _integer(text, "vector_width")
    if width not in VECTOR_WIDTHS:
        raise UsageError(Diagnostic("E0013", f"vector_width={width}: OpenCL's float vectors "
                                    f"have {', '.join(map(str, VECTOR_WIDTHS))} lanes", None))
    return width


def compiled_backend() -> Backend:
    """A backend that keeps its compiled models, so chunked runs compile and bind once."""
    from cortexlang.passes.pipeline import run_pipeline
    from cortexlang.runtime.devices import select_device
    from cortexlang.runtime.execute import CompiledModel, device_limits

    models: dict[tuple[object, ...], CompiledModel] = {}
    bound: dict[tuple[object, ...], int] = {}

    def run(program: CheckedProgram, structures: Sequence[Structure],
            weights: Mapping[str, np.ndarray], options: BackendOptions) -> Outputs:
        if options.dtype != "float32":
            raise UsageError(Diagnostic(
                "E0011", "the compiled backend computes in float32", None, "",
                "use --backend interp for float64"))
        compile_options, use_cache = options_from_settings(options)
        width = options.setting("vector_width")
        device = select_device(options.device, vector_width=_vector_width(width))
        key = (id(program), program, compile_options, device.info.spec, use_cache)
        model = models.get(key)
        if model is None:
            result = run_pipeline(program, compile_options, device_limits(device))
            model = CompiledModel(result, device, use_cache=use_cache)
            models[key] = model
        if bound.get(key) != id(weights):
            model.bind_weights(weights)
            bound[key] = id(weights)
        return model.run(structures)

    return run

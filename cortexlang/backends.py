"""Backends: the named ways to run a checked program, all returning the same `Outputs`.

A backend is a callable

    backend(program, structures, weights, options) -> Outputs

registered under a name with a *factory*: a function of no arguments that returns the
backend. Factories run only when a backend is asked for, so registering one costs nothing:
`cortexlang check` never imports pyopencl because the compiled backend exists.

To add a backend, write its factory (importing its heavy modules inside) and add one line:

    register_backend("compiled", _compiled_backend, "generated OpenCL kernels")

and to make it the default, change `DEFAULT_BACKEND`. The command line lists the registered
names as the choices of `--backend`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cortexlang.backend_interface import (
    Backend,
    BackendFactory,
    BackendOptions,
    reject_unknown_settings,
)
from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs.structure import Structure
from cortexlang.ir.checked import CheckedProgram
from cortexlang.outputs import Outputs, merge_outputs

__all__ = ["DEFAULT_BACKEND", "Backend", "BackendOptions", "backend_description",
           "backend_names", "get_backend", "merge_outputs", "register_backend"]

DEFAULT_BACKEND = "compiled"


@dataclass(frozen=True)
class _Registration:
    factory: BackendFactory
    description: str


_REGISTRY: dict[str, _Registration] = {}


def register_backend(name: str, factory: BackendFactory, description: str = "") -> None:
    """Register (or replace) the backend `name`; `factory()` returns the backend callable."""
    _REGISTRY[name] = _Registration(factory, description)


def backend_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


def backend_description(name: str) -> str:
    """The one-line description a backend was registered with (KeyError if unknown)."""
    return _REGISTRY[name].description


def get_backend(name: str) -> Backend:
    """The backend registered as `name`. Raises `UsageError` (exit 2) for an unknown name."""
    registration = _REGISTRY.get(name)
    if registration is None:
        known = ", ".join(backend_names()) or "none"
        raise UsageError(Diagnostic("E0012", f"unknown backend `{name}`", None, "",
                                    f"registered backends: {known}"))
    return registration.factory()


def _interpreter_backend() -> Backend:
    from cortexlang.interp import interpret

    def run(program: CheckedProgram, structures: Sequence[Structure],
            weights: Mapping[str, np.ndarray], options: BackendOptions) -> Outputs:
        reject_unknown_settings(options, "interp", ())
        return interpret(program, structures, weights, dtype=np.dtype(options.dtype))

    return run


def _compiled_backend() -> Backend:
    from cortexlang.compiled_backend import compiled_backend

    return compiled_backend()


register_backend("compiled", _compiled_backend,
                 "generated OpenCL kernels (the optimising compiler)")
register_backend("interp", _interpreter_backend,
                 "the reference interpreter: numpy, one node at a time")

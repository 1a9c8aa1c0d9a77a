"""What every backend is: a callable from a checked program, structures, weights and
`BackendOptions` to `Outputs`. The registry of named backends is `cortexlang.backends`; a
backend's module imports this one, never the registry, so the two cannot import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cortexlang.errors import Diagnostic, UsageError
from cortexlang.inputs.structure import Structure
from cortexlang.ir.checked import CheckedProgram
from cortexlang.outputs import Outputs


@dataclass(frozen=True)
class BackendOptions:
    """How to run, independent of the program and inputs.

    dtype:    "float32" or "float64", the precision of all arithmetic.
    device:   an OpenCL device spec ("P:D", part of a name) for backends that use one.
    settings: backend-specific NAME=VALUE pairs from the command line, in the order given;
              each backend documents the names it reads and rejects the ones it does not know.
    """

    dtype: str = "float32"
    device: str | None = None
    settings: tuple[tuple[str, str], ...] = ()

    def setting(self, name: str, default: str | None = None) -> str | None:
        """The last value given for `name`, else `default`."""
        values = [value for key, value in self.settings if key == name]
        return values[-1] if values else default


class Backend(Protocol):
    def __call__(self, program: CheckedProgram, structures: Sequence[Structure],
                 weights: Mapping[str, np.ndarray], options: BackendOptions) -> Outputs: ...


BackendFactory = Callable[[], Backend]


def reject_unknown_settings(options: BackendOptions, backend: str, known: Sequence[str]) -> None:
    """Reject settings a backend does not read, so that a typo is not silently ignored."""
    for key, _ in options.settings:
        if key not in known:
            accepted = ", ".join(known) or "none"
            raise UsageError(Diagnostic("E0013", f"the {backend} backend has no setting "
                                        f"`{key}`", None, "", f"its settings: {accepted}"))

"""Deterministic test weights, drawn per parameter name so that they do not depend on order."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np


def deterministic_weights(shapes: Mapping[str, tuple[int, ...]], seed: int = 0, *,
                          scale: float = 0.5) -> dict[str, np.ndarray]:
    """float64 weights uniform in [-scale, scale), one stream per (seed, name).

    The scale is larger than the usual 0.1 so that gates leave their linear region and a
    wrong nonlinearity or a swapped gate shows up in the comparison.
    """
    weights = {}
    for name, shape in shapes.items():
        stream = np.random.default_rng([seed, zlib.crc32(name.encode())])
        weights[name] = stream.uniform(-scale, scale, size=shape)
    return weights

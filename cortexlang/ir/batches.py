"""Which batches a loop or a launch covers: one typed value from the loop IR to the runtime.

The loop IR's sequential loops carry it (`Loop.batches`), the kernel IR's kernels and
launches carry it (`Kernel.over`), and the executable hands it to the runtime; no stage
recovers it from a loop's printed bounds. A plain `Enum`: printers write its `value` (the
word), and nothing compares it with a string.
"""

from __future__ import annotations

import enum


class BatchRange(enum.Enum):
    """The batches a loop or launch covers."""

    LEAF = "leaf"          # each leaf batch
    INTERNAL = "internal"  # each internal batch
    ALL = "all"            # each batch
    HEADS = "heads"        # once, over the head nodes
    RUN = "run"            # once, a persistent kernel over everything from `first_fused`

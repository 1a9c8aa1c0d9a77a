"""What the kernel planner knows of a device: the compiler's view of its limits.

Kept apart from the planner so that the runtime, which reads them from OpenCL
(`runtime.devices.device_limits`), need not import the passes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceLimits:
    """What the planner needs to know about the device (queried, never assumed)."""

    max_work_group_size: int = 256
    local_mem_size: int = 32768
    is_gpu: bool = False
    preferred_vector_width: int = 4
    compute_units: int = 2

    def items(self) -> tuple[tuple[str, int], ...]:
        return (("compute_units", self.compute_units),
                ("max_work_group_size", self.max_work_group_size),
                ("local_mem_size", self.local_mem_size), ("is_gpu", int(self.is_gpu)),
                ("preferred_vector_width", self.preferred_vector_width))

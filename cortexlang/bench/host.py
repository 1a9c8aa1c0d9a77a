"""What a benchmark ran on: the host CPU, the OpenCL device, and the versions of everything.

Recorded in the benchmark's JSON so that two results can be compared knowing whether they
came from the same machine and software. Versions are read from the installed packages'
metadata (no framework is imported for it).
"""

from __future__ import annotations

import dataclasses
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("cortexlang", "numpy", "pyopencl", "torch", "jax", "jaxlib")


def cpu_description(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU's model, its SIMD flags (the ones a kernel's speed depends on) and cores.

    `cpuinfo` is the text of /proc/cpuinfo (read when None); elsewhere than on Linux the
    model is platform.processor() and the flags are unknown."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.exists() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = fields.get("flags", "").split()
    simd = sorted(flag for flag in flags if flag.startswith(("avx", "sse4", "fma", "amx"))
                  or flag in ("neon", "asimd", "sve"))
    return {"model": fields.get("model name") or platform.processor() or "unknown",
            "simd_flags": simd, "logical_cpus": os.cpu_count(),
            "machine": platform.machine()}


def versions() -> dict[str, str | None]:
    """Python and each of PACKAGES' installed version (None when not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe_host(device: Any | None = None) -> dict[str, Any]:
    """The host, the OpenCL device (its probe record, if given) and the versions."""
    described: dict[str, Any] = {"cpu": cpu_description(), "os": platform.platform(),
                                 "versions": versions()}
    if device is not None:
        described["device"] = dataclasses.asdict(device.info)
    return described

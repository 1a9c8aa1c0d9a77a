"""Fixtures shared by all tests: an OpenCL device, and kernel caches kept out of $HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortexlang.errors import EnvironmentProblem

if TYPE_CHECKING:
    from cortexlang.runtime.devices import Device


@pytest.fixture(scope="session", autouse=True)
def _private_kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test builds into a cache directory of this session, never the user's."""
    directory = tmp_path_factory.mktemp("kernel-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORTEXLANG_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture
def kernel_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty kernel cache directory of this test alone (and an empty in-process cache)."""
    from cortexlang.runtime.build import clear_memory_cache

    directory = tmp_path / "kernels"
    monkeypatch.setenv("CORTEXLANG_CACHE_DIR", str(directory))
    clear_memory_cache()
    return directory


@pytest.fixture(scope="session")
def opencl_device() -> Device:
    """The device tests run on (as `select_device()` picks it); skips when none works."""
    from cortexlang.runtime.devices import select_device

    try:
        return select_device()
    except EnvironmentProblem as problem:
        pytest.skip(f"no working OpenCL device (install pocl-opencl-icd):\n{problem}")

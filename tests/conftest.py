"""Fixtures shared by all tests: an OpenCL device, kernel caches kept out of $HOME, and the
`--update-goldens` option.

`--update-goldens` rewrites golden files (the frontend's rendered diagnostics in
tests/frontend/errors/, the compiler's stage texts in tests/golden/) instead of comparing
them. It is defined here, in the top-level conftest, so that every run under tests/ knows it
whichever folders are named:

    pytest tests --update-goldens
    pytest tests/compiler/test_goldens.py --update-goldens

Read the diff (`git diff tests/`) before committing regenerated goldens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortexlang.errors import EnvironmentProblem

if TYPE_CHECKING:
    from cortexlang.runtime.devices import Device


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden files (frontend diagnostics, compiler stage texts) "
                          "instead of comparing with them")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files instead of comparing them."""
    return bool(request.config.getoption("--update-goldens"))


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

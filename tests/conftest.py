"""Fixtures shared by all tests: an OpenCL device, kernel caches kept out of $HOME, the
`--update-goldens` option, the two tiers and the run's seed.

Tiers. `pytest` (`make test`) runs the default tier: exhaustive sweeps (every subset of the
optimisation switches, every option set of every model, 1,000 longer random programs) are
marked `exhaustive` and replaced by seeded covering sets (every pair, or every triple, of
switches in all their on/off combinations), so that each run builds few OpenCL programs yet
covers every interaction of two switches. `pytest --all` (`make test-all`) runs everything.

Seed. The covering sets and the random programs are drawn from one seed per run, new each
run unless given, printed in the header ("seed: ..."). Reproduce a run with

    pytest --seed 1234          (or CORTEXLANG_TEST_SEED=1234 pytest)

The seed reaches the tests (and any process they start) through the environment variable
CORTEXLANG_TEST_SEED, set here once per run: read it with `compiler_support.run_seed()`.

`--update-goldens` rewrites golden files (the frontend's rendered diagnostics in
tests/frontend/errors/, the compiler's stage texts in tests/golden/) instead of comparing
them. It is defined here, in the top-level conftest, so that every run under tests/ knows it
whichever folders are named:

    pytest tests --update-goldens
    pytest tests/compiler/test_goldens.py --update-goldens

Read the diff (`git diff tests/`) before committing regenerated goldens.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import time
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
    parser.addoption("--all", action="store_true", default=False, dest="exhaustive",
                     help="also run the tests marked `exhaustive` (the full sweeps)")
    parser.addoption("--seed", type=int, default=None,
                     help="the seed of the covering sets and random programs (default: "
                          "$CORTEXLANG_TEST_SEED, else a new one, printed in the header)")


SEED_VARIABLE = "CORTEXLANG_TEST_SEED"
TIER_VARIABLE = "CORTEXLANG_TEST_TIER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "exhaustive: a full sweep; runs only with --all (`make test-all`)")
    seed = config.getoption("--seed")
    if seed is None:
        seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(10_000))
    # Set before test modules are imported (they parametrize with it) and before any
    # pytest-xdist worker starts, so that every process collects the same tests.
    os.environ[SEED_VARIABLE] = str(seed)
    os.environ[TIER_VARIABLE] = "all" if config.getoption("exhaustive") else "default"


def pytest_report_header(config: pytest.Config) -> str:
    tier = os.environ[TIER_VARIABLE]
    return (f"cortexlang: seed: {os.environ[SEED_VARIABLE]} (reproduce with --seed "
            f"{os.environ[SEED_VARIABLE]}); tier: {tier}"
            + (" (the full sweeps)" if tier == "all" else
               " (covering sets; --all runs the full sweeps)"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """`-q` (as `make test` runs) hides the header: print the seed line all the same."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.config.get_verbosity() < 0:
        reporter.write_line(pytest_report_header(session.config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("exhaustive"):
        return
    skip = pytest.mark.skip(reason="exhaustive sweep: run with --all (make test-all)")
    for item in items:
        if "exhaustive" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _count_opencl_builds() -> Iterator[None]:
    """Count the OpenCL programs built from source in this session, and their time (the
    dominant cost of a cold run), for the summary at the end."""
    from cortexlang.runtime import build

    original = build._compile

    def counted(device: Device, source: str, options: tuple[str, ...]) -> object:
        started = time.perf_counter()
        try:
            return original(device, source, options)
        finally:
            BUILD_STATS.append(time.perf_counter() - started)
            BUILT_SOURCES.add((source, options))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build, "_compile", counted)
        yield


BUILD_STATS: list[float] = []
BUILT_SOURCES: set[tuple[str, tuple[str, ...]]] = set()


def _own_usage() -> tuple[float, int, float, set[str]]:
    """This process's CPU seconds (with its finished children) and its OpenCL builds:
    count, seconds, and a digest per distinct (source, options)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                  resource.RUSAGE_CHILDREN)]
    cpu = sum(use.ru_utime + use.ru_stime for use in usage)
    digests = {hashlib.sha1(repr(built).encode()).hexdigest() for built in BUILT_SOURCES}
    return cpu, len(BUILD_STATS), sum(BUILD_STATS), digests


# pytest-xdist (`make test` runs two workers): each worker sends its figures to the
# controller when it finishes, which adds them up for the summary.
WORKER_FIGURES: list[tuple[float, int, float, set[str]]] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        cpu, count, seconds, digests = _own_usage()
        workeroutput["cortexlang_figures"] = (cpu, count, seconds, sorted(digests))


def pytest_testnodedown(node: object, error: object) -> None:
    figures = getattr(node, "workeroutput", {}).get("cortexlang_figures")
    if figures is not None:
        cpu, count, seconds, digests = figures
        WORKER_FIGURES.append((cpu, count, seconds, set(digests)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = [_own_usage(), *WORKER_FIGURES]
    cpu = sum(figure[0] for figure in figures)
    count = sum(figure[1] for figure in figures)
    seconds = sum(figure[2] for figure in figures)
    distinct = len(set().union(*(figure[3] for figure in figures)))
    workers = f" and its {len(WORKER_FIGURES)} workers" if WORKER_FIGURES else ""
    terminalreporter.write_line(
        f"CPU time of this run: {cpu:.0f} s (this process{workers} and their finished "
        f"children: the OpenCL compiler runs inside the process); seed "
        f"{os.environ[SEED_VARIABLE]}")
    if count:
        terminalreporter.write_line(
            f"OpenCL programs built from source: {count} ({distinct} distinct) in "
            f"{seconds:.1f} s (the driver compiles each kernel's machine code at its first "
            f"launch, not counted here)")


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

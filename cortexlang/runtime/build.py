"""Building OpenCL programs, with a cache of compiled binaries in memory and on disk.

`build_program` looks a program up by a key that covers everything the binary depends on
(the source, the options, the device and its driver, the cortexlang and pyopencl versions):
first in this process, then on disk, and compiles from source only when both miss. A source
build that fails raises `KernelBuildError`: cortexlang generated code that the device's
compiler rejects, which is a bug in cortexlang, never the user's fault.

Timing notes. pyopencl keeps its own binary cache; it is bypassed here (`cache_dir=False`), so
that `BuildResult.seconds` of a "compiler" build is the compiler's time. Some drivers cache as
well and cannot be bypassed from here: PoCL keeps compiled kernels in ~/.cache/pocl/kcache
(set POCL_KERNEL_CACHE=0 to measure a truly cold build) and compiles the machine code of each
kernel at its first launch, so on PoCL part of the compile time shows up in the first run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import pyopencl as cl

import cortexlang
from cortexlang.errors import InternalError

if TYPE_CHECKING:
    from cortexlang.runtime.devices import Device

BuildOrigin = Literal["memory", "disk", "compiler"]


@dataclass(frozen=True)
class BuildResult:
    """A built program and how it was obtained.

    `origin` is "memory" (built earlier in this process), "disk" (a cached binary) or
    "compiler" (built from source now); `cache_hit` is true for the first two. `seconds` is
    the wall time `build_program` took, `key` the cache key (a sha256 hex digest).
    """

    program: cl.Program
    origin: BuildOrigin
    seconds: float
    key: str
    # The compiler's log of a build from source ("" for a cached binary): kept, never
    # printed; `cortexlang run --verbose` shows it.
    log: str = ""

    @property
    def cache_hit(self) -> bool:
        return self.origin != "compiler"


class KernelBuildError(InternalError):
    """The device's compiler rejected generated OpenCL: a bug in cortexlang's code generator.

    The message shows the build log and the numbered source (lines the log names are marked
    with `>`); both are also written to the dump directory named in the message.
    """

    def __init__(self, *, device_name: str, options: tuple[str, ...], build_log: str,
                 source: str, dump_path: str | None) -> None:
        super().__init__(
            step="build_program",
            message=f"the OpenCL compiler for {device_name} rejected the generated kernel",
            dump_path=dump_path,
            details=[f"options: {' '.join(options) or '(none)'}"])
        self.device_name = device_name
        self.options = options
        self.build_log = build_log
        self.source = source

    def __str__(self) -> str:
        log = "\n".join(f"    {line}" for line in self.build_log.strip().splitlines())
        return (f"{super().__str__()}\n{self.details[0]}\n\nOpenCL build log:\n{log}\n\n"
                f"generated source:\n{numbered_source(self.source, logged_lines(self.build_log))}")


_memory_cache: dict[tuple[str, int], cl.Program] = {}


def build_program(device: Device, source: str, options: tuple[str, ...] = (), *,
                  use_cache: bool = True) -> BuildResult:
    """Build `source` for `device` with compiler `options` (passed through unchanged).

    With `use_cache`, reuse a program built earlier in this process, else a binary from the
    disk cache (`kernel_cache_dir()`), else compile and store the binary; a cached binary that
    fails to load is replaced by a fresh build. Without `use_cache`, always compile and store
    nothing. Raises `KernelBuildError` when the source does not compile.
    """
    start = time.perf_counter()
    key = cache_key(device, source, options)
    memory_key = (key, device.context.int_ptr)
    if use_cache:
        program = _memory_cache.get(memory_key)
        if program is not None:
            return BuildResult(program, "memory", time.perf_counter() - start, key)
        program = _load_binary(device, key, options)
        if program is not None:
            _memory_cache[memory_key] = program
            return BuildResult(program, "disk", time.perf_counter() - start, key)
    program, log = _compile(device, source, options)
    if use_cache:
        _memory_cache[memory_key] = program
        _store_binary(device, key, program)
    return BuildResult(program, "compiler", time.perf_counter() - start, key, log)


def cache_key(device: Device, source: str, options: tuple[str, ...]) -> str:
    """The sha256 hex digest of everything a compiled binary depends on."""
    info = device.info
    parts = [source, list(options), info.device_name, info.vendor, info.driver_version,
             info.platform_version, info.opencl_version, cortexlang.__version__,
             cl.VERSION_TEXT]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def kernel_cache_dir() -> Path:
    """Where binaries are kept: $CORTEXLANG_CACHE_DIR, else $XDG_CACHE_HOME/cortexlang/kernels,
    else ~/.cache/cortexlang/kernels. Read at each call, so tests can point it elsewhere."""
    explicit = os.environ.get("CORTEXLANG_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache) if xdg_cache else Path.home() / ".cache"
    return base / "cortexlang" / "kernels"


def clear_memory_cache() -> None:
    """Forget the programs built in this process (the disk cache stays)."""
    _memory_cache.clear()


def _compile(device: Device, source: str, options: tuple[str, ...]) -> tuple[cl.Program, str]:
    """The built program and the compiler's log. pyopencl reports a non-empty log of a
    successful build as a CompilerWarning on stderr; the log is returned instead (a failed
    build's log goes into the KernelBuildError)."""
    program = cl.Program(device.context, source)
    printed: list[str] = []
    try:
        with warnings.catch_warnings(), _captured_stderr(printed):
            warnings.simplefilter("ignore", cl.CompilerWarning)
            # cache_dir=False bypasses pyopencl's binary cache: see the module docstring.
            built = program.build(options=list(options), devices=[device.device],
                                  cache_dir=False)  # type: ignore[arg-type]
        return built, "\n".join(part for part in (_success_log(built, device), *printed)
                                if part)
    except cl.Error as error:
        build_log = _build_log(program, device, error)
        dump_path = _dump_failure(device, source, options, build_log)
        raise KernelBuildError(device_name=device.info.device_name, options=options,
                               build_log=build_log, source=source,
                               dump_path=dump_path) from None


@contextlib.contextmanager
def _captured_stderr(printed: list[str]) -> Iterator[None]:
    """Collect what the driver's compiler writes to the process's stderr (PoCL's clang
    prints "1 warning generated." there itself) into `printed`, instead of the terminal."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield  # no file descriptor 2 to redirect
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace").strip()
            if text:
                printed.append(text)


def _success_log(program: cl.Program, device: Device) -> str:
    try:
        log = program.get_build_info(device.device, cl.program_build_info.LOG)
    except (cl.Error, AttributeError):
        return ""
    return str(log).strip()


def _build_log(program: cl.Program, device: Device, error: cl.Error) -> str:
    """The compiler's log; pyopencl's error text (which embeds it) when the log is gone."""
    try:
        log = program.get_build_info(device.device, cl.program_build_info.LOG)
    except (cl.Error, AttributeError):
        log = ""
    return log.strip() or str(error)


def _dump_failure(device: Device, source: str, options: tuple[str, ...],
                  build_log: str) -> str | None:
    """Write the source and the log to a fresh temporary directory; its path, or None."""
    try:
        directory = Path(tempfile.mkdtemp(prefix="cortexlang-build-failure-"))
        (directory / "kernel.cl").write_text(source)
        (directory / "build.log").write_text(
            f"device: {device.info.device_name} ({device.info.spec}, "
            f"{device.info.platform_name} {device.info.driver_version})\n"
            f"options: {' '.join(options) or '(none)'}\n\n{build_log}\n")
    except OSError:
        return None
    return str(directory)


def _load_binary(device: Device, key: str, options: tuple[str, ...]) -> cl.Program | None:
    path = kernel_cache_dir() / f"{key}.bin"
    try:
        binary = path.read_bytes()
    except OSError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cl.CompilerWarning)
            return cl.Program(device.context, [device.device], [binary]).build(
                options=list(options), devices=[device.device])
    except Exception:  # a stale or corrupt binary is a cache miss; the rebuild replaces it
        return None


def _store_binary(device: Device, key: str, program: cl.Program) -> None:
    """Write the program's binary atomically (temporary file, then rename); best effort:
    a read-only or full cache directory costs speed, never correctness."""
    devices = cast(list[cl.Device], program.get_info(cl.program_info.DEVICES))
    binaries = cast(list[bytes], program.get_info(cl.program_info.BINARIES))
    binary = next((binary for program_device, binary in zip(devices, binaries, strict=True)
                   if program_device == device.device), b"")
    if not binary:
        return  # the driver offers no binary: nothing to cache
    directory = kernel_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{key}.",
                                                 suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(binary)
        os.replace(temporary, directory / f"{key}.bin")
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


_LOG_LINE = re.compile(r"(?:\.cl|<[^>\n]*>|\binput):(\d+):\d+")


def logged_lines(build_log: str) -> set[int]:
    """The source line numbers a build log points at ("file.cl:12:5: error: ...")."""
    return {int(match.group(1)) for match in _LOG_LINE.finditer(build_log)}


def numbered_source(source: str, marked: Set[int] = frozenset(), *,
                    max_lines: int = 200, context: int = 4) -> str:
    """The source with line numbers; `marked` lines get a `>`. A source longer than
    `max_lines` is cut to the marked lines with `context` lines around them."""
    lines = source.splitlines()
    width = len(str(len(lines)))
    shown: set[int] = set(range(1, len(lines) + 1))
    if len(lines) > max_lines:
        shown = {number for mark in marked
                 for number in range(mark - context, mark + context + 1)} or set(
                     range(1, max_lines + 1))
    out: list[str] = []
    previous = 0
    for number, text in enumerate(lines, start=1):
        if number not in shown:
            continue
        if number != previous + 1:
            out.append(f" {'.' * width} |")
        out.append(f"{'>' if number in marked else ' '}{number:>{width}} | {text}")
        previous = number
    if previous < len(lines):
        out.append(f" {'.' * width} | ({len(lines) - previous} more lines in the dump)")
    return "\n".join(out)

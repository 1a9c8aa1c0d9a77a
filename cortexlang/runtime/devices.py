"""OpenCL devices: find every device, prove that each can build and run a kernel, choose one.

A device is judged by what it does, never by its name. Two PoCL installations (Debian's
pocl-opencl-icd and the copy bundled in the pyopencl wheel) report the same platform name, yet
on some machines only one of them can compile kernels. `probe_devices` therefore builds and
runs a tiny kernel on every device and records the verdict; `select_device` chooses among the
devices that passed and explains, with a fix, when none did.

Device specs, for `select_device` and `PYOPENCL_CTX` alike:

    "1:0"       platform 1, device 0 (the numbers `cortexlang devices` shows)
    "1"         the best working device of platform 1
    "h100"      the best working device whose name contains "h100" (any case); when no
                device name matches, platform names are tried ("nvidia", "portable")
    "nvidia:1"  pyopencl's form: each side an index or a name substring (platform:device)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar, cast

import numpy as np
import pyopencl as cl
from rich.console import Console
from rich.table import Table

from cortexlang.errors import Diagnostic, EnvironmentProblem
from cortexlang.ir.limits import DeviceLimits

# PoCL's CPU driver runs work-groups on one thread per core. Unpinned, the kernel's second
# thread often wakes on the core of the first and the two run one after the other (measured
# here: about one launch in four); pinned, each has its own core. Read when the driver
# starts, so set before any platform is listed; a user's own setting wins.
os.environ.setdefault("POCL_AFFINITY", "1")

INSTALL_HINT = (
    "install an OpenCL driver; on Debian or Ubuntu the CPU driver is "
    "`apt-get install pocl-opencl-icd` (or run `make setup`)"
)

# Failure signatures seen in the wild, and what fixes them. Matched against the build log or
# the error text of a failed probe; the first match wins.
KNOWN_FIXES: tuple[tuple[str, str], ...] = (
    (
        "unknown target CPU 'generic'",
        "this is the PoCL bundled in the pyopencl wheel, whose compiler cannot target this "
        "CPU; install Debian's pocl-opencl-icd (apt-get install pocl-opencl-icd) and use "
        "that device instead",
    ),
    ("PLATFORM_NOT_FOUND", INSTALL_HINT),
    (
        "DEVICE_NOT_AVAILABLE",
        "the device is present but unavailable (busy, in exclusive mode or disabled); "
        "free it or choose another device",
    ),
)

_PROBE_SOURCE = """
__kernel void cortexlang_probe(__global const float *input, __global float *output)
{
    size_t i = get_global_id(0);
    output[i] = input[i] * 2.0f + 1.0f;
}
"""
_PROBE_SIZE = 64

T = TypeVar("T")

# Preference among working devices, best first.
_GPU_FIRST = ("GPU", "ACCELERATOR", "CPU", "OTHER")
_CPU_FIRST = ("CPU", "GPU", "ACCELERATOR", "OTHER")


@dataclass(frozen=True)
class DeviceInfo:
    """One OpenCL device as found by `probe_devices`, with the verdict of its test kernel.

    `ok` says whether a test kernel built, ran and gave the right answer; when it did not,
    `reason` holds the first useful lines of the error or build log and `fix` a known remedy
    (None when none is known). A platform that could not even list its devices is recorded
    as one entry with `device_index` -1. Sizes are in bytes, the clock in MHz.
    """

    platform_index: int
    device_index: int
    platform_name: str
    platform_version: str
    device_name: str
    vendor: str
    device_type: str
    driver_version: str
    opencl_version: str
    ok: bool
    reason: str | None = None
    fix: str | None = None
    max_work_group_size: int = 0
    max_work_item_sizes: tuple[int, ...] = ()
    local_mem_size: int = 0
    global_mem_size: int = 0
    max_mem_alloc_size: int = 0
    max_compute_units: int = 0
    preferred_vector_width_float: int = 0
    max_clock_frequency: int = 0
    native_vector_width_float: int = 0   # the driver's own width when another is forced

    @property
    def spec(self) -> str:
        """The "P:D" spec that selects exactly this device ("P:*" for a broken platform)."""
        device = str(self.device_index) if self.device_index >= 0 else "*"
        return f"{self.platform_index}:{device}"

    def verdict(self) -> str:
        """One line: "works", or "fails: <first line of the reason>"."""
        if self.ok:
            return "works"
        first_line = (self.reason or "unknown failure").splitlines()[0]
        return f"fails: {first_line}"

    def describe(self) -> str:
        """One line naming the device, for lists in error messages."""
        return (f"{self.spec} {self.device_name} ({self.device_type}, {self.platform_name} "
                f"{self.driver_version}): {self.verdict()}")


@dataclass(frozen=True)
class Device:
    """A chosen, working device with its context and an in-order command queue."""

    info: DeviceInfo
    device: cl.Device
    context: cl.Context
    queue: cl.CommandQueue


@dataclass
class _ProbeState:
    infos: list[DeviceInfo]
    devices: dict[tuple[int, int], cl.Device] = field(default_factory=dict)
    contexts: dict[tuple[int, int], cl.Context] = field(default_factory=dict)
    selected: dict[tuple[int, int, bool, int], Device] = field(default_factory=dict)


_state: _ProbeState | None = None


def probe_devices(*, refresh: bool = False) -> list[DeviceInfo]:
    """Every OpenCL device of every platform, each with the verdict of a test kernel.

    The result is cached for the process (pass `refresh=True` to probe again). Never raises
    for a missing or broken OpenCL installation: no platform gives an empty list, a platform
    or device that fails is recorded with `ok=False` and the reason.
    """
    return _probe(refresh).infos


def _probe(refresh: bool = False) -> _ProbeState:
    global _state
    if _state is not None and not refresh:
        return _state
    state = _ProbeState(infos=[])
    try:
        platforms = cl.get_platforms()
    except cl.Error:
        # The ICD loader found no platform (PLATFORM_NOT_FOUND_KHR): nothing to probe.
        platforms = []
    for platform_index, platform in enumerate(platforms):
        platform_name = _query(platform, "name", "?")
        platform_version = _query(platform, "version", "?")
        try:
            devices = platform.get_devices()
        except cl.Error as error:
            state.infos.append(DeviceInfo(
                platform_index, -1, platform_name, platform_version,
                device_name="(the platform could not list its devices)", vendor="?",
                device_type="OTHER", driver_version="?", opencl_version="?", ok=False,
                reason=_summarise_failure(str(error)), fix=_known_fix(str(error))))
            continue
        for device_index, device in enumerate(devices):
            key = (platform_index, device_index)
            context, failure = _test_device(device)
            state.infos.append(DeviceInfo(
                platform_index, device_index, platform_name, platform_version,
                device_name=_query(device, "name", "?").strip(),
                vendor=_query(device, "vendor", "?").strip(),
                device_type=_device_type(_query(device, "type", 0)),
                driver_version=_query(device, "driver_version", "?"),
                opencl_version=_query(device, "version", "?"),
                ok=context is not None,
                reason=_summarise_failure(failure) if failure is not None else None,
                fix=_known_fix(failure) if failure is not None else None,
                max_work_group_size=_query(device, "max_work_group_size", 0),
                max_work_item_sizes=tuple(_query(device, "max_work_item_sizes", ())),
                local_mem_size=_query(device, "local_mem_size", 0),
                global_mem_size=_query(device, "global_mem_size", 0),
                max_mem_alloc_size=_query(device, "max_mem_alloc_size", 0),
                max_compute_units=_query(device, "max_compute_units", 0),
                preferred_vector_width_float=_query(device, "preferred_vector_width_float", 0),
                max_clock_frequency=_query(device, "max_clock_frequency", 0),
            ))
            state.devices[key] = device
            if context is not None:
                state.contexts[key] = context
    _state = state
    return state


def _test_device(device: cl.Device) -> tuple[cl.Context | None, str | None]:
    """Build and run the probe kernel; the context on success, else the failure text."""
    try:
        context = cl.Context([device])
        queue = cl.CommandQueue(context)
        # cache_dir=False: pyopencl's own binary cache would skip the compiler, and the
        # compiler is what this test is about.
        program = cl.Program(context, _PROBE_SOURCE).build(
            devices=[device], cache_dir=False)  # type: ignore[arg-type]
        host_input = np.arange(_PROBE_SIZE, dtype=np.float32)
        host_output = np.zeros_like(host_input)
        flags = cl.mem_flags
        input_buffer = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR,
                                 hostbuf=host_input)
        output_buffer = cl.Buffer(context, flags.WRITE_ONLY, host_output.nbytes)
        program.cortexlang_probe(queue, (_PROBE_SIZE,), None, input_buffer, output_buffer)
        cl.enqueue_copy(queue, host_output, output_buffer)
        queue.finish()
    except Exception as error:  # any failure is a verdict on the device, not a crash
        return None, f"{type(error).__name__}: {error}"
    expected = host_input * 2 + 1
    if not np.array_equal(host_output, expected):
        wrong = int(np.count_nonzero(host_output != expected))
        return None, f"the test kernel ran but gave {wrong} wrong values of {_PROBE_SIZE}"
    return context, None


VECTOR_WIDTHS = (1, 2, 4, 8, 16)
"""The float vector widths OpenCL C has, for `select_device(vector_width=...)`."""


def select_device(spec: str | None = None, *, prefer_gpu: bool = True,
                  profiling: bool = False, vector_width: int | None = None) -> Device:
    """The device to run on, with a context and an in-order queue (profiling if asked).

    An explicit `spec` wins, then `PYOPENCL_CTX` from the environment, then the first working
    GPU (or CPU first when `prefer_gpu` is false). Raises `EnvironmentProblem` (exit 3) when
    the spec names no device (E0601) or only broken ones (E0602), or when no device works
    (E0603); the message lists every device with its verdict and the known fix. Contexts and
    queues are cached for the process.

    `vector_width` replaces the width the driver prefers (`preferred_vector_width_float`,
    which the kernel planner and the benchmark's peak probe read) with one of
    `VECTOR_WIDTHS`, to show that kernels planned for another machine's width still run
    (and what they cost) here; any other value is a ValueError.
    """
    if vector_width is not None and vector_width not in VECTOR_WIDTHS:
        raise ValueError(f"vector width must be one of {VECTOR_WIDTHS}, not {vector_width!r}")
    state = _probe()
    spec, origin = _resolve_spec(spec)
    info = choose_device(state.infos, spec, prefer_gpu=prefer_gpu, origin=origin)
    if vector_width is not None:
        info = replace(info, preferred_vector_width_float=vector_width,
                       native_vector_width_float=info.preferred_vector_width_float)
    key = (info.platform_index, info.device_index, profiling, info.preferred_vector_width_float)
    if key not in state.selected:
        context = state.contexts[(info.platform_index, info.device_index)]
        queue = (cl.CommandQueue(context,
                                 properties=cl.command_queue_properties.PROFILING_ENABLE)
                 if profiling else cl.CommandQueue(context))
        device = state.devices[(info.platform_index, info.device_index)]
        state.selected[key] = Device(info, device, context, queue)
    return state.selected[key]


def _resolve_spec(spec: str | None) -> tuple[str | None, str]:
    """The spec to use and where it came from: the argument, else PYOPENCL_CTX, else None."""
    if spec is not None and spec.strip():
        return spec, "the device spec"
    environment_spec = os.environ.get("PYOPENCL_CTX", "")
    if environment_spec.strip():
        return environment_spec, "PYOPENCL_CTX"
    return None, "the device spec"


def choose_device(infos: Sequence[DeviceInfo], spec: str | None, *, prefer_gpu: bool = True,
                  origin: str = "the device spec") -> DeviceInfo:
    """The device a spec (or, with None, the default preference) picks among probed devices.

    Pure: looks only at `infos`. `origin` names where the spec came from, for messages.
    Raises `EnvironmentProblem` as `select_device` describes.
    """
    order = _GPU_FIRST if prefer_gpu else _CPU_FIRST
    if spec is None:
        candidates = list(infos)
    else:
        candidates = matching_devices(infos, spec)
        if not candidates:
            raise _problem(
                "E0601", f"{origin} {spec!r} names no OpenCL device", infos,
                hint="use a spec from `cortexlang devices`: \"P:D\", \"P\", or part of a "
                     "device name")
    working = [info for info in candidates if info.ok]
    if not working:
        if spec is None:
            message = ("no OpenCL device was found" if not infos
                       else "no OpenCL device can build and run a kernel")
            raise _problem("E0603", message, infos, hint=_first_fix(infos) or INSTALL_HINT)
        raise _problem(
            "E0602", f"{origin} {spec!r} names only devices that cannot run kernels", infos,
            hint=_first_fix(candidates) or "choose a device that works (`cortexlang devices`)")
    return min(working, key=lambda info: (order.index(info.device_type),
                                          info.platform_index, info.device_index))


def matching_devices(infos: Sequence[DeviceInfo], spec: str) -> list[DeviceInfo]:
    """The devices (working or not) that a spec names; see the module docstring for forms."""
    text = spec.strip()
    if ":" in text:
        platform_part, device_part = (part.strip() for part in text.split(":", 1))
        return [info for info in infos
                if _part_matches(platform_part, info.platform_index, info.platform_name)
                and _part_matches(device_part, info.device_index, info.device_name)]
    if text.isdigit():
        return [info for info in infos if info.platform_index == int(text)]
    wanted = text.casefold()
    by_device = [info for info in infos if wanted in info.device_name.casefold()]
    if by_device:
        return by_device
    return [info for info in infos if wanted in info.platform_name.casefold()]


def _part_matches(part: str, index: int, name: str) -> bool:
    if not part:
        return True
    if part.isdigit():
        return int(part) == index
    return part.casefold() in name.casefold()


def device_table(infos: Sequence[DeviceInfo], chosen: DeviceInfo | None = None) -> Table:
    """A rich table of the probed devices: spec, name, type, driver, verdict and limits.

    The chosen device (if any) is marked with `*`; broken devices are styled red.
    """
    table = Table(title="OpenCL devices", title_justify="left")
    for column in ("", "spec", "device", "type", "driver", "verdict", "units", "work-group",
                   "local mem", "global mem"):
        table.add_column(column, no_wrap=column in ("", "spec", "type", "driver"))
    for info in infos:
        mark = "*" if chosen is not None and info.spec == chosen.spec else ""
        table.add_row(
            mark, info.spec, info.device_name, info.device_type, info.driver_version,
            "works" if info.ok else "fails (below)", str(info.max_compute_units),
            str(info.max_work_group_size),
            _format_bytes(info.local_mem_size), _format_bytes(info.global_mem_size),
            style=None if info.ok else "red")
    return table


def devices_report(spec: str | None = None, *, prefer_gpu: bool = True,
                   width: int = 120) -> str:
    """Plain text for `cortexlang devices`: the device table, the choice, failures and fixes.

    Never raises for a broken installation: when no device can be chosen the report says why.
    """
    infos = probe_devices()
    spec, origin = _resolve_spec(spec)
    chosen: DeviceInfo | None = None
    choice_problem: EnvironmentProblem | None = None
    try:
        chosen = choose_device(infos, spec, prefer_gpu=prefer_gpu, origin=origin)
    except EnvironmentProblem as problem:
        choice_problem = problem
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    if infos:
        console.print(device_table(infos, chosen))
        platforms = {info.platform_index: info for info in infos}
        console.print("platforms:", highlight=False)
        for index, info in sorted(platforms.items()):
            console.print(f"  {index}: {info.platform_name} ({info.platform_version})",
                          highlight=False)
    else:
        console.print("No OpenCL platform was found.")
    for info in infos:
        if info.ok:
            continue
        console.print(f"\n{info.spec} {info.device_name} fails:", highlight=False)
        for line in (info.reason or "unknown failure").splitlines():
            console.print(f"    {line}", highlight=False)
        if info.fix:
            console.print(f"  fix: {info.fix}", highlight=False)
    if chosen is not None:
        console.print(f"\nselected: {chosen.spec} {chosen.device_name}", highlight=False)
    elif choice_problem is not None:
        console.print(f"\n{choice_problem.render()}", highlight=False)
    return buffer.getvalue()


def _problem(code: str, message: str, infos: Sequence[DeviceInfo], *,
             hint: str) -> EnvironmentProblem:
    notes = tuple(info.describe() for info in infos) or ("no OpenCL platform is installed",)
    return EnvironmentProblem(Diagnostic(code, message, hint=hint, notes=notes))


def _first_fix(infos: Sequence[DeviceInfo]) -> str | None:
    return next((info.fix for info in infos if info.fix), None)


def _known_fix(text: str) -> str | None:
    return next((fix for signature, fix in KNOWN_FIXES if signature in text), None)


def _summarise_failure(text: str, max_lines: int = 4) -> str:
    """The first useful lines of an error or build log: error lines first, boilerplate out."""
    boilerplate = ("clBuildProgram failed", "Build on <", "(options:", "(source saved as")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines
             if line and not any(noise in line for noise in boilerplate)]
    errors = [line for line in lines if "error" in line.casefold()]
    chosen = (errors or lines)[:max_lines] or [text.strip() or "unknown failure"]
    return "\n".join(line if len(line) <= 200 else line[:197] + "..." for line in chosen)


def _device_type(type_bits: int) -> str:
    if type_bits & cl.device_type.GPU:
        return "GPU"
    if type_bits & cl.device_type.CPU:
        return "CPU"
    if type_bits & cl.device_type.ACCELERATOR:
        return "ACCELERATOR"
    return "OTHER"


def _query(handle: object, name: str, default: T) -> T:
    """A property of a platform or device, or `default` when the driver cannot answer."""
    try:
        return cast(T, getattr(handle, name))
    except (cl.Error, AttributeError):
        return default


def _format_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


def device_limits(device: Device) -> DeviceLimits:
    """The planner's view of a device, read from its OpenCL properties."""
    info = device.info
    return DeviceLimits(
        max_work_group_size=int(info.max_work_group_size),
        local_mem_size=int(info.local_mem_size),
        is_gpu=info.device_type == "GPU",
        compute_units=int(info.max_compute_units),
        preferred_vector_width=int(info.preferred_vector_width_float or 4))

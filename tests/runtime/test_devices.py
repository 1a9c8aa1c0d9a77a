"""Device probing and selection: real devices where the machine has them, fakes for the rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

from cortexlang.errors import EnvironmentProblem
from cortexlang.runtime import devices
from cortexlang.runtime.devices import (
    Device,
    DeviceInfo,
    choose_device,
    devices_report,
    matching_devices,
    probe_devices,
    select_device,
)

DEBIAN_POCL_ICD = Path("/etc/OpenCL/vendors/pocl.icd")
WHEEL_POCL_FAILURE = (
    "RuntimeError: clBuildProgram failed: BUILD_PROGRAM_FAILURE\n\n"
    "Build on <pyopencl.Device 'cpu' on 'Portable Computing Language'>:\n\n"
    "error: unknown target CPU 'generic'\n"
    "note: valid target CPU values are: nocona, core2, ..."
)


def fake(platform: int, device: int, name: str, device_type: str, ok: bool = True,
         platform_name: str = "Portable Computing Language", fix: str | None = None) -> DeviceInfo:
    return DeviceInfo(
        platform, device, platform_name, "OpenCL 3.0", name, "vendor", device_type, "1.0",
        "OpenCL 3.0", ok, reason=None if ok else "error: it broke", fix=fix)


# Platform 0: a broken CPU (the wheel's PoCL); platform 1: a working CPU (Debian's PoCL);
# platform 2: a working GPU and a broken GPU.
FLEET = [
    fake(0, 0, "pthread-cpu", "CPU", ok=False, fix="install pocl-opencl-icd"),
    fake(1, 0, "pthread-cpu", "CPU"),
    fake(2, 0, "NVIDIA H100 80GB", "GPU", platform_name="NVIDIA CUDA"),
    fake(2, 1, "NVIDIA GeForce old", "GPU", ok=False, platform_name="NVIDIA CUDA"),
]


def test_probe_finds_a_working_device_with_the_debian_icd() -> None:
    infos = probe_devices()
    if not DEBIAN_POCL_ICD.exists() and not any(info.ok for info in infos):
        pytest.skip(f"no working OpenCL device and no {DEBIAN_POCL_ICD}: run `make setup`")
    assert any(info.ok for info in infos), devices_report()
    for info in infos:
        assert info.ok == (info.reason is None)
        assert info.device_type in ("GPU", "CPU", "ACCELERATOR", "OTHER")


def test_probe_is_cached_for_the_process() -> None:
    assert probe_devices() is probe_devices()


def test_selected_device_runs_a_kernel(opencl_device: Device) -> None:
    assert opencl_device.info.ok
    context, queue = opencl_device.context, opencl_device.queue
    program = cl.Program(context, """
        __kernel void add(__global const float *a, __global const float *b,
                          __global float *out) {
            size_t i = get_global_id(0);
            out[i] = a[i] + b[i];
        }""").build()
    a = np.arange(100, dtype=np.float32)
    b = np.full(100, 0.5, dtype=np.float32)
    flags = cl.mem_flags
    a_buffer = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=a)
    b_buffer = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=b)
    out_buffer = cl.Buffer(context, flags.WRITE_ONLY, a.nbytes)
    program.add(queue, a.shape, None, a_buffer, b_buffer, out_buffer)
    out = np.empty_like(a)
    cl.enqueue_copy(queue, out, out_buffer)
    np.testing.assert_array_equal(out, a + b)


def test_selection_is_cached_and_profiling_gets_its_own_queue(opencl_device: Device) -> None:
    spec = opencl_device.info.spec
    assert select_device(spec) is select_device(spec)
    profiled = select_device(spec, profiling=True)
    assert profiled.context is opencl_device.context
    assert profiled.queue.properties & cl.command_queue_properties.PROFILING_ENABLE


def test_pyopencl_ctx_is_honoured(opencl_device: Device,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYOPENCL_CTX", opencl_device.info.spec)
    assert select_device().info == opencl_device.info
    monkeypatch.setenv("PYOPENCL_CTX", "97:3")
    with pytest.raises(EnvironmentProblem) as raised:
        select_device()
    assert raised.value.codes == ["E0601"]
    assert "PYOPENCL_CTX" in str(raised.value)


def test_bad_spec_is_an_environment_problem_with_exit_code_3() -> None:
    with pytest.raises(EnvironmentProblem) as raised:
        select_device("no-such-device-anywhere")
    assert raised.value.exit_code == 3
    assert raised.value.codes == ["E0601"]


@pytest.mark.parametrize(("spec", "expected"), [
    ("1:0", ["1:0"]),
    ("2", ["2:0", "2:1"]),
    ("h100", ["2:0"]),
    ("PTHREAD", ["0:0", "1:0"]),
    ("cuda", ["2:0", "2:1"]),           # no device name matches: platform names are tried
    ("nvidia:1", ["2:1"]),              # pyopencl's form: platform part, device part
    ("portable:", ["0:0", "1:0"]),
    (" 1:0 ", ["1:0"]),
    ("5:0", []),
])
def test_spec_forms(spec: str, expected: list[str]) -> None:
    assert [info.spec for info in matching_devices(FLEET, spec)] == expected


def test_default_choice_prefers_a_working_gpu_then_a_cpu() -> None:
    assert choose_device(FLEET, None).spec == "2:0"
    assert choose_device(FLEET, None, prefer_gpu=False).spec == "1:0"
    assert choose_device(FLEET[:2], None).spec == "1:0"
    assert choose_device(FLEET, "pthread").spec == "1:0"   # skips the broken twin


def test_spec_naming_a_broken_device_lists_every_device_and_the_fix() -> None:
    with pytest.raises(EnvironmentProblem) as raised:
        choose_device(FLEET, "0:0")
    problem = raised.value
    assert problem.codes == ["E0602"]
    diagnostic = problem.diagnostics[0]
    assert len(diagnostic.notes) == len(FLEET)
    assert diagnostic.hint == "install pocl-opencl-icd"


def test_no_working_device_says_how_to_install_one() -> None:
    with pytest.raises(EnvironmentProblem) as raised:
        choose_device([FLEET[3]], None)
    assert raised.value.codes == ["E0603"]
    with pytest.raises(EnvironmentProblem) as raised:
        choose_device([], None)
    assert raised.value.codes == ["E0603"]
    assert "pocl-opencl-icd" in raised.value.diagnostics[0].hint


def test_no_platform_at_all_is_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_platforms() -> list[cl.Platform]:
        raise cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    monkeypatch.setattr(devices, "_state", None)   # restored after the test
    monkeypatch.setattr(devices.cl, "get_platforms", no_platforms)
    monkeypatch.delenv("PYOPENCL_CTX", raising=False)
    assert probe_devices() == []
    with pytest.raises(EnvironmentProblem) as raised:
        select_device()
    assert raised.value.codes == ["E0603"]
    assert "No OpenCL platform" in devices_report()


def test_wheel_pocl_failure_is_summarised_with_its_fix() -> None:
    reason = devices._summarise_failure(WHEEL_POCL_FAILURE)
    assert reason.splitlines()[0] == "error: unknown target CPU 'generic'"
    fix = devices._known_fix(WHEEL_POCL_FAILURE)
    assert fix is not None and "apt-get install pocl-opencl-icd" in fix


def test_report_marks_the_choice_and_explains_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(FLEET[0], reason="error: unknown target CPU 'generic'")
    monkeypatch.setattr(devices, "probe_devices", lambda: [broken, FLEET[1]])
    monkeypatch.delenv("PYOPENCL_CTX", raising=False)
    report = devices_report()
    assert "selected: 1:0 pthread-cpu" in report
    assert "unknown target CPU 'generic'" in report
    assert "fix: install pocl-opencl-icd" in report

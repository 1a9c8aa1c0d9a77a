"""The kernel build cache: memory and disk hits, the no-cache path, and build failures."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

from cortexlang.errors import InternalError
from cortexlang.runtime.build import (
    KernelBuildError,
    build_program,
    clear_memory_cache,
    kernel_cache_dir,
    numbered_source,
)
from cortexlang.runtime.devices import Device


def scale_source() -> str:
    """A kernel whose source is new to every cache (the comment makes it unique)."""
    return f"""// {uuid.uuid4()}
__kernel void scale(__global float *data)
{{
    size_t i = get_global_id(0);
    data[i] = data[i] * SCALE;
}}
"""


def run_scale(device: Device, program: cl.Program) -> np.ndarray:
    data = np.arange(16, dtype=np.float32)
    buffer = cl.Buffer(device.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                       hostbuf=data)
    program.scale(device.queue, data.shape, None, buffer)
    cl.enqueue_copy(device.queue, data, buffer)
    return data


def test_second_build_is_a_memory_hit(opencl_device: Device, kernel_cache_dir: Path) -> None:
    source = scale_source()
    cold = build_program(opencl_device, source, ("-D", "SCALE=2.0f"))
    warm = build_program(opencl_device, source, ("-D", "SCALE=2.0f"))
    assert (cold.origin, cold.cache_hit) == ("compiler", False)
    assert (warm.origin, warm.cache_hit) == ("memory", True)
    assert warm.program is cold.program
    assert warm.key == cold.key


def test_binary_on_disk_is_reused_in_a_new_process(opencl_device: Device,
                                                   kernel_cache_dir: Path) -> None:
    source = scale_source()
    cold = build_program(opencl_device, source, ("-D", "SCALE=3.0f"))
    assert (kernel_cache_dir / f"{cold.key}.bin").is_file()
    assert not list(kernel_cache_dir.glob("*.tmp"))    # written atomically, nothing left
    clear_memory_cache()                                # as if this were a new process
    warm = build_program(opencl_device, source, ("-D", "SCALE=3.0f"))
    assert warm.origin == "disk"
    np.testing.assert_array_equal(run_scale(opencl_device, warm.program),
                                  np.arange(16, dtype=np.float32) * 3)


def test_options_pass_through_and_are_part_of_the_key(opencl_device: Device,
                                                      kernel_cache_dir: Path) -> None:
    source = scale_source()
    double = build_program(opencl_device, source, ("-D", "SCALE=2.0f"))
    fast = build_program(opencl_device, source, ("-D", "SCALE=5.0f", "-cl-fast-relaxed-math"))
    assert fast.origin == "compiler" and fast.key != double.key
    np.testing.assert_array_equal(run_scale(opencl_device, fast.program),
                                  np.arange(16, dtype=np.float32) * 5)


def test_corrupt_binary_falls_back_to_a_source_build(opencl_device: Device,
                                                     kernel_cache_dir: Path) -> None:
    source = scale_source()
    key = build_program(opencl_device, source, ("-D", "SCALE=2.0f")).key
    (kernel_cache_dir / f"{key}.bin").write_bytes(b"not a binary")
    clear_memory_cache()
    rebuilt = build_program(opencl_device, source, ("-D", "SCALE=2.0f"))
    assert rebuilt.origin == "compiler"
    assert (kernel_cache_dir / f"{key}.bin").read_bytes() != b"not a binary"
    np.testing.assert_array_equal(run_scale(opencl_device, rebuilt.program),
                                  np.arange(16, dtype=np.float32) * 2)


def test_without_cache_always_compiles_and_stores_nothing(opencl_device: Device,
                                                          kernel_cache_dir: Path) -> None:
    source = scale_source()
    first = build_program(opencl_device, source, ("-D", "SCALE=2.0f"), use_cache=False)
    second = build_program(opencl_device, source, ("-D", "SCALE=2.0f"), use_cache=False)
    assert first.origin == second.origin == "compiler"
    assert second.program is not first.program
    assert not kernel_cache_dir.exists() or not any(kernel_cache_dir.iterdir())


def test_build_failure_shows_the_log_and_the_numbered_source(opencl_device: Device) -> None:
    source = "__kernel void broken(__global float *data)\n{\n    data[0] = no_such_name;\n}\n"
    with pytest.raises(KernelBuildError) as raised:
        build_program(opencl_device, source, use_cache=False)
    error = raised.value
    assert isinstance(error, InternalError) and error.exit_code == 70
    message = str(error)
    assert "no_such_name" in error.build_log
    assert "OpenCL build log:" in message and "bug in cortexlang" in message
    assert ">3 |     data[0] = no_such_name;" in message
    assert error.dump_path is not None and error.dump_path in message
    dump = Path(error.dump_path)
    assert (dump / "kernel.cl").read_text() == source
    assert "no_such_name" in (dump / "build.log").read_text()


def test_numbered_source_cuts_a_long_source_to_the_logged_lines() -> None:
    source = "\n".join(f"line {number}" for number in range(1, 501))
    text = numbered_source(source, {250}, context=1)
    assert text.splitlines() == [
        " ... |", " 249 | line 249", ">250 | line 250", " 251 | line 251",
        " ... | (249 more lines in the dump)"]


def test_cache_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("CORTEXLANG_CACHE_DIR", str(tmp_path / "explicit"))
    assert kernel_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("CORTEXLANG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel_cache_dir() == tmp_path / "xdg" / "cortexlang" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kernel_cache_dir() == tmp_path / "home" / ".cache" / "cortexlang" / "kernels"

"""The limits of the machine, measured on the chosen OpenCL device: what cortexlang's kernels
can at best reach, so that each speed it reports can be judged against a ceiling.

`measure_machine(device)` measures

- compute: the float32 GFLOP/s of the register-blocked GEMM of `benchmarks.gemm` at the
  device's own best vector width (`preferred_vector_width_float`, clamped to 4..16; when
  `select_device(vector_width=...)` forces another, both), the best of its candidates (and
  `vector_width` the width of the best), and of a vendor BLAS
  on the same hardware in the same run (numpy's sgemm for a CPU device, and torch's on the
  CPU or on CUDA for a GPU, in a fresh process, when torch is installed). `peak_gflops`, the
  ceiling every cell's floor uses, is the best of the two, so a floor is never set by a
  weak probe; next to them a register-only FMA loop and the GPU-style local-memory kernel
  (to show what not to write);
- memory: a large float16 copy kernel (bytes read + bytes written, STREAM's convention) and
  a read-only sum kernel (what streaming weights costs), with numpy's copy as a cross-check;
- launch latency: an empty kernel enqueued and waited for, and the enqueue call alone.

Every number is a median over repeats after warm-up. `quick=True` uses small sizes and few
repeats so that CI can run it in a few seconds. The other processes' share of the CPU
during the measurement is reported too (`background_load`): on a shared machine it
explains numbers below the usual ones.

    python -m benchmarks.machine [--quick] [--device SPEC]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyopencl as cl

from benchmarks.gemm import (
    GemmConfig,
    peak_candidates,
    profiling_queue,
    time_gemm,
    time_naive_gemm,
)
from benchmarks.timing import background_load, time_callable, timing_from_samples

if TYPE_CHECKING:
    from cortexlang.runtime.devices import Device


@dataclass(frozen=True)
class MachineLimits:
    """What the device can do; GFLOP/s are float32, bandwidths in GB/s (1e9 bytes/s)."""

    device_name: str
    compute_units: int
    peak_gflops: float
    peak_kernel: str
    gemm_size: int
    vector_width: int
    sweep_gflops: float
    sweep_kernel: str
    blas_gflops: float
    blas_name: str
    fma_peak_gflops: float
    naive_tiled_gflops: float | None
    numpy_sgemm_gflops: float
    bandwidth_gbs: float
    read_bandwidth_gbs: float
    numpy_copy_gbs: float
    launch_wait_us: float
    enqueue_us: float
    quick: bool
    background_load: float | None

    def summary(self) -> str:
        """A few lines for humans."""
        naive = (f"{self.naive_tiled_gflops:.1f} GFLOP/s" if self.naive_tiled_gflops is not None
                 else "not measured (quick)")
        load = ("unknown" if self.background_load is None
                else f"{100 * self.background_load:.0f}% of the CPUs")
        return "\n".join([
            f"device            {self.device_name} ({self.compute_units} compute units)",
            f"peak GEMM         {self.peak_gflops:.1f} GFLOP/s  ({self.peak_kernel}, "
            f"{self.gemm_size}^3)",
            f"  our sweep       {self.sweep_gflops:.1f} GFLOP/s  ({self.sweep_kernel}, "
            f"vector width {self.vector_width})",
            f"  vendor BLAS     {self.blas_gflops:.1f} GFLOP/s  ({self.blas_name})",
            f"FMA ceiling       {self.fma_peak_gflops:.1f} GFLOP/s  (registers only)",
            f"GPU-style tiled   {naive}",
            f"numpy sgemm       {self.numpy_sgemm_gflops:.1f} GFLOP/s",
            f"copy bandwidth    {self.bandwidth_gbs:.1f} GB/s  (read + write)",
            f"read bandwidth    {self.read_bandwidth_gbs:.1f} GB/s",
            f"numpy copy        {self.numpy_copy_gbs:.1f} GB/s",
            f"launch + wait     {self.launch_wait_us:.1f} us",
            f"enqueue alone     {self.enqueue_us:.1f} us",
            f"other processes   {load} during the measurement",
        ])


_FMA_ACCUMULATORS = 12


def _fma_source(width: int) -> str:
    names = [f"a{i}" for i in range(_FMA_ACCUMULATORS)]
    vector = f"float{width}"
    return "\n".join([
        f"__kernel void fma_peak_{width}(__global {vector} *out, const float seed,"
        " const int iterations)",
        "{",
        *[f"    {vector} {name} = ({vector})(seed * {i}.0f);" for i, name in enumerate(names)],
        f"    const {vector} m = ({vector})(0.999f), c = ({vector})(0.001f);",
        "    for (int i = 0; i < iterations; ++i) {",
        *[f"        {name} = fma({name}, m, c);" for name in names],
        "    }",
        f"    out[get_global_id(0)] = {' + '.join(names)};",
        "}",
    ]) + "\n"


def _device_ms(queue: cl.CommandQueue, kernel: cl.Kernel, global_size: tuple[int, ...],
               local_size: tuple[int, ...] | None, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        cl.enqueue_nd_range_kernel(queue, kernel, global_size, local_size)
    queue.finish()
    samples = []
    for _ in range(repeats):
        event = cl.enqueue_nd_range_kernel(queue, kernel, global_size, local_size)
        event.wait()
        samples.append((event.profile.end - event.profile.start) / 1e6)
    return timing_from_samples(samples).median_ms


def fma_peak_gflops(device: Device, queue: cl.CommandQueue, quick: bool = False) -> float:
    """GFLOP/s of independent FMA chains in registers: float8 and float16, the better one.

    Kernels shorter than about a millisecond under-report (the driver's threads are still
    waking up), so even the quick variant runs for about 0.5 ms per launch.
    """
    items = 64 * max(1, device.device.max_compute_units)
    iterations = 5000 if quick else 20000
    best = 0.0
    for width in (8, 16):
        program = cl.Program(device.context, _fma_source(width)).build()
        kernel = cl.Kernel(program, f"fma_peak_{width}")
        out = cl.Buffer(device.context, cl.mem_flags.WRITE_ONLY, items * width * 4)
        kernel.set_args(out, np.float32(1.0), np.int32(iterations))
        milliseconds = _device_ms(queue, kernel, (items,), (1,), 1, 3 if quick else 7)
        flops = 2.0 * items * iterations * _FMA_ACCUMULATORS * width
        best = max(best, flops / (milliseconds * 1e6))
    return best


_BANDWIDTH_SOURCE = """
__kernel void copy_stream(__global const float16 *source, __global float16 *destination)
{
    const size_t i = get_global_id(0);
    destination[i] = source[i];
}

__kernel void read_stream(__global const float16 *source, __global float16 *sums,
                          const int chunk)
{
    __global const float16 *p = source + get_global_id(0) * (size_t)chunk;
    float16 s0 = (float16)(0.0f), s1 = (float16)(0.0f), s2 = (float16)(0.0f),
            s3 = (float16)(0.0f);
    for (int i = 0; i < chunk; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    sums[get_global_id(0)] = s0 + s1 + s2 + s3;
}
"""

_READ_CHUNK = 1024   # float16 vectors per work-item (64 KiB)


def bandwidth_gbs(device: Device, queue: cl.CommandQueue, megabytes: int, repeats: int
                  ) -> tuple[float, float]:
    """(copy GB/s counting read + write bytes, read-only GB/s) over a buffer of `megabytes`."""
    count = megabytes * (1 << 20) // 4
    vectors = count // 16
    vectors -= vectors % _READ_CHUNK
    host = np.ones(vectors * 16, dtype=np.float32)
    flags = cl.mem_flags
    source = cl.Buffer(device.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=host)
    destination = cl.Buffer(device.context, flags.READ_WRITE, host.nbytes)
    sums = cl.Buffer(device.context, flags.WRITE_ONLY, (vectors // _READ_CHUNK) * 64)
    program = cl.Program(device.context, _BANDWIDTH_SOURCE).build()
    copy = cl.Kernel(program, "copy_stream")
    copy.set_args(source, destination)
    read = cl.Kernel(program, "read_stream")
    read.set_args(source, sums, np.int32(_READ_CHUNK))
    copy_ms = _device_ms(queue, copy, (vectors,), None, 2, repeats)
    read_ms = _device_ms(queue, read, (vectors // _READ_CHUNK,), (1,), 2, repeats)
    return 2 * host.nbytes / (copy_ms * 1e6), host.nbytes / (read_ms * 1e6)


def numpy_copy_gbs(megabytes: int, repeats: int) -> float:
    """np.copyto between two arrays of `megabytes`, counting read + write bytes."""
    source = np.ones(megabytes * (1 << 20) // 4, dtype=np.float32)
    destination = np.empty_like(source)
    timing = time_callable(lambda: np.copyto(destination, source), 2, repeats)
    return 2 * source.nbytes / (timing.median_ms * 1e6)


def numpy_sgemm_gflops(size: int, repeats: int) -> float:
    """numpy's float32 matrix product (its BLAS, default threads) on size^3."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    timing = time_callable(lambda: a @ b, 2, repeats)
    return 2.0 * size ** 3 / (timing.median_ms * 1e6)


def launch_latency_us(device: Device, repeats: int) -> tuple[float, float]:
    """(enqueue of an empty kernel + wait, enqueue call alone), medians in microseconds.

    Uses the lowest-overhead pyopencl path (`set_args` once, `enqueue_nd_range_kernel`);
    the enqueue-alone samples are taken in bursts of 32 with a finish between bursts.
    """
    queue = cl.CommandQueue(device.context, device.device)
    program = cl.Program(device.context, "__kernel void empty_kernel(void) {}").build()
    kernel = cl.Kernel(program, "empty_kernel")

    def launch_and_wait() -> None:
        cl.enqueue_nd_range_kernel(queue, kernel, (1,), None)
        queue.finish()

    wait = time_callable(launch_and_wait, 20, repeats)
    enqueue_samples: list[float] = []
    while len(enqueue_samples) < repeats:
        for _ in range(32):
            started = time.perf_counter_ns()
            cl.enqueue_nd_range_kernel(queue, kernel, (1,), None)
            enqueue_samples.append((time.perf_counter_ns() - started) / 1e3)
        queue.finish()
    enqueue = float(np.median(enqueue_samples))
    return wait.median_ms * 1e3, enqueue


def peak_gemm(device: Device, queue: cl.CommandQueue, size: int,
              candidates: tuple[GemmConfig, ...], repeats: int) -> tuple[float, GemmConfig]:
    """The best GFLOP/s (device time) of `candidates` on a size^3 product, and its config."""
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    b = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    best = (0.0, candidates[0])
    for config in candidates:
        timing = time_gemm(device, config, a, b, queue=queue, repeats=repeats)
        if timing.max_error > 1e-4:
            raise AssertionError(f"{config.describe()} computed a wrong product "
                                 f"(relative error {timing.max_error:.2e})")
        best = max(best, (timing.kernel_gflops, config), key=lambda pair: pair[0])
    return best


_TORCH_SGEMM = """
import json, sys, time
import torch
device, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if device == "cuda" and not torch.cuda.is_available():
    sys.exit(3)
a = torch.rand(size, size, device=device)
b = torch.rand(size, size, device=device)
samples = []
for i in range(repeats + 2):
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    torch.mm(a, b)
    if device == "cuda":
        torch.cuda.synchronize()
    samples.append(time.perf_counter() - started)
samples = sorted(samples[2:])
name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
print(json.dumps({"gflops": 2.0 * size ** 3 / samples[len(samples) // 2] / 1e9,
                  "name": f"torch {torch.__version__} mm on {name}"}))
"""


def torch_sgemm_gflops(device: str, size: int, repeats: int) -> tuple[float, str] | None:
    """torch's float32 matrix product on `device` ("cpu" or "cuda") in a fresh process (its
    thread pool must not keep spinning beside the kernels measured next); None without torch
    or without the device."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("torch") is None:
        return None
    try:
        done = subprocess.run([sys.executable, "-c", _TORCH_SGEMM, device, str(size),
                               str(repeats)], capture_output=True, text=True, timeout=120,
                              check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0 or not done.stdout.strip():
        return None
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return float(measured["gflops"]), str(measured["name"])


def best_vector_width(device: Device, *, native: bool = True) -> int:
    """The GEMM probe's vector width: the device's own preferred float width (`native`:
    the driver's, even when another width is forced), within 4..16."""
    info = device.info
    preferred = int((native and info.native_vector_width_float)
                    or info.preferred_vector_width_float or 4)
    return max(width for width in (4, 8, 16) if width <= max(4, preferred))


def vendor_blas(device: Device, size: int, repeats: int, quick: bool) -> tuple[float, str]:
    """The best vendor BLAS on the device's hardware: numpy's (and, not quick, torch's) for
    a CPU device; torch's on CUDA for a GPU (numpy's, on the host, only as a fallback)."""
    numpy_blas = (numpy_sgemm_gflops(size, repeats), "numpy sgemm (host CPU)")
    if device.info.device_type == "GPU":
        measured = torch_sgemm_gflops("cuda", 4096 if not quick else 2048, repeats)
        return measured if measured is not None else numpy_blas
    found = [numpy_blas]
    if not quick:
        measured = torch_sgemm_gflops("cpu", size, repeats)
        if measured is not None:
            found.append(measured)
    return max(found)


def measure_machine(device: Device, quick: bool = False) -> MachineLimits:
    """Measure the device's limits (see the module docstring); `quick` takes a few seconds."""
    queue = profiling_queue(device)
    size = 512 if quick else 1024
    repeats = 5 if quick else 15
    # The ceiling comes from the device's own width; a forced width (the kernels' plan) is
    # swept too, so a probe at a narrower width than the hardware's never lowers the floor.
    widths = sorted({best_vector_width(device), best_vector_width(device, native=False)},
                    reverse=True)
    with background_load() as load:
        candidates = tuple(config for width in widths
                           for config in peak_candidates(width)[:1 if quick else None])
        sweep, config = peak_gemm(device, queue, size, candidates, repeats)
        width = config.width
        blas, blas_name = vendor_blas(device, size, repeats, quick)
        fma = fma_peak_gflops(device, queue, quick)
        naive = None if quick else time_naive_gemm(device, 512, queue=queue).kernel_gflops
        sgemm = numpy_sgemm_gflops(size, repeats) if "numpy" not in blas_name else blas
        megabytes = 64 if quick else 256
        copy, read = bandwidth_gbs(device, queue, megabytes, repeats)
        numpy_copy = numpy_copy_gbs(megabytes, repeats)
        launch_wait, enqueue = launch_latency_us(device, 200 if quick else 2000)
    return MachineLimits(
        device_name=device.device.name.strip(),
        compute_units=int(device.device.max_compute_units),
        peak_gflops=max(sweep, blas),
        peak_kernel=config.describe() if sweep >= blas else blas_name, gemm_size=size,
        vector_width=width, sweep_gflops=sweep, sweep_kernel=config.describe(),
        blas_gflops=blas, blas_name=blas_name,
        fma_peak_gflops=fma, naive_tiled_gflops=naive, numpy_sgemm_gflops=sgemm,
        bandwidth_gbs=copy, read_bandwidth_gbs=read, numpy_copy_gbs=numpy_copy,
        launch_wait_us=launch_wait, enqueue_us=enqueue, quick=quick,
        background_load=load.fraction)


def main(argv: list[str] | None = None) -> None:
    from cortexlang.runtime.devices import select_device

    parser = argparse.ArgumentParser(description="Measure the OpenCL device's limits.")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--device", default=None, help="device spec, as for select_device")
    parser.add_argument("--json", action="store_true", help="print the fields as JSON")
    parser.add_argument("--vector-width", type=int, choices=(4, 8, 16),
                        help="use this vector width instead of the device's preferred one")
    args = parser.parse_args(argv)
    device = select_device(args.device, vector_width=args.vector_width)
    limits = measure_machine(device, quick=args.quick)
    if args.json:
        import json
        print(json.dumps(asdict(limits), indent=2))
    else:
        print(limits.summary())


if __name__ == "__main__":
    main()

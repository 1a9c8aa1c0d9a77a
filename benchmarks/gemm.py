"""Matrix-product kernels in OpenCL C for CPU devices (PoCL), their host-side packing, and
a runner that times them.

`C[M, N] = A[M, K] @ B[K, N]`, row-major `A` and `C`. The fast kernel is a register-blocked
outer product, the design that reaches a large fraction of the CPU's peak under PoCL:

- every work-item owns a tile of `rows` rows of C by `vectors` x `width` columns and keeps
  it in `rows * vectors` accumulators of type `float<width>` that are *named variables*
  (`acc_0_0`, `acc_0_1`, ...): PoCL keeps an array of accumulators in memory, named ones in
  registers;
- `B` is repacked once on the host into column panels, `Bp[panel][k][vectors * width]`, so
  a work-item reads the `vectors` vectors it needs at each k from one contiguous line and
  walks its panel front to back (for the compiler, B is a weight matrix: packed once);
- at each k the work-item broadcasts `A[row, k]` for each of its rows and does one `fma`
  per accumulator, so it does `rows * vectors` vector FMAs per `vectors` vector loads;
- `A` is read in place (row-major), or from a packed copy `Ap[tile][k][rows]` (option
  `packed_a`) that turns the `rows` scalar loads of each k into one short vector load.

For the compiler's batched matrix-vector products (W [5H, 2H] times the states of the n
nodes of a level), `A` is the level's gathered child states, one row per node ([n, 2H],
the natural layout of a state table), `B` is W transposed and packed, and C holds one row of
gates per node. Rows past M (the last, partial row tile) read row M - 1 and are not stored.

`naive_tiled_source` is the usual GPU design (16 x 16 tiles staged through local memory),
kept as the reference that shows why that design is the wrong one for a CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pyopencl as cl

from benchmarks.timing import Timing, timing_from_samples

if TYPE_CHECKING:
    from cortexlang.runtime.devices import Device


@dataclass(frozen=True)
class GemmConfig:
    """One register-blocked kernel variant.

    rows:      rows of C per work-item (the broadcast operand)
    vectors:   vectors of C columns per work-item
    width:     OpenCL vector width (4, 8 or 16 floats)
    packed_a:  read A from a packed copy [M / rows][K][rows] instead of in place
    unroll:    k iterations per trip of the main loop, unrolled by hand (1: none)
    local:     work-group size (columns, rows) or None to let the driver choose
    """

    rows: int = 4
    vectors: int = 2
    width: int = 16
    packed_a: bool = False
    unroll: int = 1
    local: tuple[int, int] | None = (1, 1)

    @property
    def panel_columns(self) -> int:
        return self.vectors * self.width

    @property
    def name(self) -> str:
        return f"gemm_r{self.rows}_v{self.vectors}x{self.width}" + ("_pa" if self.packed_a else "")

    def describe(self) -> str:
        local = "auto" if self.local is None else f"{self.local[0]}x{self.local[1]}"
        return (f"{self.rows}x{self.vectors}*float{self.width} "
                f"({self.rows * self.vectors} acc), A {'packed' if self.packed_a else 'rows'}, "
                f"unroll {self.unroll}, wg {local}")


def _k_step(config: GemmConfig, k: str, offset: int) -> list[str]:
    """The body of one k iteration: load the B vectors at b + offset, broadcast each row's
    A value, one fma per accumulator. Names are suffixed per unrolled step."""
    rows, vectors, vector = config.rows, config.vectors, f"float{config.width}"
    suffix = f"_{offset // vectors}"
    lines = [f"        const {vector} b{v}{suffix} = b[{offset + v}];" for v in range(vectors)]
    if config.packed_a and rows in (2, 4, 8, 16):
        lines.append(f"        const float{rows} a{suffix} = vload{rows}({k}, a_tile);")
        scalars = [f"a{suffix}.s{'0123456789abcdef'[r]}" for r in range(rows)]
    elif config.packed_a:
        scalars = [f"a_tile[({k}) * {rows} + {r}]" for r in range(rows)]
    else:
        scalars = [f"a{r}[{k}]" for r in range(rows)]
    for r in range(rows):
        lines.append(f"        const {vector} x{r}{suffix} = ({vector})({scalars[r]});")
        lines += [f"        acc_{r}_{v} = fma(x{r}{suffix}, b{v}{suffix}, acc_{r}_{v});"
                  for v in range(vectors)]
    return lines


def gemm_source(config: GemmConfig) -> str:
    """OpenCL C for one `GemmConfig` (see the module docstring for the design)."""
    rows, vectors, width = config.rows, config.vectors, config.width
    vector = f"float{width}"
    accumulators = [(r, v) for r in range(rows) for v in range(vectors)]
    lines = [
        f"/* C[M, N] = A[M, K] @ B[K, N]: {rows} rows x {vectors} {vector} per work-item;",
        f"   B packed as [N / {config.panel_columns}][K][{config.panel_columns}]"
        + (f"; A packed as [ceil(M / {rows})][K][{rows}] */" if config.packed_a else " */"),
        f"__kernel void {config.name}(const int M, const int N, const int K,",
        "        __global const float *restrict A,",
        f"        __global const {vector} *restrict B,",
        "        __global float *restrict C)",
        "{",
        "    const int panel = get_global_id(0);",
        "    const int tile = get_global_id(1);",
        f"    const int row0 = tile * {rows};",
        f"    if (row0 >= M || panel * {config.panel_columns} >= N)",
        "        return;",
        f"    __global const {vector} *b = B + (size_t)panel * K * {vectors};",
    ]
    if config.packed_a:
        lines.append(f"    __global const float *a_tile = A + (size_t)tile * K * {rows};")
    else:
        for r in range(rows):
            lines.append(f"    __global const float *a{r} = "
                         f"A + (size_t)min(row0 + {r}, M - 1) * K;")
    lines += [f"    {vector} acc_{r}_{v} = ({vector})(0.0f);" for r, v in accumulators]
    lines.append("    int k = 0;")
    if config.unroll > 1:
        # Unrolled by hand: PoCL's compiler declines `#pragma unroll` on this loop.
        lines.append(f"    for (; k + {config.unroll} <= K; k += {config.unroll}) {{")
        for step in range(config.unroll):
            lines += _k_step(config, f"k + {step}", step * vectors)
        lines.append(f"        b += {config.unroll * vectors};")
        lines.append("    }")
    lines.append("    for (; k < K; ++k) {")
    lines += _k_step(config, "k", 0)
    lines.append(f"        b += {vectors};")
    lines.append("    }")
    lines.append(f"    __global float *c = C + (size_t)row0 * N + panel * {config.panel_columns};")
    for r in range(rows):
        guard = "" if r == 0 else f"if (row0 + {r} < M) "
        stores = " ".join(f"vstore{width}(acc_{r}_{v}, {v}, c + {r} * N);"
                          for v in range(vectors))
        lines.append(f"    {guard}{{ {stores} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


PEAK_CANDIDATES = (
    GemmConfig(rows=4, vectors=4, width=16, local=None),
    GemmConfig(rows=6, vectors=4, width=16),
    GemmConfig(rows=12, vectors=1, width=16, packed_a=True),
)
"""The kernels `measure_machine` tries for the peak, best first (from the sweep in README)."""


def peak_candidates(width: int) -> tuple[GemmConfig, ...]:
    """PEAK_CANDIDATES at vector width `width` (4, 8 or 16), each keeping its columns per
    work-item: a device whose best width is 8 gets twice the vectors of width 8."""
    if width not in (4, 8, 16):
        raise ValueError(f"the GEMM kernels use float4, float8 or float16, not width {width}")
    return tuple(replace(config, width=width,
                         vectors=max(1, config.vectors * config.width // width))
                 for config in PEAK_CANDIDATES)

NAIVE_TILE = 16


def naive_tiled_source() -> str:
    """The GPU-style kernel: 16 x 16 work-groups, tiles of A and B staged in local memory."""
    t = NAIVE_TILE
    return f"""
__kernel __attribute__((reqd_work_group_size({t}, {t}, 1)))
void gemm_local_tiled(const int M, const int N, const int K,
        __global const float *A, __global const float *B, __global float *C)
{{
    __local float a_tile[{t}][{t}];
    __local float b_tile[{t}][{t}];
    const int col = get_global_id(0), row = get_global_id(1);
    const int lc = get_local_id(0), lr = get_local_id(1);
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += {t}) {{
        a_tile[lr][lc] = A[row * K + k0 + lc];
        b_tile[lr][lc] = B[(k0 + lr) * N + col];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < {t}; ++k)
            acc += a_tile[lr][k] * b_tile[k][lc];
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    C[row * N + col] = acc;
}}
"""


def pack_b(b: np.ndarray, panel_columns: int) -> np.ndarray:
    """B [K, N] as panels [ceil(N / p)][K][p], zero-padded on the right; float32."""
    k, n = b.shape
    padded_n = -(-n // panel_columns) * panel_columns
    padded = np.zeros((k, padded_n), dtype=np.float32)
    padded[:, :n] = b
    return np.ascontiguousarray(
        padded.reshape(k, padded_n // panel_columns, panel_columns).transpose(1, 0, 2))


def pack_a(a: np.ndarray, rows: int) -> np.ndarray:
    """A [M, K] as tiles [ceil(M / rows)][K][rows], zero-padded at the bottom; float32."""
    m, k = a.shape
    padded_m = -(-m // rows) * rows
    padded = np.zeros((padded_m, k), dtype=np.float32)
    padded[:m] = a
    return np.ascontiguousarray(padded.reshape(padded_m // rows, rows, k).transpose(0, 2, 1))


@dataclass(frozen=True)
class GemmTiming:
    """One kernel on one shape: device time (profiling events) and enqueue-to-finish time."""

    kernel: Timing
    call: Timing
    flops: float
    max_error: float

    @property
    def kernel_gflops(self) -> float:
        return self.flops / (self.kernel.median_ms * 1e6)

    @property
    def call_gflops(self) -> float:
        return self.flops / (self.call.median_ms * 1e6)


def profiling_queue(device: Device) -> cl.CommandQueue:
    """An in-order queue on the device's context with profiling enabled."""
    return cl.CommandQueue(device.context, device.device,
                           properties=cl.command_queue_properties.PROFILING_ENABLE)


def _build(device: Device, source: str) -> cl.Program:
    try:
        from cortexlang.runtime.build import build_program
    except ImportError:  # pragma: no cover - the runtime is part of the project
        return cl.Program(device.context, source).build(options=["-cl-fast-relaxed-math"])
    return build_program(device, source, ("-cl-fast-relaxed-math",)).program


def _time_kernel(queue: cl.CommandQueue, kernel: cl.Kernel, global_size: tuple[int, ...],
                 local_size: tuple[int, ...] | None, warmup: int, repeats: int,
                 min_seconds: float) -> tuple[Timing, Timing]:
    """Device time from profiling events and host time from enqueue to finish, per launch."""
    for _ in range(warmup):
        cl.enqueue_nd_range_kernel(queue, kernel, global_size, local_size)
    queue.finish()
    device_ms: list[float] = []
    host_ms: list[float] = []
    started = time.perf_counter()
    while len(host_ms) < repeats or (time.perf_counter() - started < min_seconds
                                     and len(host_ms) < 50 * repeats):
        begin = time.perf_counter_ns()
        event = cl.enqueue_nd_range_kernel(queue, kernel, global_size, local_size)
        event.wait()
        host_ms.append((time.perf_counter_ns() - begin) / 1e6)
        device_ms.append((event.profile.end - event.profile.start) / 1e6)
    return timing_from_samples(device_ms), timing_from_samples(host_ms)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def time_gemm(device: Device, config: GemmConfig, a: np.ndarray, b: np.ndarray, *,
              queue: cl.CommandQueue | None = None, warmup: int = 2, repeats: int = 5,
              min_seconds: float = 0.0) -> GemmTiming:
    """Build `config`, run C = a @ b on the device, check it against numpy and time it."""
    queue = queue or profiling_queue(device)
    m, k = a.shape
    n = b.shape[1]
    b_packed = pack_b(b, config.panel_columns)
    padded_n = b_packed.shape[0] * config.panel_columns
    a_host = pack_a(a, config.rows) if config.packed_a else np.ascontiguousarray(a, np.float32)
    flags = cl.mem_flags
    a_buffer = cl.Buffer(device.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=a_host)
    b_buffer = cl.Buffer(device.context, flags.READ_ONLY | flags.COPY_HOST_PTR,
                         hostbuf=b_packed)
    c_host = np.zeros((m, padded_n), dtype=np.float32)
    c_buffer = cl.Buffer(device.context, flags.WRITE_ONLY, c_host.nbytes)
    kernel = cl.Kernel(_build(device, gemm_source(config)), config.name)
    kernel.set_args(np.int32(m), np.int32(padded_n), np.int32(k), a_buffer, b_buffer, c_buffer)
    global_size = (b_packed.shape[0], -(-m // config.rows))
    if config.local is not None:
        global_size = (_round_up(global_size[0], config.local[0]),
                       _round_up(global_size[1], config.local[1]))
    kernel_timing, call_timing = _time_kernel(queue, kernel, global_size, config.local, warmup,
                                              repeats, min_seconds)
    cl.enqueue_copy(queue, c_host, c_buffer)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(c_host[:, :n] - expected).max() / max(1.0, np.abs(expected).max()))
    return GemmTiming(kernel_timing, call_timing, 2.0 * m * n * k, error)


def time_naive_gemm(device: Device, size: int, *, queue: cl.CommandQueue | None = None,
                    repeats: int = 3) -> GemmTiming:
    """The GPU-style local-memory kernel on size x size x size (size a multiple of 16)."""
    queue = queue or profiling_queue(device)
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    b = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    flags = cl.mem_flags
    buffers = [cl.Buffer(device.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=x)
               for x in (a, b)]
    c_host = np.zeros((size, size), dtype=np.float32)
    c_buffer = cl.Buffer(device.context, flags.WRITE_ONLY, c_host.nbytes)
    kernel = cl.Kernel(_build(device, naive_tiled_source()), "gemm_local_tiled")
    kernel.set_args(np.int32(size), np.int32(size), np.int32(size), *buffers, c_buffer)
    kernel_timing, call_timing = _time_kernel(queue, kernel, (size, size),
                                              (NAIVE_TILE, NAIVE_TILE), 1, repeats, 0.0)
    cl.enqueue_copy(queue, c_host, c_buffer)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(c_host - expected).max() / np.abs(expected).max())
    return GemmTiming(kernel_timing, call_timing, 2.0 * size ** 3, error)

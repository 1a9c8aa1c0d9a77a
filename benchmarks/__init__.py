"""Baselines and machine measurements that cortexlang's kernels are compared against.

`benchmarks.timing` times a callable, `benchmarks.machine` measures the OpenCL device's limits
(GEMM peak, memory bandwidth, launch latency), and `benchmarks.baselines` holds the reference
implementations of the five models (numpy, PyTorch, JAX) that cortexlang must beat.
"""

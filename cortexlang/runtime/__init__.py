"""The run-time side: OpenCL devices, the kernel build cache, and execution.

Submodules are imported where they are used (`cortexlang.runtime.devices`,
`cortexlang.runtime.build`), so that importing the package does not load OpenCL.
"""

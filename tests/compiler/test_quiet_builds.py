"""Builds are quiet: no compiler message reaches stderr unless asked for, and no emitted
vector type is wider than the device's vector width.

On a CPU without AVX-512, PoCL warns about a `float16` argument ("AVX vector argument of type
'__private float16' without 'avx512f' enabled changes the ABI") and pyopencl turns any
non-empty build log into a CompilerWarning on stderr. The emitted source now carries only
the helpers its kernels call, never wider than the planner's vector width (taken from the
device limits); the build keeps its log (`BuildResult.log`, shown by `run --verbose`). The
local device's width is tested, and the same device with its width forced to 8 through the
limits, as an AVX2 machine reports it.
"""

from __future__ import annotations

import re
import uuid
import warnings
from dataclasses import replace

import pytest
from compiler_support import (
    EXAMPLE_NAMES,
    compile_program,
    random_batch,
    small_example,
    weights_for,
)

from cortexlang.cli import main
from cortexlang.passes.pipeline import Options
from cortexlang.runtime.build import build_program
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import CompiledModel, device_limits

pytestmark = pytest.mark.opencl

_VECTOR = re.compile(r"\b(?:float|int)(\d+)\b|\bv(?:load|store)(\d+)\b")


def widest_vector(source: str) -> int:
    """The most lanes of any vector type, load or store the source names (1: none)."""
    return max((int(a or b) for a, b in _VECTOR.findall(source)), default=1)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("width", [None, 8], ids=["device-width", "width-8"])
def test_every_example_builds_and_runs_without_a_word_on_stderr(
        name: str, width: int | None, opencl_device: Device,
        capfd: pytest.CaptureFixture[str]) -> None:
    """At the device's width, the small sizes every differential test builds (shared
    builds); at width 8, H = 16, where the device's own width could pick 16 lanes."""
    limits = device_limits(opencl_device)
    program = small_example(name)
    if width is not None:
        limits = replace(limits, preferred_vector_width=width)
        program = small_example(name, H=16)
    result = compile_program(program, Options(), limits)
    assert widest_vector(result.source) <= max(1, limits.preferred_vector_width)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = CompiledModel(result, opencl_device)
        model.bind_weights(weights_for(program))
        model.run(random_batch(program, 2, 0))
    assert [str(warning.message) for warning in caught] == []
    assert capfd.readouterr().err == ""


def test_only_the_helpers_a_kernel_calls_are_emitted() -> None:
    """DAG-RNN calls no sigmoid: its source declares none; TreeLSTM's only at its width."""
    assert "cx_sigmoid" not in compile_program(small_example("dagrnn")).source
    source = compile_program(small_example("treelstm")).source
    declared = re.findall(r"^(float\d*) cx_sigmoid", source, re.MULTILINE)
    assert declared and all(widest_vector(kind) <= 4 for kind in declared)


def test_a_build_log_is_kept_not_printed(opencl_device: Device,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    """A source whose build succeeds with a warning: the log is in the result, and neither
    pyopencl's CompilerWarning nor the log reaches stderr."""
    marker = f"quiet-{uuid.uuid4().hex[:8]}"
    # The marker also in the code: PoCL caches builds by their preprocessed source.
    source = (f'#warning "{marker}"\n__kernel void nothing(__global float* x) '
              f'{{ x[0] = {uuid.uuid4().int % 100000}.0f; }}\n')
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = build_program(opencl_device, source, use_cache=False)
    assert [str(warning.message) for warning in caught] == []
    assert capfd.readouterr().err == ""
    assert marker in result.log


def test_the_run_command_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "examples/treegru.cx", "-D", "H=8", "-D", "V=64", "--synthetic", "2",
            "--backend", "compiled"]
    capfd.readouterr()
    assert main(argv) == 0
    assert capfd.readouterr().err == ""

"""The corpus of legal programs the compiler once got wrong (tests/compiler/corpus/*.cx).

Each program runs compiled, with every optimisation and with none, on CPU limits of the local
device and on fixed GPU-like limits (the other plans), and must agree with the reference
interpreter. The programs: a max over children under the leaf guard (on a tree and a DAG),
the leaf guard applied twice to one input, a guarded input times its softmax, a head that
renames a state beside another head, and programs whose names are the compiler's own
(temporaries t0.., lets v0.., node values child0/count, C keywords and locals).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from compiler_support import all_off, all_on, program_from_source, random_batch
from differential import Differential, Inputs

from cortexlang.errors import CortexError
from cortexlang.ir.checked import CheckedProgram
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.devices import Device
from cortexlang.runtime.execute import device_limits

CORPUS = Path(__file__).resolve().parent / "corpus"
PROGRAMS = tuple(sorted(path.stem for path in CORPUS.glob("*.cx")))
GPU = DeviceLimits(is_gpu=True, max_work_group_size=64, compute_units=4, local_mem_size=65536)


@functools.cache
def corpus_program(name: str) -> CheckedProgram:
    path = CORPUS / f"{name}.cx"
    return program_from_source(path.read_text(), str(path))


@functools.cache
def corpus_inputs(name: str) -> Inputs:
    return Inputs(f"corpus {name}", random_batch(corpus_program(name), 6, 0))


@pytest.fixture(scope="module")
def cpu(opencl_device: Device) -> Differential:
    return Differential(opencl_device, device_limits(opencl_device))


@pytest.fixture(scope="module")
def gpu(opencl_device: Device) -> Differential:
    return Differential(opencl_device, GPU)


def test_the_corpus_is_there() -> None:
    assert {"tree_max_guard", "dag_max_guard", "guard_twice", "guarded_softmax", "last_head",
            "user_t0", "generated_names", "generated_node_names"} <= set(PROGRAMS)


@pytest.mark.opencl
@pytest.mark.parametrize("name", PROGRAMS)
def test_compiled_agrees_with_the_interpreter(name: str, cpu: Differential) -> None:
    """Every optimisation on, planned for the local device (the fast tier: one build each)."""
    cpu.check(name, corpus_program(name), all_on(), corpus_inputs(name))


@pytest.mark.opencl
@pytest.mark.slow
@pytest.mark.parametrize("name", PROGRAMS)
def test_every_plan_agrees_with_the_interpreter(name: str, cpu: Differential,
                                                gpu: Differential) -> None:
    """No optimisation on the local device, and both option sets on GPU-like limits."""
    program = corpus_program(name)
    cpu.check(name, program, all_off(), corpus_inputs(name))
    for options in (all_on(), all_off()):
        gpu.check(name, program, options, corpus_inputs(name))


@pytest.mark.parametrize("builtin", ["exp", "tanh", "sigmoid", "softmax", "relu"])
def test_built_in_function_names_cannot_be_user_names(builtin: str) -> None:
    """The other half of "generated names never collide": names the emitted C calls
    (`exp`, `tanh`, ...) are built-ins the checker refuses as names; `max` may be a
    name (generated_names.cx has a parameter `max`), as the C spells max as `fmax`."""
    source = (f"model M\nsizes H = 4\nstructure binary_tree\nparam {builtin}[H]\n"
              "state h[H]\ninternal n:\n    h = h[left(n)]\noutput h[root]\n")
    with pytest.raises(CortexError) as caught:
        program_from_source(source)
    assert "E0202" in caught.value.codes

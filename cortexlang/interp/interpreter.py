"""The reference interpreter: a checked program run node by node, exactly as its equations read.

This is the semantics every other backend is compared against, so it is written to be
obviously right rather than fast: plain numpy, one node at a time, in an order where children
come before parents (see `cortexlang.interp.order`). A node runs the leaf rule when it has no
children and the internal rule otherwise; when the model gives no leaf rule, the checker has
already made the leaf rule a copy of the internal one, which then reads every child as zeros.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import DTypeLike

from cortexlang.inputs.checks import check_parameters
from cortexlang.inputs.structure import Structure
from cortexlang.interp.evaluate import NodeEvaluator
from cortexlang.interp.order import evaluation_order, structure_error, validate_structure
from cortexlang.ir import checked as ir
from cortexlang.outputs import Outputs

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def interpret(program: ir.CheckedProgram, structures: Sequence[Structure],
              weights: Mapping[str, np.ndarray], *,
              dtype: DTypeLike = np.float32) -> Outputs:
    """Run `program` on every structure and return its outputs and every node's states.

    weights: parameter name -> array of the parameter's declared shape (extra names are
    ignored). All arithmetic happens in `dtype`, float32 or float64; weights and feature
    vectors are converted to it first.

    Raises `InputError` for inputs the model cannot run on: a missing or misshapen
    parameter (E0530, E0532, E0535), a malformed structure (E0550-E0552), a token read where
    a node has none or outside its table (E0554, E0555), or a missing or misshapen vector
    input (E0556). `ValueError` for an unsupported dtype (a programming mistake).
    """
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"the interpreter computes in float32 or float64, not {dtype}")
    parameters = checked_parameters(program, weights, dtype)
    counts = [structure.num_nodes for structure in structures]
    node_offset = np.zeros(len(structures) + 1, dtype=np.int64)
    node_offset[1:] = np.cumsum(counts, dtype=np.int64)
    total = int(node_offset[-1])
    states = {state.name: np.zeros((total, *state.shape), dtype=dtype)
              for state in program.states}
    outputs = {output.name: np.zeros(
        ((len(structures) if output.selector == "root" else total), *output.shape), dtype=dtype)
        for output in program.outputs}

    start = time.perf_counter()
    for index, structure in enumerate(structures):
        validate_structure(structure, program.structure, index)
        order = evaluation_order(structure, index)
        offset = int(node_offset[index])
        evaluator = NodeEvaluator(program, parameters, states, structure.children.tolist(),
                                  _tokens(program, structure, index),
                                  _vectors(program, structure, index, dtype),
                                  offset, index, dtype)
        child_counts = structure.num_children()
        for node in order:
            rule = program.leaf if child_counts[node] == 0 else program.internal
            evaluator.run_rule(rule, node)
        for output in program.outputs:
            if output.selector == "root":
                outputs[output.name][index] = evaluator.evaluate_output(output, structure.root)
            else:
                for node in range(structure.num_nodes):
                    outputs[output.name][offset + node] = evaluator.evaluate_output(output, node)
    elapsed = time.perf_counter() - start

    return Outputs(outputs=outputs, states=states, node_offset=node_offset,
                   selectors={output.name: output.selector for output in program.outputs},
                   timings={"compute": elapsed})


def checked_parameters(program: ir.CheckedProgram, weights: Mapping[str, np.ndarray],
                       dtype: np.dtype) -> dict[str, np.ndarray]:
    """Every parameter of the model, checked against its declaration, in `dtype`.

    Raises `InputError` E0530 (missing), E0535 (not floats) or E0532 (wrong shape), as the
    compiled runtime does (both call `cortexlang.inputs.checks.check_parameters`)."""
    return check_parameters(program.params, weights, dtype, program.source)


def _tokens(program: ir.CheckedProgram, structure: Structure,
            index: int) -> dict[str, np.ndarray]:
    """Token input name -> ids per node. A structure carries one token array, `words`."""
    names = [item.name for item in program.inputs if item.kind == "token"]
    _only_one(names, "token", "words", index)
    return {name: structure.words for name in names}


def _only_one(names: list[str], kind: str, source: str, index: int) -> None:
    """A `Structure` has one array per input kind, so a second input of a kind has no data;
    reading the first one's values for it would be silently wrong."""
    if len(names) > 1:
        raise structure_error(
            "E0556", f"structure {index} carries one {kind} per node (`{source}`), but the "
                     f"model declares {len(names)} {kind} inputs: {', '.join(names)}",
            f"declare a single {kind} input")


def _vectors(program: ir.CheckedProgram, structure: Structure, index: int,
             dtype: np.dtype) -> dict[str, np.ndarray]:
    """Vector input name -> [N, width] rows per node, from the structure's `features`."""
    vectors = {}
    items = [item for item in program.inputs if item.kind == "vector"]
    _only_one([item.name for item in items], "feature vector", "features", index)
    for item in items:
        features = structure.features
        if features is None:
            raise structure_error(
                "E0556", f"structure {index} has no feature vectors, but the model reads "
                         f"`{item.name}` of width {item.shape[0]} at every node",
                "give each node a feature vector (a grid input), or use a model with "
                "token inputs")
        if features.shape != (structure.num_nodes, item.shape[0]):
            raise structure_error(
                "E0556", f"structure {index} has features of shape {list(features.shape)}, "
                         f"but the model reads `{item.name}` of width {item.shape[0]} at each "
                         f"of its {structure.num_nodes} nodes",
                f"generate the inputs with width {item.shape[0]}, or change the size with -D")
        vectors[item.name] = np.asarray(features, dtype=dtype)
    return vectors

"""cortexlang.viz: pictures of every lowering stage and every input, and the HTML explorer.

Shipped inside the wheel as `cortexlang.viz` (the top-level folder `viz/` is mapped in by
pyproject.toml). It imports the compiler and the runtime; they never import it. The entry
point is `cortexlang.viz.explorer.explore`, driven by `cortexlang viz` (see
`cortexlang/commands/viz.py`). One module per stage draws that stage from its own IR objects:

    program    the checked program: a dataflow graph per rule, shapes on edges
    recursive  node-indexed operators, recursion edges, refactored states
    loops      the loop nest: sequential and parallel loops, indirect accesses
    kernels    kernels, their buffers, local memory, geometry and launch order
    opencl     the generated OpenCL, each kernel linked to its kernel IR and .cx lines
    inputs     input trees, and the same trees as the linearizer numbers and batches them
    timeline   the launches of one run on a timeline with measured times

`escape` holds the only two escaping functions; `dot` the DOT writer and the call to Graphviz.
"""

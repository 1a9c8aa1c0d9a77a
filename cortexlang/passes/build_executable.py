"""The last step: the executable, the one typed product the runtime runs (ir/executable.py).

It reads the kernel program (which buffers each kernel takes, the launches, the layouts), the
recursive program (the hoisted uniforms and leaf tables to compute on the host, the states
and outputs) and the checked program (the parameters' declarations and where lookups read
tokens), and writes down only what a run needs: a buffer that no kernel reads or writes is
not declared, so a parameter read only by the host (an embedding matrix once the leaves are
tabulated) is never uploaded.
"""

from __future__ import annotations

from cortexlang.codegen.opencl import RUN_HEADER, index_buffers, kernel_buffers
from cortexlang.ir import checked
from cortexlang.ir import executable as X
from cortexlang.ir import loops as L
from cortexlang.ir.buffers import INDEX_ROLES, WEIGHT_ROLES, BufferRows
from cortexlang.ir.kernels import SYNC_BUFFER, KernelProgram
from cortexlang.ir.recursive import Op, RecursiveProgram
from cortexlang.passes.token_reads import token_checks

_ROWS = {BufferRows.NODES: X.Rows.NODES, BufferRows.BATCH: X.Rows.BATCH,
         BufferRows.HEADS: X.Rows.HEADS, BufferRows.BATCHES: X.Rows.BATCHES,
         BufferRows.GROUPS: X.Rows.GROUPS, BufferRows.STEPS: X.Rows.STEPS,
         BufferRows.ONE: X.Rows.FIXED, BufferRows.PARAM: X.Rows.FIXED,
         BufferRows.VOCAB: X.Rows.FIXED}


def _device_buffer(buffer: L.Buffer, recursive: RecursiveProgram) -> X.DeviceBuffer:
    rows = recursive.table_rows if buffer.rows is BufferRows.VOCAB else 1
    return X.DeviceBuffer(buffer.ref, _ROWS[buffer.rows], buffer.row_size,
                          fixed_rows=rows, integer=buffer.integer)


def _layout(kernels: KernelProgram, buffer: L.Buffer) -> X.Layout:
    if buffer.ref.role is not X.Role.WEIGHT_T:
        return X.Layout(X.LayoutKind.PLAIN)
    blocked = kernels.layout(buffer.ref)
    if blocked is None:
        return X.Layout(X.LayoutKind.TRANSPOSED)
    block, columns = blocked
    return X.Layout(X.LayoutKind.BLOCKED, block, columns)


def _host(op: Op) -> X.HostOp:
    return X.HostOp(op.name, op.kind, op.args, op.shape, op.attrs)


def _tables(recursive: RecursiveProgram) -> X.HostTables | None:
    rule = recursive.table_rule
    if rule is None:
        return None
    # Each table is named as the leaf rule's `table` operators read it.
    reads = {op.name: op.attr("name") for op in recursive.leaf.ops if op.kind == "table"}
    results = tuple((reads[recursive.leaf.result(state)], result)
                    for state, result in rule.results)
    return X.HostTables(tuple(_host(op) for op in rule.ops), results, recursive.table_rows)


def build_executable(program: checked.CheckedProgram, recursive: RecursiveProgram,
                     kernels: KernelProgram, opencl: str,
                     dynamic_batching: bool) -> X.Executable:
    """The executable of a compiled program (see the module docstring)."""
    used = {ref for kernel in kernels.kernels for ref in kernel.reads + kernel.writes}
    declared = tuple(buffer for buffer in kernels.buffers
                     if buffer.ref.role in INDEX_ROLES or buffer.ref in used)
    weights = [buffer for buffer in declared if buffer.ref.role in WEIGHT_ROLES]
    entries = tuple(X.KernelEntry(
        name=kernel.name, over=kernel.over,
        args=tuple(buffer.ref for buffer in kernel_buffers(kernels, kernel)),
        units=kernel.units, node_tile=kernel.node_tile, local_size=kernel.local_size,
        tiles_in_kernel=kernel.tiles_in_kernel, groups=kernel.groups,
        source_lines=kernel.source_lines) for kernel in kernels.kernels)
    steps = next((kernel.phases_per_step for kernel in kernels.kernels
                  if SYNC_BUFFER in kernel.writes), 1)
    heads = dict(recursive.heads.results) if recursive.heads is not None else {}
    head_shapes = {op.name: op.shape for op in recursive.heads.ops} \
        if recursive.heads is not None else {}
    outputs = tuple(X.OutputSpec(output.name, output.selector,
                                 head_shapes[heads[output.name]] if output.name in heads
                                 else recursive.state_shape(output.name), output.name in heads)
                    for output in recursive.outputs)
    source_states = {state.name for state in program.states}
    return X.Executable(
        name=kernels.name, opencl=opencl, cx_path=program.path, cx_source=program.source,
        strategy=X.Strategy(kernels.strategy), max_children=recursive.max_children,
        dynamic_batching=dynamic_batching,
        unroll_depth=recursive.unroll.depth if recursive.unroll is not None else 1,
        fuse_below=kernels.fuse_below,
        steps_per_batch=steps,
        buffers=tuple(_device_buffer(buffer, recursive) for buffer in declared),
        parameters=tuple(X.Parameter(param.name, param.shape, param.span)
                         for param in program.params),
        bindings=tuple(X.WeightBinding(buffer.ref.name, buffer.ref,
                                       _layout(kernels, buffer)) for buffer in weights),
        uniforms=tuple(_host(op) for op in recursive.uniforms),
        tables=_tables(recursive),
        run_header=tuple(X.RunScalar(name) for name in RUN_HEADER),
        index_arrays=index_buffers(kernels),
        kernels=entries,
        launches=kernels.launches,
        tokens=token_checks(program, recursive),
        states=tuple(X.StateSpec(state.name, state.shape, state.name in source_states)
                     for state in recursive.states),
        outputs=outputs,
        inputs=tuple(X.InputSpec(item.name, item.kind, item.shape[0] if item.shape else 0)
                     for item in recursive.inputs),
        heads_at_every_node=any(output.head and output.selector == "all"
                                for output in outputs))

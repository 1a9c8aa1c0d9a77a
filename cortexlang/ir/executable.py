"""Stage 5, the executable: everything the runtime needs to run a compiled model, typed.

The compiler's last step (`passes/build_executable.py`) reads the kernel IR, the recursive
program and the checked program once and writes down, as plain data, what the runtime must do:

- the OpenCL source, and a source map from each kernel to the .cx lines it computes;
- the device buffers some kernel reads or writes, each a `BufferRef` (a role and a name, never
  a prefixed string) with its row count and row size; a parameter, hoisted value or leaf table
  that no kernel reads has no buffer, so it is neither uploaded nor checked against the
  device's allocation limit;
- the weight bindings: which parameter fills which buffer, in which `Layout`;
- the host program: the hoisted uniforms and leaf tables, computed once per weights from
  `HostOp`s (a small evaluable form of the node-independent operators);
- the run ABI: the integers leading the `indices` upload (`RunScalar`) and the index arrays
  whose offsets follow them;
- the kernels with their arguments and geometry, and the launch schedule over typed batch
  ranges (`BatchRange`);
- the host-side checks of a run's tokens (`TokenRead`: where the interpreter reads a token),
  and the facts the runtime needs to shape its result (states, outputs, inputs).

The runtime imports this module and nothing of the earlier stages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from cortexlang.errors import InternalError, Span
from cortexlang.ir.batches import BatchRange
from cortexlang.ir.buffers import BufferRef, Role

Shape = tuple[int, ...]


class Rows(enum.Enum):
    """How many rows a buffer has in a run."""

    FIXED = "fixed"        # weights: `rows` rows, once per model
    NODES = "nodes"        # one per node of the run, plus the zero row
    BATCH = "batch"        # one per node of the largest batch (or head)
    HEADS = "heads"        # one per head node
    BATCHES = "batches"    # one per batch
    GROUPS = "groups"      # one per group of an unrolled run (the recursion unrolled)
    STEPS = "steps"        # the cooperative kernel's steps (see `Executable.sync_rows`)


@dataclass(frozen=True, slots=True)
class DeviceBuffer:
    ref: BufferRef
    rows: Rows
    row_size: int
    fixed_rows: int = 1          # rows of a Rows.FIXED buffer
    integer: bool = False

    @property
    def fixed_bytes(self) -> int:
        """Bytes of a Rows.FIXED buffer."""
        return 4 * self.fixed_rows * self.row_size


class LayoutKind(enum.Enum):
    PLAIN = "plain"            # the parameter as declared, row-major
    TRANSPOSED = "transposed"  # (k rows, one column per output unit)
    BLOCKED = "blocked"        # transposed, stored as column blocks each row-major


@dataclass(frozen=True, slots=True)
class Layout:
    """How a weight buffer holds its parameter. BLOCKED: `columns` columns stored as blocks
    of `block` columns, element (k, c) at ((c // block) * rows + k) * block + c % block."""

    kind: LayoutKind = LayoutKind.PLAIN
    block: int = 0
    columns: int = 0

    def __str__(self) -> str:
        if self.kind is LayoutKind.BLOCKED:
            return f"blocked({self.columns} columns in blocks of {self.block})"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class Parameter:
    """A declared parameter: what the weights must hold (checked before binding)."""

    name: str
    shape: Shape
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class WeightBinding:
    parameter: str
    buffer: BufferRef
    layout: Layout


@dataclass(frozen=True, slots=True)
class HostOp:
    """One node-independent operator of the host program, with the recursive program's
    kinds and attributes (const, param, uniform, lookup, unary, binary, matmul, concat,
    slice, select; see `ir/host_eval.py`)."""

    name: str
    kind: str
    args: tuple[str, ...]
    shape: Shape
    attrs: tuple[tuple[str, Any], ...] = ()

    def attr(self, key: str, default: Any = None) -> Any:
        return next((value for name, value in self.attrs if name == key), default)


@dataclass(frozen=True, slots=True)
class HostTables:
    """Leaf tables: `ops` evaluated for each of `rows` tokens at once; `results` are
    (state, op) pairs, each filling the TABLE buffer named after its state."""

    ops: tuple[HostOp, ...]
    results: tuple[tuple[str, str], ...]
    rows: int


class RunScalar(enum.Enum):
    """The integers leading the `indices` upload, by name (the kernels read them there)."""

    NUM_LEAF_BATCHES = "num_leaf_batches"
    NUM_BATCHES = "num_batches"
    NUM_LEAVES = "num_leaves"
    ZERO_ROW = "zero_row"
    NUM_HEADS = "num_heads"
    FIRST_FUSED = "first_fused"


class Strategy(enum.Enum):
    LEVEL = "level"
    HYBRID = "hybrid"
    COOPERATIVE = "cooperative"


@dataclass(frozen=True, slots=True)
class KernelEntry:
    """A kernel: its arguments (buffers, then `indices`, then the batch), its geometry, and
    the .cx lines it computes (the source map)."""

    name: str
    over: BatchRange
    args: tuple[BufferRef, ...]
    units: int
    node_tile: int
    local_size: int | None
    tiles_in_kernel: bool
    groups: int
    source_lines: tuple[int, ...] = ()


# -- token checks ------------------------------------------------------------------------------


class NodeSet(enum.Enum):
    LEAVES = "leaves"
    INTERNAL = "internal"
    ROOTS = "roots"
    EVERY = "every"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Nodes:
    """A base set of nodes."""

    which: NodeSet


@dataclass(frozen=True, slots=True)
class NumChildrenIs:
    """Nodes whose number of children compares `op` (== != < <= > >=) with `value`."""

    op: str
    value: int


@dataclass(frozen=True, slots=True)
class HasChild:
    column: int


@dataclass(frozen=True, slots=True)
class ChildIsLeaf:
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    mask: Mask


@dataclass(frozen=True, slots=True)
class All:
    masks: tuple[Mask, ...]


Mask = Nodes | NumChildrenIs | HasChild | ChildIsLeaf | Not | All


@dataclass(frozen=True, slots=True)
class TokenRead:
    """A lookup of the source: `param[...]` reads the token of input `input` at the nodes of
    `where`, reduced by `moduli` in order, from a table of `rows` rows."""

    param: str
    input: str
    moduli: tuple[int, ...]
    rows: int
    where: Mask
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TokenChecks:
    """What a run's tokens are checked against (see runtime/tokens.py).

    reads: the interpreter's lookups, in the order it meets them at one node.
    kernel_reads: (nodes, rows) where a kernel reads a table of `rows` rows at a node's token
      whether or not the interpreter would (both sides of a select run in a kernel).
    leaf_rows: when only leaves read tokens, in the source and in the kernels, the fewest
      rows of any table read: a batch whose leaf tokens are all in [0, leaf_rows) passes.
    """

    reads: tuple[TokenRead, ...] = ()
    kernel_reads: tuple[tuple[NodeSet, int], ...] = ()
    leaf_rows: int | None = None


# -- the result's shape ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateSpec:
    name: str
    shape: Shape
    source: bool         # declared in the .cx program (False: introduced by a pass)


@dataclass(frozen=True, slots=True)
class OutputSpec:
    name: str
    selector: str        # "root" or "all"
    shape: Shape
    head: bool           # computed by an output head (else: a state read back)


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    kind: str            # "token" or "vector"
    size: int


@dataclass(frozen=True, slots=True)
class Executable:
    """The runtime's one input (see the module docstring)."""

    name: str
    opencl: str
    cx_path: str
    cx_source: str = field(compare=False, repr=False)
    strategy: Strategy
    max_children: int
    dynamic_batching: bool
    unroll_depth: int      # heights per batch: 1, or 2 with the recursion unrolled
    fuse_below: int
    steps_per_batch: int
    buffers: tuple[DeviceBuffer, ...]
    parameters: tuple[Parameter, ...]
    bindings: tuple[WeightBinding, ...]
    uniforms: tuple[HostOp, ...]
    tables: HostTables | None
    run_header: tuple[RunScalar, ...]
    index_arrays: tuple[BufferRef, ...]
    kernels: tuple[KernelEntry, ...]
    launches: tuple[tuple[str, BatchRange], ...]
    tokens: TokenChecks
    states: tuple[StateSpec, ...]
    outputs: tuple[OutputSpec, ...]
    inputs: tuple[InputSpec, ...]
    heads_at_every_node: bool

    def kernel(self, name: str) -> KernelEntry:
        return next(kernel for kernel in self.kernels if kernel.name == name)

    def buffer(self, ref: BufferRef) -> DeviceBuffer:
        return next(buffer for buffer in self.buffers if buffer.ref == ref)

    def buffers_of(self, *roles: Role) -> tuple[DeviceBuffer, ...]:
        return tuple(buffer for buffer in self.buffers if buffer.ref.role in roles)

    def sync_rows(self, num_batches: int) -> int:
        """Rows of the cooperative counters for a run: one per step (a batch's phase, or a
        phase of the heads), then one counting the groups that have finished the run."""
        return (num_batches + 1) * self.steps_per_batch + 1


# -- printer -----------------------------------------------------------------------------------


def format_mask(mask: Mask) -> str:
    if isinstance(mask, Nodes):
        return mask.which.value
    if isinstance(mask, NumChildrenIs):
        return f"num_children {mask.op} {mask.value}"
    if isinstance(mask, HasChild):
        return f"has child {mask.column}"
    if isinstance(mask, ChildIsLeaf):
        return f"child {mask.column} is a leaf"
    if isinstance(mask, Not):
        return f"not ({format_mask(mask.mask)})"
    return " and ".join(f"({format_mask(part)})" for part in mask.masks) or "every"


def _host_op(op: HostOp) -> str:
    attrs = ", ".join(f"{key}={value}" for key, value in op.attrs)
    shape = "x".join(map(str, op.shape)) or "scalar"
    return f"  {op.name}: {shape} = {op.kind}{f'[{attrs}]' if attrs else ''}" \
           f"({', '.join(op.args)})"


def format_executable(executable: Executable) -> str:
    """Deterministic text of the executable (the stage's printer)."""
    lines = [f"executable {executable.name} ({PurePath(executable.cx_path).name})",
             f"strategy {executable.strategy.value}, at most {executable.max_children} "
             f"children, dynamic batching {'on' if executable.dynamic_batching else 'off'}"
             + (f", {executable.unroll_depth} heights per batch (recursion unrolled)"
                if executable.unroll_depth > 1 else "")
             + (f", fused from the first batch under {executable.fuse_below} nodes"
                if executable.fuse_below else "")]
    for parameter in executable.parameters:
        lines.append(f"parameter {parameter.name}: {list(parameter.shape)}")
    for buffer in executable.buffers:
        rows = str(buffer.fixed_rows) if buffer.rows is Rows.FIXED else buffer.rows.value
        kind = "int" if buffer.integer else "float"
        lines.append(f"buffer {buffer.ref}: {kind}[{rows}][{buffer.row_size}]")
    for binding in executable.bindings:
        lines.append(f"bind {binding.buffer} <- parameter {binding.parameter}, "
                     f"{binding.layout}")
    if executable.uniforms:
        lines.append("host uniforms (once per weights):")
        lines.extend(_host_op(op) for op in executable.uniforms)
    if executable.tables is not None:
        lines.append(f"host leaf tables (once per weights, {executable.tables.rows} tokens):")
        lines.extend(_host_op(op) for op in executable.tables.ops)
        lines.extend(f"  table {state} <- {op}" for state, op in executable.tables.results)
    lines.append("run header: " + ", ".join(scalar.value for scalar in executable.run_header)
                 + "; then offsets of " + ", ".join(str(ref) for ref in executable.index_arrays))
    for kernel in executable.kernels:
        local = kernel.local_size if kernel.local_size is not None else "driver"
        lines.append(f"kernel {kernel.name} over {kernel.over.value}: {kernel.units} "
                     f"work-items x tiles of {kernel.node_tile}, work-group {local}, "
                     f"{kernel.groups} group(s); .cx lines "
                     + (", ".join(map(str, kernel.source_lines)) or "none"))
        lines.append("  args " + ", ".join(str(ref) for ref in kernel.args)
                     + (", " if kernel.args else "") + "indices, batch")
    lines.append("launches per run:")
    lines.extend(f"  {name}: {over.value}" for name, over in executable.launches)
    for read in executable.tokens.reads:
        moduli = "".join(f" % {modulus}" for modulus in read.moduli)
        lines.append(f"token read {read.param}[{read.input}{moduli}] ({read.rows} rows) at "
                     f"{format_mask(read.where)}")
    for nodes, rows in executable.tokens.kernel_reads:
        lines.append(f"kernel token read at {nodes.value}: {rows} rows")
    if executable.tokens.leaf_rows is not None:
        lines.append(f"tokens at leaves only, below {executable.tokens.leaf_rows}")
    for state in executable.states:
        lines.append(f"state {state.name}: {list(state.shape)}"
                     + ("" if state.source else " (compiler)"))
    for output in executable.outputs:
        lines.append(f"output {output.name}[{output.selector}]: {list(output.shape)} from "
                     + ("a head" if output.head else "its state"))
    return "\n".join(lines) + "\n"


# -- verifier ----------------------------------------------------------------------------------


def _fail(message: str) -> None:
    raise InternalError("verify_executable", message)


def verify_executable(executable: Executable) -> None:
    """Check the executable's invariants; raise InternalError naming the broken one."""
    declared = {buffer.ref: buffer for buffer in executable.buffers}
    if len(declared) != len(executable.buffers):
        _fail("a buffer is declared twice")
    read = {ref for kernel in executable.kernels for ref in kernel.args}
    for buffer in executable.buffers:
        if buffer.ref.role in (Role.INDEX, Role.TOKENS):
            if buffer.ref not in executable.index_arrays:
                _fail(f"index array {buffer.ref} is not in the run header")
        elif buffer.ref not in read:
            _fail(f"no kernel uses {buffer.ref}")
    for kernel in executable.kernels:
        for ref in kernel.args:
            if ref not in declared or ref.role in (Role.INDEX, Role.TOKENS):
                _fail(f"kernel {kernel.name} takes undeclared or index buffer {ref}")
        if kernel.units < 1 or kernel.node_tile < 1 or kernel.groups < 1:
            _fail(f"kernel {kernel.name} has an empty geometry")
    parameters = {parameter.name: parameter for parameter in executable.parameters}
    for binding in executable.bindings:
        if binding.parameter not in parameters or binding.buffer not in declared:
            _fail(f"binding of {binding.buffer} names an unknown parameter or buffer")
        layout = binding.layout
        if layout.kind is LayoutKind.BLOCKED and (layout.block < 1 or
                                                   layout.columns % layout.block):
            _fail(f"the blocked layout of {binding.buffer} does not tile it")
    bound = {binding.buffer for binding in executable.bindings}
    for buffer in executable.buffers_of(Role.WEIGHT, Role.WEIGHT_T):
        if buffer.ref not in bound:
            _fail(f"weight buffer {buffer.ref} has no binding")
    computed = {op.name for op in executable.uniforms}
    for buffer in executable.buffers_of(Role.UNIFORM):
        if buffer.ref.name not in computed:
            _fail(f"uniform {buffer.ref} is not computed by the host program")
    tabled = {state for state, _ in executable.tables.results} if executable.tables else set()
    for buffer in executable.buffers_of(Role.TABLE):
        if buffer.ref.name not in tabled:
            _fail(f"table {buffer.ref} is not computed by the host program")
    names = {kernel.name for kernel in executable.kernels}
    for name, _ in executable.launches:
        if name not in names:
            _fail(f"launch of unknown kernel {name}")
    if executable.buffers_of(Role.SYNC) and executable.strategy is not Strategy.COOPERATIVE:
        _fail("sync counters outside a cooperative plan")
    grouped = {ref.name for ref in executable.index_arrays} >= {"group_start", "batch_groups"}
    if executable.unroll_depth not in (1, 2) or grouped != (executable.unroll_depth == 2):
        _fail(f"unroll depth {executable.unroll_depth} without its group arrays, or them "
              "without it")

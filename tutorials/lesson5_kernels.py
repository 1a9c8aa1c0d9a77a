# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 5: kernels
#
# The last two stages turn the loop program into kernels: `plan_kernels` decides how many
# kernels there are, which loops run in parallel, how many nodes one work-item computes and
# whether weights move to fast memory; `emit_opencl` prints OpenCL C. In this lesson you
#
# 1. read a generated kernel line by line,
# 2. work out which nodes a work-item computes (exercise 5.1),
# 3. see what operator fusion, level fusion and weight persistence do to the kernels,
# 4. change a schedule choice (node tile, `-O` level, `--disable fuse_levels`) and measure,
# 5. write a level kernel by hand and run it over the linearizer's batches (exercise 5.2).
#
# Everything here runs on the OpenCL device `cortexlang devices` chooses (PoCL on a CPU
# unless you have a GPU); the plan depends on that device's limits, printed below.

# %%
import re

from checks import check_exercise_5_1, check_exercise_5_2, exercise, summary
from common import (
    EXAMPLES,
    compile_model,
    cortexlang,
    device,
    load_trees,
    median_ms,
    out_dir,
    table,
)

from cortexlang.frontend.check import load_program
from cortexlang.inputs.weights import init_weights
from cortexlang.ir.kernels import format_kernels
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.runtime.execute import device_limits

OUT = out_dir("lesson5")
data = load_trees(limit=10)
trees = data.structures
limits = device_limits(device())
print("device:", device().info.device_name, f"({device().info.device_type})")
print("planner's view of it:", dict(limits.items()))

# %% [markdown]
# ## 1. The kernel plan
#
# `cortexlang compile --emit kernels` prints the kernel IR: the strategy, the *decisions* the
# planner took (with its reasons), each kernel's geometry (work-items per node tile, node
# tile, work-group size, vector widths), what it reads and writes, and the launches per run.

# %%
SIZES = {"H": 16, "V": len(data.vocab)}
treefc = load_program(str(EXAMPLES / "treefc.cx"), SIZES)
plan = cortexlang("compile", EXAMPLES / "treefc.cx", "-D", "H=16", "--emit", "kernels",
                  show=False)
print("$ cortexlang compile examples/treefc.cx -D H=16 --emit kernels   (buffer lines left out)")
print("\n".join(line for line in plan.stdout.splitlines() if not line.startswith("buffer")))

# %% [markdown]
# ## 2. Reading the OpenCL, line by line
#
# Here is the generated OpenCL for TreeFC with a node tile of 2 (smaller than the default, to
# keep the listing short), as `cortexlang compile --emit opencl` prints it (in Python:
# `run_pipeline(program, Options(node_tile=2), limits).source`). We read the kernel that
# loops over batches (the one whose launch covers `run` in the plan above); a per-level
# kernel is the same body for a single batch. Under the first line of each construct a note
# (`^--`) says what it does. Notice what is *not* there: no `if (isleaf)` (leaves are
# specialised), and the leaves only copy rows of tables computed once per set of weights.

# %%
NOTES = [
    (r"cx_sigmoid\(float x\)", "math helpers shared by all kernels"),
    (r"reqd_work_group_size", "the work-group size the planner chose, fixed at compile time"),
    (r"__kernel void", "the kernel: its arguments are the buffers of the kernel IR"),
    (r"__global const float\* restrict p_", "p_NAME: a parameter, as declared"),
    (r"__global const float\* restrict pt_",
     "pt_NAME: the same parameter transposed, so that consecutive units are adjacent"),
    (r"__global const float\* restrict u_",
     "u_NAME: a value computed once when the weights are bound (hoisted or tabulated)"),
    (r"__global float\* restrict s_", "s_NAME: a state, one row per node (new ids)"),
    (r"const int num_leaf_batches", "scalars: how many batches hold leaves, and in all"),
    (r"restrict w_", "w_NAME: each node's word id"),
    (r"restrict children", "children[node * 2 + i]: the linearizer's child ids"),
    (r"restrict batch_start", "batch_start, batch_len: the batches"),
    (r"// section: leaf", "the leaf section: the leaf rule over the leaf batches"),
    (r"for \(int batch = ",
     "the sequential loop over batches, inside the kernel (no launch per batch)"),
    (r"__local float", "weight persistence: a weight copied into fast local memory, once per "
     "launch, for every node and batch the kernel computes"),
    (r"const int first_fused", "the first batch this kernel covers (batches before it were "
     "launched one by one)"),
    (r"const int tiles = ", "the batch's nodes in tiles of node_tile nodes"),
    (r"for \(int work = lid;", "the parallel loop: work-items share the tiles of the batch"),
    (r"const int node_t0 = ", "lane 0 of the tile: which node it computes (exercise 5.1)"),
    (r"const int word_t0 = ", "the leaf's word id (a missing word reads row 0)"),
    (r"// phase ", "a phase: operators of one rule fused into one loop over units"),
    (r"if \(tile \* 2 \+ 1 < count\)", "lane 1 stores only if its node is in the batch"),
    (r"barrier\(", "every work-item finishes this batch before the next batch reads it"),
    (r"// section: internal", "the internal section: internal batches, in increasing height"),
    (r"children\[\(node_t0 \* 2\)\]", "the children of the node, for indirect loads"),
    (r"s_h_W \+ \(\(\(child0_t0",
     "reading a child's state: h_W = W @ h, already computed by the child (refactoring)"),
    (r"= tanh\(v", "the rest of the rule, fused: no intermediate leaves the work-item"),
    (r"vload16\(0, l?pt_W", "16 consecutive units of W's transposed row k, loaded once for "
     "all the nodes of the tile: the node tile's point"),
    (r"acc_v0_t0 \+= ", "multiply-accumulate: one vector of units for each node of the tile"),
]


def annotated(source, notes):
    """The source with line numbers and each note under the first line it matches."""
    pending = list(notes)
    lines = []
    for number, line in enumerate(source.splitlines(), start=1):
        lines.append(f"{number:>4}  {line}")
        for pattern, note in list(pending):
            if re.search(pattern, line):
                indent = len(line) - len(line.lstrip())
                lines.append(f"      {' ' * indent}^-- {note}")
                pending.remove((pattern, note))
    return "\n".join(lines), [note for _, note in pending]


def kernel_source(source, over="run"):
    """The shared helpers and the kernel whose launch covers `over` (all of it if none)."""
    plan = run_pipeline(treefc, Options(node_tile=2), limits).kernels
    names = [name for name, covers in plan.launches if covers == over]
    parts = re.split(r"(?m)^(?=// kernel )", source)
    chosen = [part for part in parts[1:] if names and part.startswith(f"// kernel {names[0]}:")]
    return parts[0] + "".join(chosen) if chosen else source


listing_source = run_pipeline(treefc, Options(node_tile=2), limits).source
(OUT / "treefc_tile2.cl").write_text(listing_source)
listing, unmatched = annotated(kernel_source(listing_source), NOTES)
print(listing)
if unmatched:
    print("\nnot in this kernel (the code generator leaves them out here):")
    print("\n".join(f"  - {note}" for note in unmatched))

# %% [markdown]
# ### Exercise 5.1: which nodes does a work-item compute?
#
# A work-item handles one tile of `node_tile` nodes of a batch at a time. Read the lines
# `const int node_tI = ...` and the guards in front of the stores, and write the mapping: for
# a batch starting at new id `start` with `count` nodes, and tile number `tile`, return a
# list with one `(node, stored)` pair per lane `0 .. node_tile - 1`: the node the lane
# computes, and whether its result is stored. (Why does a lane past the end of the batch
# compute anything at all?) The check compares with the generated code for node tiles
# 1, 2, 4 and 8.

# %%
@exercise("5.1")
def tile_nodes(start, count, tile, node_tile):
    """[(node, stored)] for each lane of the tile."""
    raise NotImplementedError


check_exercise_5_1(tile_nodes, treefc)

# %% [markdown]
# ## 3. Fusion and weight persistence
#
# - **Operator fusion** (`fuse_operators`) puts the operators of a rule into as few phases as
#   possible: a phase ends only where a product needs a whole vector computed before.
# - **Level fusion** (`fuse_levels`) runs batches inside one kernel that loops over them.
#   OpenCL has no barrier across work-groups, so such a kernel is a single work-group: one
#   compute unit. The planner therefore keeps one launch per batch and phase for batches wide
#   enough to fill the device, and fuses the rest into one launch (its decision, printed
#   below, gives the threshold for this device). Without level fusion, every batch and phase
#   is a launch (strategy `level`).
# - **Weight persistence** (`persist_weights`) copies the weights that products read into
#   `__local` memory once per launch of the fused kernel, when they fit in half of it.
#
# This table measures TreeLSTM's kernels in several configurations: kernels, barriers and
# lines in the OpenCL, `__local` arrays, launches per run and time per batch.

# %%
treelstm = load_program(str(EXAMPLES / "treelstm.cx"), {**SIZES, "H": 8})  # lesson 2's size
weights = init_weights(treelstm.params, seed=0)
configurations = {
    "-O3 (default)": Options(),
    "without persist_weights": Options().without("persist_weights"),
    "without fuse_operators": Options().without("fuse_operators"),
    "without fuse_levels": Options().without("fuse_levels"),
    "-O2": Options.level(2),
}
rows = []
sources = {}
for name, options in configurations.items():
    model = compile_model(treelstm, options, weights)
    source = model.result.source
    sources[name] = source
    milliseconds = median_ms(lambda model=model: model.run(trees), warmup=1, repeats=5)
    rows.append((name, model.result.kernels.strategy, source.count("__kernel"),
                 source.count("barrier("), source.count("__local"), len(source.splitlines()),
                 model.last_launches, milliseconds))
print(table(["configuration", "strategy", "kernels", "barriers", "__local", "OpenCL lines",
             "launches", "ms per batch"], rows))

# %% [markdown]
# Whether the weights were copied to local memory is a decision of the planner, printed in the
# kernel IR with its reason; here are the planner's decisions for TreeLSTM on this device, and
# whether `persist_weights` changes the OpenCL at all. (Always check that a switch changes
# something: an optimisation that silently never applies looks exactly like one that does not
# help.)

# %%
for name in ("-O3 (default)", "without persist_weights"):
    kernels = run_pipeline(treelstm, configurations[name], limits).kernels
    print(f"{name}:")
    for line in format_kernels(kernels).splitlines():
        if line.startswith("decision") or "local memory" in line:
            print("   ", line)
same = sources["-O3 (default)"] == sources["without persist_weights"]
print("persist_weights changes the OpenCL:", "no" if same else "yes")

# %% [markdown]
# ## 4. Changing a schedule choice
#
# On the command line: `--set node_tile=N` (the compiled backend's setting), `-O N` and
# `--disable NAME` on `cortexlang run`; in Python, `Options(node_tile=N)` and
# `Options().without(NAME)`. A larger node tile reuses each loaded weight row for more nodes,
# but makes the code longer and wastes lanes on narrow batches (the high batches of lesson 3
# hold one or two nodes). Here is the sweep, with the hidden size raised so that the weights
# matter.

# %%
cortexlang("run", EXAMPLES / "treelstm.cx", "-D", "H=16", "--trees", data.path, "--limit",
           "10", "--set", "node_tile=2", "--disable", "fuse_levels", max_lines=4)

wide = load_program(str(EXAMPLES / "treelstm.cx"), {**SIZES, "H": 64})
wide_weights = init_weights(wide.params, seed=0)
tile_rows = []
for node_tile in (1, 2, 4, 8):
    model = compile_model(wide, Options(node_tile=node_tile), wide_weights)
    milliseconds = median_ms(lambda model=model: model.run(trees), warmup=1, repeats=5)
    tile_rows.append((node_tile, len(model.result.source.splitlines()), milliseconds))
print(table(["node tile", "OpenCL lines", "ms per batch (H=64)"], tile_rows))
fastest = min(tile_rows, key=lambda row: row[2])
print(f"fastest node tile on this machine: {fastest[0]}")

# %% [markdown]
# ## 5. A level kernel by hand
#
# The generated kernels are long because they are general. The idea underneath is short:
# one launch per internal batch, one work-item per (node of the batch, unit j):
#
#     h[node, j] = tanh(b[j] + sum_k W[j, k] * (h[left, k] + h[right, k]))
#
# ### Exercise 5.2: write it
#
# Return the OpenCL C source of a kernel with exactly this signature:
#
#     __kernel void treefc_level(__global const float* W, __global const float* b,
#                                __global float* h, __global const int* children,
#                                const int start, const int H)
#
# `W` is row-major `[H, H]` (row j, column k at `W[j * H + k]`), `h` is `[nodes, H]` in the
# linearizer's new ids, `children` is `[nodes, 2]` (new ids), and the batch starts at new id
# `start`. The check fills the leaves' rows with their embeddings, launches your kernel once
# per internal batch with the global size `(batch length, H)` (dimension 0: the node of the
# batch, `get_global_id(0)`; dimension 1: the unit, `get_global_id(1)`), and compares every
# node's h with the interpreter's. OpenCL C is C99 with `__kernel`, `__global` and
# `get_global_id`; `tanh` is built in.

# %%
@exercise("5.2")
def treefc_level_kernel():
    """The OpenCL C source of treefc_level (see above)."""
    raise NotImplementedError


treefc_weights = init_weights(treefc.params, seed=0)
check_exercise_5_2(treefc_level_kernel, treefc, treefc_weights, trees)

# %% [markdown]
# Compare your kernel with the generated one of section 2: yours launches once per batch and
# reads W from global memory for every node; the generated one loops over all batches in one
# launch, computes a vector of 16 units per work-item, and shares each loaded row of W among
# the nodes of a tile.
#
# ## What you learned
#
# - The kernel IR records every schedule decision with its reason; the OpenCL names its
#   buffers after the model's parameters and states, and its phases after the `.cx` lines.
# - Node tiles trade weight reuse against wasted lanes on narrow batches; fusion trades
#   launches against barriers and code size; all of them are switches you can measure.
#
# Next, lesson 6: measuring properly, against baselines.

# %%
summary()

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
# kernels there are, which loops run in parallel and how they are launched; the steps after
# it on the kernel IR decide how many nodes one work-item computes (`tile_nodes`), how many
# units (`vectorize`, `tile_rows`), whether weights move to fast memory (`persist_weights`)
# or are stored in blocks (`block_weights`), and how dot products step along k
# (`unroll_dot_products`, `split_dot_chains`); `emit_opencl` prints OpenCL C, deciding
# nothing. In this lesson you
#
# 1. read a generated kernel line by line,
# 2. work out which nodes a work-item computes (exercise 5.1),
# 3. see what operator fusion, level fusion and weight persistence do to the kernels, and
#    how work-groups wait for each other where OpenCL has no barrier between them,
# 4. change a schedule choice (node tile, `-O` level, `--disable fuse_levels`) and measure,
# 5. write a level kernel by hand and run it over the linearizer's batches (exercise 5.2).
#
# Everything here runs on the OpenCL device `cortexlang devices` chooses (PoCL on a CPU
# unless you have a GPU); the plan depends on that device's limits, printed below.

# %%
import re

import numpy as np
from checks import check_exercise_5_1, check_exercise_5_2, exercise, summary
from common import (
    EXAMPLES,
    compile_model,
    cortexlang,
    device,
    load_trees,
    out_dir,
    table,
)
from timing import code_identity, compare, conclude, timing_table, verdict

from cortexlang.frontend.check import load_program
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.ir.kernels import format_kernels
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.execute import device_limits
from cortexlang.runtime.linearize import linearize

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
# planner and the kernel steps after it took (with their reasons), each kernel's geometry
# (work-items per node tile, node tile, work-group size, and the vector widths, row tiles,
# sub-tiles and partial sums the steps chose), what it reads and writes, and the launches
# per run. `--print-changed` shows the kernel IR after each of those steps, and why a step
# changed nothing.

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
# loops over batches (the one whose launch covers `run` in the plan above). On a CPU it is
# the only kernel: the whole run is one launch of `forward`, whose work-groups (one per
# compute unit, of one work-item each) share the work of every batch, as section 3 explains.
# Under the first line of each construct a note (`^--`) says what it does. Notice what is
# *not* there: no `if (isleaf)` (leaves are specialised), no `barrier(` (the work-groups meet
# at counters instead), and the leaves only copy rows of tables computed once per set of
# weights.

# %%
NOTES = [
    (r"cx_sigmoid\d*\(float", "math helpers, only those the kernels call"),
    (r"reqd_work_group_size", "the work-group size the planner chose, fixed at compile time "
     "(1 on a CPU: one work-item computes a vector of units)"),
    (r"__kernel void", "the kernel: its arguments are the buffers of the kernel IR"),
    (r"__global const float\* restrict p_", "p_NAME: a parameter, as declared"),
    (r"__global const float\* restrict pt_",
     "pt_NAME: the same parameter transposed, so that consecutive units are adjacent"),
    (r"__global const float\* restrict u_",
     "u_NAME: a value computed once when the weights are bound (hoisted or tabulated)"),
    (r"__global float\* restrict s_", "s_NAME: a state, one row per node (new ids)"),
    (r"volatile int\* restrict sync", "sync: counters the work-groups share, a row per "
     "step (a phase of a batch); all zero when the launch starts, and again when it ends"),
    (r"const int num_leaf_batches", "scalars: how many batches hold leaves, and in all"),
    (r"const int first_fused", "the first batch this kernel covers: 0 here, it runs every "
     "batch (in a GPU's hybrid plan the batches before it get launches of their own)"),
    (r"const int b\)", "b: the batch a per-level launch computes, set by the host before "
     "each launch; a kernel that loops over the batches itself (this one) ignores it"),
    (r"restrict w_", "w_NAME: each node's word id"),
    (r"restrict children", "children[node * 2 + i]: the linearizer's child ids"),
    (r"restrict batch_start", "batch_start, batch_len: the batches"),
    (r"get_group_id\(0\)", "which of the cooperating work-groups this is (0 .. groups - 1)"),
    (r"__local float", "weight persistence: a weight copied into __local memory, once per "
     "launch, for every node and batch the kernel computes (on a GPU, fast on-chip memory; "
     "on a CPU, PoCL keeps __local arrays in ordinary memory, so it is one more copy of W "
     "in the cache, not a faster kind of memory)"),
    (r"// section: leaf", "the leaf section: the leaf rule over the leaf batches"),
    (r"for \(int batch = ",
     "the sequential loop over batches, inside the kernel (no launch per batch); every "
     "work-group walks all of them"),
    (r"const int tiles = ", "the batch's nodes in tiles of node_tile nodes"),
    (r"counters = sync \+ ", "this step's row of counters (step = batch * phases + phase): "
     "one claim counter per work-group, then the count of finished tasks, each in a slot of "
     "16 ints (64 bytes, one cache line), so that two cores updating their own counters "
     "never write the same cache line: the row is (groups + 1) x 16 ints"),
    (r"const int total = ", "the step's tasks: one per (block of units, node tile)"),
    (r"for \(int round = 0;", "round 0: claim tasks from the group's own share; the later "
     "rounds: from the other groups' shares, whatever they have not claimed yet"),
    (r"const int first = ", "a share is a fixed slice of the tasks: the same unit blocks "
     "(the same weight rows, in this core's cache) at every step"),
    (r"atomic_inc\(counters \+ owner", "claim the next task of the share: atomic_inc "
     "returns the counter before adding 1, so no task is claimed twice; past `last` the "
     "share is used up"),
    (r"const int unit = work / tiles", "a task's unit block and node tile: consecutive tasks "
     "walk the node tiles with the same units"),
    (r"if \(tile \* 2 \+ 2 <= count\)", "a full tile: its 2 nodes computed together, "
     "with no clamping and no guards (exercise 5.1)"),
    (r"const int node_t0 = ", "lane 0 of the tile: which node it computes (exercise 5.1)"),
    (r"const int token_word_t0 = ", "the leaf's word id; max(.., 0): a missing word (-1) reads "
     "row 0"),
    (r"// phase ", "a phase: operators of one rule fused into one loop over units"),
    (r"int n = tile \* 2;", "a partial tile (the end of the batch): its nodes in sub-tiles "
     "of halving sizes (here: one node), so a batch of one node costs one node's work "
     "(exercise 5.1)"),
    (r"\+\+finished;", "one more task done by this group"),
    (r"atomic_add\(counters \+ \d+, finished\)", "after a fence (this group's stores "
     "first), add them to the step's finished-task counter"),
    (r"while \(atomic_add\(counters \+ \d+, 0\) < total\)", "the barrier between "
     "steps: wait until every task of the step is finished (an atomic read). This group has "
     "claimed what no running group had, and a task claimed is being computed, so the wait "
     "ends even if the driver runs the groups one after another"),
    (r"// section: internal", "the internal section: internal batches, in increasing height"),
    (r"children\[\(node_t0 \* 2\)\]", "the children of the node, for indirect loads"),
    (r"s_h_W \+ \(\(\(child0_t0",
     "reading a child's state: h_W = W @ h, already computed by the child (refactoring)"),
    (r"= tanh\(v", "the rest of the rule, fused: no intermediate leaves the work-item"),
    (r"vload\d+\(0, (l_)?pt_W", "a vector of consecutive units of W's transposed row k, "
     "loaded once for all the nodes of the tile: the node tile's point"),
    (r"float16 acc_v0_t0 = |float\d* acc_v0_t0 = ", "accumulators: one vector of units per "
     "node of the tile, and where there are few of them, extra partial sums (_p1, ...) "
     "over alternate k; they are added after the loop. Each is an independent chain of "
     "multiply-adds, so the core can start the next before the last one finishes. The "
     "`split_dot_chains` step chooses how many, per tile size (`dot products split into "
     "partial sums` in the kernel IR)"),
    (r"acc_v0_t0 \+= ", "multiply-accumulate: one vector of units for each node of the tile"),
    (r"if \(atomic_inc\(sync \+ ", "the last group out (the count of groups done was "
     "groups - 1) zeroes every counter for the next run"),
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
# A task is a block of units for one node tile of a batch; `tile` is the tile's number, and a
# tile holds `node_tile` nodes (`T` below). In a CPU plan (the listing above, unless your
# device is a GPU), a *full* tile (`tile * T + T <= count`) computes its `T` nodes together,
# lane `I` computing `node_tI`; the last tile of a batch, if it is partial, runs its nodes
# after `int n = ...` in sub-tiles of halving sizes (with a tile of 4: 2 nodes, then 1), each
# node once, in order. A GPU plan does it differently. Here are the
# same lines of TreeFC planned for a GPU (`DeviceLimits(is_gpu=True,
# max_work_group_size=64)`; nothing needs to run on one to print its code): every lane
# computes, and lanes past the end of the batch skip their stores.

# %%
gpu_limits = DeviceLimits(is_gpu=True, max_work_group_size=64)
gpu_result = run_pipeline(treefc, Options(node_tile=2), gpu_limits)
gpu_leaf = re.split(r"(?m)^(?=// kernel )", gpu_result.source)[1]
print(f"TreeFC planned for a GPU (strategy {gpu_result.kernels.strategy}), node tile 2, "
      "the lines of the leaf kernel that place a tile:")
print("\n".join(line for line in gpu_leaf.splitlines()
                if re.search(r"const int (node|tile)|tile \* 2 (\+ 1 <|>=) count", line)))

# %% [markdown]
# Write the mapping: for a batch starting at new id `start` with `count` nodes, tile number
# `tile` and a plan for a CPU (`gpu=False`) or a GPU (`gpu=True`), return the node
# computations the work-item makes for that tile, in order, as `(node, stored)` pairs: the
# node computed, and whether its result is stored. On a GPU that is one pair per lane
# `0 .. node_tile - 1`. The check compares with the code generated for both plans, for node
# tiles 1, 2, 4 and 8. Then think: why does a GPU lane past the end of the batch compute
# anything at all? How many node computations does a batch of one node cost with a node tile
# of 8, in each plan? (Hint: a CPU core pays for every computation; on a GPU every tile of
# every work-item takes the same code path, and thousands of work-items run at once.)

# %%
@exercise("5.1")
def tile_nodes(start, count, tile, node_tile, gpu):
    """[(node, stored)] for each node computation of the tile, in order."""
    raise NotImplementedError


check_exercise_5_1(tile_nodes, treefc)

# %% [markdown]
# ## 3. Fusion and weight persistence
#
# - **Operator fusion** (`fuse_operators`) puts the operators of a rule into as few phases as
#   possible: a phase ends only where a product needs a whole vector computed before.
# - **Level fusion** (`fuse_levels`) runs the batches inside one kernel that loops over them.
#   Batch `b + 1` reads what batch `b` stored, so all of batch `b` must be finished before
#   any of `b + 1` starts. OpenCL's `barrier()` waits only for the work-items of *one*
#   work-group, and there is no barrier across work-groups: OpenCL does not promise that the
#   work-groups of a launch run at the same time. A driver may run them one after another,
#   and a group waiting for a group that has not started would wait forever. The planner
#   gets around this in one of two ways, depending on the device:
#   - on a CPU, strategy `cooperative` (the listing of section 2): the whole run is one
#     launch of one work-group per compute unit (a core). Each step (a phase of a batch) is
#     cut into tasks; a group claims tasks with an atomic counter, first from its own share
#     (the same units at every step, so their weight rows stay in its core's cache), then
#     from the others' shares, and then waits until the step's count of finished tasks
#     reaches the number of tasks. The wait is safe: a task is claimed only by a group that
#     is running and computing it, and a group that has not started yet has claimed nothing,
#     so its share is taken by those that run. One launch per run, and every core busy.
#   - on a GPU, strategy `hybrid`: a GPU does not promise that a waiting work-group lets the
#     others run, nor that its caches see their stores. So batches wide enough to fill the
#     device (at least a node per compute unit) get one launch per phase, and from the first
#     narrower batch on, one *persistent* work-group runs the rest of the run in one launch,
#     its work-items meeting at `barrier()` between batches.
#
#   Without level fusion, every batch and phase is a launch (strategy `level`), which any
#   device runs at full width, each launch paying the launch's cost.
# - **Weight persistence** (`persist_weights`) copies the weights that products read into
#   `__local` memory once per launch of the fused kernel, when they fit in half of it. On a
#   GPU that is fast on-chip memory shared by a work-group; on a CPU, PoCL keeps `__local`
#   arrays in ordinary memory, so the copy changes where the weights live, not how fast the
#   memory is: measure before believing it helps.
#
# This table measures TreeLSTM's kernels in several configurations: kernels, the `barrier(`
# calls and counter waits written in the OpenCL (the two ways its work-items wait for each
# other), its lines and `__local` arrays, launches per run and time per batch. The last row
# is the default plan for a GPU with 80 compute units: the planner only needs the device's
# limits, so we can look at its code here, but not run it.

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
a_gpu = DeviceLimits(is_gpu=True, max_work_group_size=256, local_mem_size=49152,
                     compute_units=80, preferred_vector_width=1)


def code_columns(result):
    source = result.source
    return (result.kernels.strategy, source.count("__kernel"), source.count("barrier("),
            source.count("while (atomic_add("), source.count("__local"),
            len(source.splitlines()))


rows = {}
sources = {}
section_models = {}
for name, options in configurations.items():
    model = compile_model(treelstm, options, weights)
    model.run(trees)
    sources[name] = model.result.source
    section_models[name] = model
    rows[name] = (*code_columns(model.result), model.last_launches)
gpu_plan = run_pipeline(treelstm, Options(), a_gpu)
fusion_timings = compare(
    {name: (lambda model=model: model.run(trees)) for name, model in section_models.items()},
    budget_s=3.0, codes={name: code_identity(model) for name, model in section_models.items()})
code_headers = ("strategy", "kernels", "barrier(", "counter waits", "__local", "OpenCL lines",
                "launches")
print(timing_table(fusion_timings, "-O3 (default)", columns=code_headers, values=rows))
print(table(["not run", *code_headers], [("-O3 on a GPU", *code_columns(gpu_plan), "-")]))

# %% [markdown]
# The kernel IR keeps each decision with its reason: the strategy (`plan_kernels`), whether
# the weights were copied to local memory (`persist_weights`), and whether a transposed
# weight is stored in *blocks* of columns (`block_weights`; `layout` lines of
# `--emit kernels`: a work-item reading a vector of `W` units at every `k` then streams
# through one contiguous block instead of jumping a whole row ahead at each `k`). Here are
# the decisions for TreeLSTM on this device and on the GPU above, and whether
# `persist_weights` changes the OpenCL at all. (Always check that a switch changes
# something: an optimisation that silently never applies looks exactly like one that does
# not help.)

# %%
plans = {name: run_pipeline(treelstm, configurations[name], limits).kernels
         for name in ("-O3 (default)", "without persist_weights")}
plans["-O3 on a GPU"] = gpu_plan.kernels
for name, kernels in plans.items():
    print(f"{name}:")
    for line in format_kernels(kernels).splitlines():
        if line.startswith(("decision", "layout")) or "local memory" in line:
            print("   ", line)
same = sources["-O3 (default)"] == sources["without persist_weights"]
print("persist_weights changes the OpenCL:", "no" if same else "yes")

# %% [markdown]
# ## 4. Changing a schedule choice
#
# On the command line: `--set node_tile=N` (the compiled backend's setting), `-O N` and
# `--disable NAME` on `cortexlang run`; in Python, `Options(node_tile=N)` and
# `Options().without(NAME)`. A larger node tile reuses each loaded weight row for more nodes,
# but makes the code longer, and leaves more of a narrow batch (the high batches of lesson 3
# hold one or two nodes) to the partial tile, which on a CPU runs in smaller sub-tiles with
# less reuse (on a GPU, to lanes that compute and do not store: exercise 5.1). Here is the
# sweep, with the hidden size raised to 128 so that the weights matter, and a fastest tile
# named only if it is faster than every other by the timer's rule (the 95% interval of the
# ratio of their times more than 20% below 1).

# %%
cortexlang("run", EXAMPLES / "treelstm.cx", "-D", "H=16", "--trees", data.path, "--limit",
           "10", "--set", "node_tile=2", "--disable", "fuse_levels", max_lines=4)

WIDE = 128
wide = load_program(str(EXAMPLES / "treelstm.cx"), {**SIZES, "H": WIDE})
wide_weights = init_weights(wide.params, seed=0)
tile_models = {f"node tile {node_tile}": compile_model(wide, Options(node_tile=node_tile),
                                                       wide_weights)
               for node_tile in (1, 2, 4, 8)}
tile_timings = compare({label: (lambda model=model: model.run(trees))
                        for label, model in tile_models.items()}, budget_s=3.0,
                       codes={label: code_identity(model)
                              for label, model in tile_models.items()})
print(f"TreeLSTM, H = {WIDE}:")
print(timing_table(tile_timings, "node tile 1", columns=("OpenCL lines",),
                   values={label: (len(model.result.source.splitlines()),)
                           for label, model in tile_models.items()}))
best = min(tile_timings.values(), key=lambda row: row.median)
unclear = [row.label for row in tile_timings.values()
           if row is not best and verdict(best, row).kind != "faster"]
if not unclear:
    conclude(f"fastest on this machine, beyond the noise: {best.label}")
else:
    conclude(f"no fastest node tile on this machine: the lowest median, {best.label}, is "
             f"not clearly faster than {', '.join(unclear)}",
             stable="no fastest node tile")   # which tile has the lowest median is noise

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
# ## 6. The generated kernel's plan, in numpy
#
# The cooperative kernel of section 2 computes the same numbers in a different order. Here
# is that order in numpy, for TreeFC with refactoring (lesson 4): every batch is a *step*
# per phase; a phase's tasks are (block of units, node tile) pairs, each computing one
# vector of units for the tile's nodes; all tasks of a step finish before the next step
# starts (the counter wait). Phase 0 of an internal batch computes `h` from the children's
# `h_W` (one fused loop over units: add, bias, tanh); phase 1 computes the batch's own
# `h_W = W @ h`, which needs the whole `h` of a node first, hence a phase of its own. The
# leaves copy precomputed rows of tables. The assertion compares every state with the
# interpreter.

# %%
plan = run_pipeline(treefc, Options(node_tile=2), limits)
# The units one task computes: the widest vector of the plan (`vector widths` in section 1).
vector = max((width for kernel in plan.kernels.kernels for _, width in kernel.widths),
             default=1)
node_tile = plan.kernels.node_tile
batched = linearize(trees, max_children=2)
emb, w, b = (np.asarray(treefc_weights[name], dtype=np.float64) for name in ("Emb", "W", "b"))
hidden = w.shape[0]
table_h, table_h_w = emb, emb @ w.T                 # the leaf tables, once per set of weights
h = np.zeros((batched.num_nodes, hidden))
h_w = np.zeros_like(h)
blocks = [slice(j, min(j + vector, hidden)) for j in range(0, hidden, vector)]
for start, count in zip(batched.batch_start, batched.batch_len, strict=True):
    start, count = int(start), int(count)
    tiles = [np.arange(start + first, start + min(first + node_tile, count))
             for first in range(0, count, node_tile)]
    if start < batched.num_leaves:                  # the leaf section: copy table rows
        for tile in tiles:
            h[tile], h_w[tile] = table_h[batched.words[tile]], table_h_w[batched.words[tile]]
        continue
    for units in blocks:                            # step 1, phase 0: tasks (units, tile)
        for tile in tiles:
            left, right = batched.children[tile, 0], batched.children[tile, 1]
            h[tile, units] = np.tanh(h_w[left, units] + h_w[right, units] + b[units])
    for units in blocks:                            # step 2, phase 1: after the wait
        for tile in tiles:
            h_w[tile, units] = h[tile] @ w[units].T
reference = interpret(treefc, trees, treefc_weights, dtype=np.float64).states["h"]
np.testing.assert_allclose(h[batched.new_id], reference, rtol=1e-9, atol=1e-12)
print(f"the cooperative plan in numpy ({len(blocks)} unit blocks of {vector}, node tiles of "
      f"{node_tile}): every node's h equals the interpreter's (largest difference "
      f"{np.abs(h[batched.new_id] - reference).max():.1e})")

# %% [markdown]
# Compare your kernel with the generated one of section 2: yours launches once per batch,
# one work-item per node and unit, and reads W from global memory for every node; the
# generated one loops over all batches in one launch, its work-groups claiming tasks and
# meeting at counters between batches, computes a vector of units per work-item, and shares
# each loaded row of W among the nodes of a tile.
#
# ## What you learned
#
# - The kernel IR records every schedule decision with its reason; the OpenCL names its
#   buffers after the model's parameters and states, and its phases after the `.cx` lines.
# - OpenCL has no barrier across work-groups: a kernel that loops over batches either uses
#   one work-group (`barrier()` inside it), or makes its work-groups claim their work with
#   atomic counters, so that a group only ever waits for work a running group is doing.
# - Node tiles trade weight reuse against code size and the partial tiles of narrow batches;
#   fusion trades launches against waits and code size; all of them are switches you can
#   measure.
#
# Next, lesson 6: measuring properly, against baselines.

# %%
summary()

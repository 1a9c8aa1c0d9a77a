# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 3: linearization and dynamic batching
#
# Lesson 2 showed that launching work node by node is what makes recursive models slow, and
# that P1-P3 let cortexlang plan all the work from the shapes of the trees alone. The plan is
# made by the *linearizer*, on the host, before any tensor work:
#
# 1. compute each node's **height**: 0 for a leaf, 1 + the largest height of its children
#    otherwise (in a DAG: the longest path from a source);
# 2. put all nodes of one height, from *all* the trees of the batch, into one **batch**:
#    their children all have smaller heights, so they are finished, and P3 says the nodes of
#    a batch do not depend on each other, so a batch runs as one parallel step;
# 3. **renumber** the nodes so that each batch is a contiguous range of ids and batches come
#    in increasing height; the leaves are then ids `0 .. num_leaves - 1`, so `isleaf(n)` is
#    `n < num_leaves`;
# 4. emit flat arrays: `batch_start[b]`, `batch_len[b]`, `children[n]` in new ids, the words
#    permuted into the new order, and the new id of each tree's root.
#
# The generated kernels then loop over batches (sequential) and over the nodes of a batch
# (parallel), reading these arrays. You will write the linearizer's core yourself (exercises
# 3.1 to 3.3) and compare it with `cortexlang.runtime.linearize.linearize`, then run TreeFC
# over its batches in numpy (exercise 3.4).

# %%
import numpy as np
from checks import (
    check_exercise_3_1,
    check_exercise_3_2,
    check_exercise_3_3,
    check_exercise_3_4,
    exercise,
    summary,
)
from common import (
    EXAMPLES,
    cortexlang,
    load_trees,
    out_dir,
    save_picture,
    show_pictures,
    table,
    tree_file,
)
from timing import compare, timing_table

from cortexlang.frontend.check import load_program
from cortexlang.inputs.ptb import format_ptb
from cortexlang.inputs.weights import init_weights
from cortexlang.runtime.linearize import linearize

OUT = out_dir("lesson3")
data = load_trees(limit=200)
trees = data.structures
small = sorted(trees[:8], key=lambda structure: structure.num_nodes)[:2]

# %% [markdown]
# ## 1. Heights
#
# Here are two small trees of our data. Node ids are the reader's (the order in which it met
# the nodes).

# %%
for structure in small:
    print(format_ptb(structure, data.vocab))
    print("  children:", structure.children.tolist(), " root:", structure.root)

# %% [markdown]
# ### Exercise 3.1: heights
#
# Return the height of every node of one structure, indexed by the structure's own node
# ids. A child id of `-1` means "no child". Your function must also work on a DAG (a grid,
# where a node has two parents): a memo keeps shared nodes from being computed twice. The
# check tries trees, chains, n-ary trees and a grid.

# %%
@exercise("3.1")
def heights(structure):
    """int array [num_nodes]: 0 for a leaf, else 1 + the largest height of its children."""
    raise NotImplementedError


check_exercise_3_1(heights, trees[:20])

# %% [markdown]
# A picture of the first tree with your heights (the library's, until your function works):
# every node shows its id, its height and, for a leaf, its word.

# %%
def library_heights(structure):
    linearized = linearize([structure], max_children=2)
    return linearized.height[linearized.new_id]


def tree_picture(structure, node_heights):
    lines = ["digraph tree {", "  rankdir=BT; node [fontname=Helvetica, fontsize=11];"]
    for node in range(structure.num_nodes):
        word = int(structure.words[node])
        token = data.vocab.token(word).replace('"', "'") if word >= 0 else ""
        shape = "box" if structure.children[node].max() < 0 else "ellipse"
        lines.append(f'  n{node} [shape={shape}, label="id {node}\\nheight '
                     f'{int(node_heights[node])}\\n{token}"];')
        for child in structure.children[node]:
            if child >= 0:
                lines.append(f"  n{int(child)} -> n{node};")
    lines.append("}")
    return "\n".join(lines) + "\n"


try:
    shown_heights = heights(small[0])
except NotImplementedError:
    shown_heights = library_heights(small[0])
save_picture(tree_picture(small[0], shown_heights), OUT, "tree_heights")

# %% [markdown]
# ## 2. Batches by height, and new ids
#
# Merge the structures of a batch into one id space (structure 0's nodes first, then
# structure 1's, ...; a node's *merged id* is its structure's offset plus its own id). Then
# sort the nodes by height; inside one height, keep the merged order. A node's **new id** is
# its position in that sorted order.
#
# ### Exercise 3.2: new ids
#
# Return `new_id`, an int array over the merged ids: `new_id[offset[t] + n]` is the new id
# of node n of structure t. (`np.argsort(..., kind="stable")` keeps ties in order.)

# %%
@exercise("3.2")
def new_ids(structures):
    """int array [total nodes]: the new id of every merged node."""
    raise NotImplementedError


check_exercise_3_2(new_ids, trees[:20])

# %% [markdown]
# ### Exercise 3.3: the whole linearizer
#
# Return a dict with the arrays the kernels read, named as the fields of the library's
# `Linearized`:
#
# - `new_id` (exercise 3.2) and `height` (indexed by *new* id, so it never decreases),
# - `batch_start`, `batch_len`: one entry per height,
# - `children`: [total, max_children], row `new` lists that node's children in *new* ids,
#   `-1` where a position is empty (keep positions: a grid cell's `[-1, up]` stays so),
# - `words`: the word of each node in new order (`-1` for none),
# - `roots`: the new id of each structure's root, and `num_leaves`.

# %%
@exercise("3.3")
def my_linearize(structures, max_children):
    """The linearized arrays of `structures`, as a dict (see above)."""
    raise NotImplementedError


check_exercise_3_3(my_linearize, trees[:20])

# %% [markdown]
# ## 3. The library's linearizer, in pictures and numbers
#
# `cortexlang viz` draws the input trees and the same trees as the linearizer numbers and
# batches them (`--stage inputs --stage linearized`): colour is the batch, a row is a height,
# and the tables under the trees are the arrays the kernels read. Compare them with your
# arrays for the same two trees, printed below.

# %%
path, _ = tree_file()
pictures = OUT / "viz"
cortexlang("viz", EXAMPLES / "treefc.cx", "-D", "H=8", "--trees", path, "--batch", "2",
           "--stage", "inputs", "--stage", "linearized", "--no-run", "-o", pictures)
show_pictures(pictures, "inputs", "linearized")
library = linearize(list(trees[:2]), max_children=2)
print(library.describe())
try:
    mine = my_linearize(list(trees[:2]), 2)
    print("\nyours:  batch_start", np.asarray(mine["batch_start"]).tolist(),
          " batch_len", np.asarray(mine["batch_len"]).tolist(),
          " roots", np.asarray(mine["roots"]).tolist())
except NotImplementedError:
    print("\n(your arrays appear here once exercise 3.3 is done)")

# %% [markdown]
# ## 4. What dynamic batching buys
#
# Without dynamic batching every node is a batch of its own: as many sequential steps as
# nodes. With it, the number of steps is the height of the highest tree plus one, *however
# many trees* the batch holds, and the batches get wider as trees are added. That width is
# the parallelism the kernels can use. Here it is for growing batches of our trees.

# %%
rows = []
for count in (1, 10, 50, len(trees)):
    batch = list(trees[:count])
    batched = linearize(batch, max_children=2)
    rows.append((count, batched.num_nodes, batched.num_batches,
                 batched.num_nodes / batched.num_batches, batched.max_batch_len,
                 batched.seconds * 1e3))
print(table(["trees", "nodes", "batches (steps)", "mean width", "widest", "linearize ms"],
            rows))
one_by_one = linearize(list(trees[:10]), max_children=2, dynamic_batching=False)
print(f"\nwithout dynamic batching, 10 trees: {one_by_one.num_batches} batches of one node")

# %% [markdown]
# The batches are very uneven: height 0 holds every leaf, and the few highest batches hold a
# node or two each, since only the deepest trees reach them. This histogram of batch widths
# for all the trees above shows why a kernel for one batch must work for 1 node as well as for
# hundreds.

# %%
everything = linearize(list(trees), max_children=2)
widest = int(everything.batch_len.max())
for batch, width in enumerate(everything.batch_len.tolist()):
    bar = "#" * max(1, round(50 * width / widest))
    print(f"height {batch:>2}  {width:>5} nodes  {bar}")

# %% [markdown]
# ## 5. Running the batches, in numpy
#
# Lesson 1's TreeFC recursed from the root, one node per Python call. With the linearizer's
# arrays the same model runs one *batch* per step: all the nodes of a height at once, as
# the generated kernels do (lesson 5), here as numpy matrix products:
#
#     leaves    (ids 0 .. num_leaves - 1):  h[n] = Emb[words[n]]
#     batch b   (ids start .. start + len - 1, in increasing height):
#               h[rows] = tanh((h[left] + h[right]) @ W.T + b)
#
# where `left` and `right` are columns 0 and 1 of `children[rows]`: new ids of nodes of lower
# heights, so their rows are already computed.
#
# ### Exercise 3.4: TreeFC, batch by batch
#
# Given a `Linearized` (the library's, with the fields of exercise 3.3 as attributes:
# `linearized.batch_start`, `.batch_len`, `.children`, `.words`, `.num_leaves`,
# `.num_nodes`) and TreeFC's weights, return the states h of every node as an array
# `[num_nodes, H]` in *new* ids. The check compares `h[linearized.new_id]` (back in input
# order) with the interpreter's states at every node, with small weights and with weights
# large enough that tanh is far from linear.

# %%
treefc = load_program(str(EXAMPLES / "treefc.cx"), {"H": 8, "V": len(data.vocab)})
treefc_weights = init_weights(treefc.params, seed=0)


@exercise("3.4")
def treefc_batched(linearized, weights):
    """TreeFC's h for every node, [num_nodes, H] in new ids, one numpy step per batch."""
    raise NotImplementedError


check_exercise_3_4(treefc_batched, treefc, treefc_weights, trees[:20])

# %% [markdown]
# ## 6. The linearizer's cost
#
# Linearization runs on the host for every batch of inputs, so its time adds to every
# inference (lesson 6 reports it apart). The library computes heights with a *frontier sweep*
# in numpy: one vectorised step per height for all trees at once, instead of a Python call per
# node. Compare with your version (a recursive Python function, most likely).

# %%
batch = list(trees)
calls = {"library": lambda: linearize(batch, max_children=2)}
try:
    my_linearize(batch[:1], 2)
    calls["yours"] = lambda: my_linearize(batch, 2)
except NotImplementedError:
    print("(your linearizer is timed here once exercise 3.3 is done)")
cost = compare(calls, budget_s=2.0)
print(f"{len(batch)} trees, {sum(s.num_nodes for s in batch)} nodes:")
print(timing_table(cost, "library", first="linearizer"))

# %% [markdown]
# ## What you learned
#
# - Heights order the work: every node of height k depends only on heights below k.
# - Renumbering by (height, structure, id) makes each batch a contiguous id range and the
#   leaves a prefix, so kernels need two integers per batch and one comparison for `isleaf`.
# - Dynamic batching turns (nodes) sequential steps into (height + 1), and merging trees
#   widens every step; each step is one matrix product over the batch's rows.
#
# Next, lesson 4: the compiler's passes, one at a time.

# %%
summary()

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 1: recursive models and the language
#
# A *recursive* model computes a state for every node of a tree from the states of the node's
# children: the leaves start from their words, and the root's state summarises the sentence.
# TreeFC, TreeLSTM, TreeGRU and MV-RNN are of this kind. In this lesson you
#
# 1. look at a sentiment tree the way cortexlang stores it,
# 2. write TreeFC in cortexlang's language, check it and run it with the *reference
#    interpreter* (from the command line and from Python),
# 3. write TreeLSTM yourself (exercise 1.2), and
# 4. read per-node outputs of a sentiment classifier (exercise 1.3).
#
# The interpreter runs a model node by node in numpy, exactly as the equations read. It is
# slow, and it is the definition of what every compiled program must compute: lessons 2 to 6
# are about computing the same numbers much faster.
#
# Run this lesson with `.venv/bin/python tutorials/lesson1_language.py`, or open it as a
# notebook (see `tutorials/README.md`). Exercises are functions marked `@exercise`: replace
# `raise NotImplementedError` with your code and run the cell; the check below it says whether
# the answer is right.

# %%
import numpy as np
from checks import (
    check_exercise_1_1,
    check_exercise_1_2,
    check_exercise_1_3,
    exercise,
    summary,
)
from common import EXAMPLES, cortexlang, load_trees, out_dir, relative

from cortexlang.frontend.check import check_source, load_program
from cortexlang.inputs.ptb import format_ptb
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret

OUT = out_dir("lesson1")
data = load_trees(limit=12)
trees = data.structures
VOCABULARY = len(data.vocab)

# %% [markdown]
# ## 1. A tree, as cortexlang stores it
#
# Each input becomes a `Structure`: flat arrays indexed by node id. `children[n]` lists node
# n's children (`-1` where there is none: every row of a leaf is `-1`), `words[n]` is the word
# id of a leaf (`-1` for an internal node), and `root` is the node whose state is the output.
# Node ids are in the order the PTB reader met the nodes; nothing requires children to come
# before their parents.

# %%
tree = min(trees[:6], key=lambda structure: structure.num_nodes)
print(format_ptb(tree, data.vocab))
print(f"\n{tree.num_nodes} nodes, root {tree.root}")
print("node  children   word  token")
for node in range(tree.num_nodes):
    token = data.vocab.token(int(tree.words[node])) if tree.words[node] >= 0 else ""
    print(f"{node:>4}  {str(tree.children[node].tolist()):<9}  {int(tree.words[node]):>5}  "
          f"{token}")

# %% [markdown]
# ## 2. TreeFC in the language
#
# TreeFC is the simplest recursive model: a leaf's state is its word's embedding, and an
# internal node mixes the sum of its children's states through one fully connected layer:
#
#     leaf:      h = Emb[word]
#     internal:  h = tanh(W (h_left + h_right) + b)
#
# In cortexlang a model is a `.cx` file: sizes, the structure it recurses over, the learned
# parameters, the per-node input, the states, one rule for leaves and one for internal nodes,
# and what to output. `docs/language.md` is the full reference.

# %%
TREEFC = """\
model TreeFC
sizes H = 8, V = 21701
structure binary_tree

param Emb[V, H]
param W[H, H], b[H]

input word: token
state h[H]

leaf n:
    h = Emb[word(n)]

internal n:
    h = tanh(W @ (h[left(n)] + h[right(n)]) + b)

output h[root]
"""
treefc_path = OUT / "treefc.cx"
treefc_path.write_text(TREEFC)
print(TREEFC)

# %% [markdown]
# `cortexlang check` parses and type-checks a model without running it; it prints every
# parameter, state and rule with its shapes. Then `cortexlang run --backend interp` runs it
# with the reference interpreter on trees from a file (weights are initialised from a seed
# unless you give `--weights`).

# %%
cortexlang("check", treefc_path)
cortexlang("run", treefc_path, "--backend", "interp", "--trees", data.path, "--limit", "3")

# %% [markdown]
# The same from Python. `check_source` (or `load_program` for a file) returns the checked
# program; `init_weights` draws every parameter from its declared initialiser; `interpret`
# runs the program on a list of structures and returns an `Outputs`:
#
# - `outputs["h"]`: one row per tree for an `output h[root]`,
# - `states["h"]`: one row per node of all trees, tree after tree,
# - `node_offset[t]`: where tree t's nodes start in `states`,
# - `timings`: seconds per phase.
#
# `V` is overridden with the vocabulary of our tree file, as `-D V=...` would on the command
# line, so the embedding table has one row per word.

# %%
treefc = check_source(TREEFC, str(treefc_path), {"V": VOCABULARY})
weights = init_weights(treefc.params, seed=0)
result = interpret(treefc, trees, weights)
print("parameters:", {name: value.shape for name, value in weights.items()})
print("outputs h:", result.outputs["h"].shape, " states h:", result.states["h"].shape)
print("node_offset:", result.node_offset.tolist())
print("root state of tree 0:", np.round(result.outputs["h"][0], 4))
print(f"interpreted {result.states['h'].shape[0]} nodes in "
      f"{result.timings['compute'] * 1e3:.1f} ms")

# %% [markdown]
# ### Exercise 1.1: TreeFC by hand
#
# Write TreeFC yourself in numpy, as a recursive Python function over a `Structure`: return
# the root's state h. Use the arrays of section 1 (`children`, `words`, `root`) and the
# weights dictionary (`weights["Emb"]`, `weights["W"]`, `weights["b"]`). The check compares
# your roots with the interpreter's on every tree.

# %%
@exercise("1.1")
def treefc_by_hand(structure, weights):
    """The root state h of TreeFC on `structure` (a numpy vector of size H)."""
    raise NotImplementedError


check_exercise_1_1(treefc_by_hand, treefc, weights, trees)

# %% [markdown]
# ## 3. TreeLSTM
#
# The binary TreeLSTM (Tai et al. 2015, the N-ary form with N = 2) keeps two states per node,
# a hidden state h and a memory cell c. An internal node computes five gates from both
# children at once, with one forget gate per child:
#
#     internal:  [i; f_l; f_r; o; u] = U [h_left; h_right] + b        U is [5H, 2H]
#                c = sigmoid(i) * tanh(u) + sigmoid(f_l) * c_left + sigmoid(f_r) * c_right
#                h = sigmoid(o) * tanh(c)
#
# A leaf has no children, so its forget gates and child terms vanish; it reads its word:
#
#     leaf:      [i; o; u] = W_leaf Emb[word] + b_leaf                  W_leaf is [3H, H]
#                c = sigmoid(i) * tanh(u)
#                h = sigmoid(o) * tanh(c)
#
# ### Exercise 1.2: write TreeLSTM
#
# Return the `.cx` text of this model. Use the sizes `H` and `V`, the parameters `Emb[V, H]`,
# `W_leaf[3H, H]`, `b_leaf[3H]`, `U[5H, 2H]`, `b[5H]`, the states `h[H]` and `c[H]`, and
# `output h[root]`. You will need `split(x, 3)` (it cuts a vector into equal parts:
# `i, o, u = split(..., 3)`) and `concat(a, b)`; `docs/language.md` has both. The check runs
# your program and `examples/treelstm.cx` with the same weights and compares h and c at
# every node. If the checker rejects your program, the check shows its error messages.

# %%
@exercise("1.2")
def treelstm_source():
    """The TreeLSTM model as cortexlang source text."""
    raise NotImplementedError


check_exercise_1_2(treelstm_source, trees, VOCABULARY)

# %% [markdown]
# ## 4. Outputs at every node: a sentiment classifier
#
# The Stanford Sentiment Treebank labels *every* node with one of 5 classes (0 very negative
# to 4 very positive). `examples/sentiment.cx` is the TreeLSTM with a softmax *head* evaluated
# at every node:
#
#     output sentiment[all] = softmax(W_s @ h + b_s)
#
# An `[all]` output has one row per node of every tree (in `states` order), not one per tree.
# The weights here are random, so the predictions are meaningless; the point is where to find
# them.

# %%
sentiment = load_program(str(EXAMPLES / "sentiment.cx"), {"H": 8, "V": VOCABULARY})
sentiment_weights = init_weights(sentiment.params, seed=0)
predicted = interpret(sentiment, trees, sentiment_weights)
print(f"{relative(EXAMPLES / 'sentiment.cx')}: outputs",
      {name: value.shape for name, value in predicted.outputs.items()})

# %% [markdown]
# ### Exercise 1.3: per-node classes
#
# Return the predicted class (the index of the largest probability) of every node of tree
# number `tree`, in the tree's own node order: an integer array with one entry per node of
# that tree. Use `outputs.node_offset`. The check runs the classifier on the lesson's trees
# with weights under which the class changes from node to node (with the random weights
# above, every node may well predict the same class, and a wrong answer could pass), and
# compares your classes with the argmax of each node's row.

# %%
@exercise("1.3")
def node_predictions(outputs, tree):
    """The argmax class of each node of tree `tree`."""
    raise NotImplementedError


check_exercise_1_3(node_predictions, sentiment, trees)

# %% [markdown]
# Here is the first tree with the label of its root from the treebank next to the class the
# (untrained) model predicts at the root. Training is not part of cortexlang: it runs
# inference, for weights trained elsewhere (`cortexlang weights` reads them from `.npz`).

# %%
first = trees[0]
start = int(predicted.node_offset[0])
root_probabilities = predicted.outputs["sentiment"][start + first.root]
print(format_ptb(first, data.vocab))
print(f"treebank label of the root: {int(first.labels[first.root])}; predicted class: "
      f"{int(root_probabilities.argmax())} (probabilities {np.round(root_probabilities, 3)})")

# %% [markdown]
# ## 5. The same numbers, compiled
#
# Without `--backend interp`, `cortexlang run` compiles the model to OpenCL kernels and runs
# those (the rest of this course explains how). Both backends save every output and state with
# `--out`; the compiled one computes in float32 with its own order of additions, so the two
# agree up to float32 rounding.

# %%
interp_file, compiled_file = OUT / "treefc_interp.npz", OUT / "treefc_compiled.npz"
common_arguments = (treefc_path, "--trees", data.path, "--limit", "5")
cortexlang("run", *common_arguments, "--backend", "interp", "--out", interp_file, show=False)
cortexlang("run", *common_arguments, "--out", compiled_file, max_lines=4)
with np.load(interp_file) as reference_file, np.load(compiled_file) as compiled_result:
    difference = np.abs(reference_file["outputs/h"] - compiled_result["outputs/h"]).max()
print(f"largest difference between the backends' root states: {difference:.2e}")

# %% [markdown]
# ## What you learned
#
# - A recursive model is two rules (leaf, internal) over a structure; `.cx` writes them as
#   equations, and `cortexlang check` explains what is wrong with a program.
# - `cortexlang.interp.interpret` is the reference: node by node, children first.
# - `Outputs` holds per-tree outputs, per-node states and `[all]` outputs, in input order.
#
# Next, lesson 2: why running these models one node and one operator at a time is slow.

# %%
summary()

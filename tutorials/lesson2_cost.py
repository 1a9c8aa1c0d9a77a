# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 2: why frameworks are slow on trees
#
# A framework such as PyTorch runs a recursive model the way lesson 1's interpreter does:
# node by node, and for every node one operator at a time, each a separate call into a
# library (on a GPU, a separate kernel launch). A TreeLSTM node is a couple of dozen small
# operators on vectors of a few hundred numbers, so the time goes into *scheduling* them, not
# into arithmetic. In this lesson you
#
# 1. count the operators a node runs, from the compiler's recursive program (exercise 2.1),
# 2. count and time the kernel launches of the compiled model at each optimisation level,
#    and predict them from the kernel plan (exercise 2.2),
# 3. meet the three properties P1-P3 that let cortexlang plan all of the work before running
#    any of it, and the errors the checker reports for programs without them (exercise 2.3).

# %%
from checks import (
    check_exercise_2_1,
    check_exercise_2_2,
    check_exercise_2_3,
    exercise,
    summary,
)
from common import EXAMPLES, compile_model, cortexlang, load_trees, out_dir
from timing import code_identity, compare, conclude, timing_table, verdict

from cortexlang.frontend.check import load_program
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.ir.recursive import SOURCE_KINDS
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.runtime.linearize import linearize

OUT = out_dir("lesson2")
data = load_trees(limit=10)
trees = data.structures
SIZES = {"H": 8, "V": len(data.vocab)}
treelstm = load_program(str(EXAMPLES / "treelstm.cx"), SIZES)
weights = init_weights(treelstm.params, seed=0)

# %% [markdown]
# ## 1. Operators per node
#
# The compiler's first stage turns the checked program into a *recursive program*: each rule
# as a flat list of operators that compute one tensor per node (`matmul`, `binary[op=add]`,
# `unary[op=sigmoid]`, `slice`, ...), plus *sources* that only name data (`param`, `lookup` of
# a word's embedding, `child_state`). `-O0` switches every optimisation off, so this is the
# program as written.

# %%
cortexlang("compile", EXAMPLES / "treelstm.cx", "-D", "H=8", "--emit", "recursive", "-O0",
           max_lines=40)

# %% [markdown]
# An eager framework makes one call per computed operator per node: the sources cost nothing
# (they are views of existing tensors), everything else is a call. Here are the operator kinds
# of TreeLSTM's two rules, counted from the recursive program in Python.

# %%
unoptimised = run_pipeline(treelstm, Options.level(0)).recursive
for rule in (unoptimised.leaf, unoptimised.internal):
    kinds: dict[str, int] = {}
    for op in rule.ops:
        if op.kind not in SOURCE_KINDS:
            label = op.kind if op.attr("op") is None else f"{op.kind} {op.attr('op')}"
            kinds[label] = kinds.get(label, 0) + 1
    print(f"{rule.kind:>8} rule: {sum(kinds.values())} computed operators: {kinds}")

# %% [markdown]
# ### Exercise 2.1: how many calls does node-by-node execution make?
#
# Given a recursive program and a list of structures, return how many operator calls an
# eager framework makes to run them all: every leaf runs the computed operators (kind not in
# `SOURCE_KINDS`) of `program.leaf`, every internal node those of `program.internal`.
# (`structure.is_leaf()` marks the leaves.)

# %%
@exercise("2.1")
def eager_operator_calls(program, structures):
    """Operator calls to run `program` node by node over `structures`."""
    raise NotImplementedError


check_exercise_2_1(eager_operator_calls, {"TreeLSTM -O0": unoptimised}, trees)

# %% [markdown]
# ## 2. Launches
#
# The compiled model records how many kernels its last run launched: `last_launches`. At
# `-O0` every node is its own batch and every operator its own kernel, so the launches are
# the node-by-node execution above, on OpenCL. `-O1` adds *dynamic batching*: all the nodes of
# one height (across all trees) run in one launch per operator. `-O2` adds *operator fusion*:
# one kernel runs many operators. The default, `-O3`, also fuses *levels*: batches run inside
# one kernel that loops over them (section 2's last cell shows the planner's decision).
# Switching off `fuse_levels` alone keeps everything else.
#
# The interpreter is here for comparison: numpy, node by node. The course's timer
# (`timing.compare`, lesson 6 explains it) runs the configurations in turns, at least 20 times
# each after warm-up, and prints the 10th percentile, the median and the 90th percentile of
# the samples. It compares each row with `-O0` round by round (the two ran back to back in
# every round): the last column gives the median of the row's time over `-O0`'s and a 95%
# confidence interval for it, and calls the row faster or slower only where the whole
# interval is more than 20% from 1 (`no clear difference` otherwise: within 20%, or too
# noisy to place beyond it). The trees and the hidden size are small, so launch
# and call overheads dominate: that is the point.

# %%
configurations = {
    "-O0": Options.level(0),
    "-O1": Options.level(1),
    "-O2": Options.level(2),
    "-O3 without fuse_levels": Options().without("fuse_levels"),
    "-O3 (default)": Options(),
}
models = {name: compile_model(treelstm, options, weights)
          for name, options in configurations.items()}
calls = {"interpreter (numpy)": lambda: interpret(treelstm, trees, weights)}
calls.update({name: (lambda model=model: model.run(trees)) for name, model in models.items()})
timings = compare(calls, budget_s=3.0,
                  codes={name: code_identity(model) for name, model in models.items()})
for model in models.values():
    model.run(trees)  # last_launches of one run of these trees
try:  # your answer to exercise 2.1, when you have one
    eager_calls = eager_operator_calls(unoptimised, trees)
except NotImplementedError:
    eager_calls = None
counts = {"interpreter (numpy)": (eager_calls if eager_calls is not None else "(ex. 2.1)",
                                  "nodes")}
counts.update({name: (model.last_launches, model.result.kernels.strategy)
               for name, model in models.items()})
per_call = {name: timings[name].median * 1e3 / count
            for name, (count, _) in counts.items() if isinstance(count, int)}
values = {name: (*counts[name], round(per_call[name], 1) if name in per_call else "-")
          for name in calls}
print(timing_table(timings, "-O0", columns=("calls or launches", "strategy", "us per call"),
                   values=values))

# %% [markdown]
# A row marked `same code` generates byte-identical OpenCL and launches it the same way as
# the row it is compared with: whatever separates their timings is noise, a measure of how
# much any row moves between runs. (`-O2` and `-O3 without fuse_levels` are such a pair:
# the line below checks it.) What the numbers say, computed from them:

# %%
slowest, fastest = max(per_call.values()), min(per_call.values())
o0, o2 = timings["-O0"], timings["-O2"]
launches_o0, launches_o2 = models["-O0"].last_launches, models["-O2"].last_launches
if verdict(o2, o0).kind == "faster":
    conclude(f"- from -O0 to -O2 the launches fall {launches_o0 / launches_o2:.0f}x "
             f"({launches_o0} -> {launches_o2}) and the median time "
             f"{o0.median / o2.median:.0f}x", stable="-O2 faster than -O0")
else:
    conclude(f"- -O2 against -O0: {verdict(o2, o0).kind}")
spread = ("not fixed: it grows with the work a launch does" if slowest > 3 * fastest
          else "within a factor of 3")
conclude(f"- the cost of one call or launch (median time / count) ranges from {fastest:.1f} "
         f"to {slowest:.1f} us: {spread}", stable=f"cost of a call or launch: {spread}")
same = code_identity(models["-O2"]) == code_identity(models["-O3 without fuse_levels"])
conclude(f"- -O2 and -O3 without fuse_levels run the same code: {'yes' if same else 'no'}")
one_rule = run_pipeline(treelstm, Options.level(0)).kernels
nodes = sum(structure.num_nodes for structure in trees)
print(f"- -O0 launches {len(one_rule.launches)} kernels (one per operator) at each of the "
      f"{nodes} nodes, each node a batch of its own: {len(one_rule.launches)} x {nodes} = "
      f"{len(one_rule.launches) * nodes} (the executor counted {launches_o0})")

# %% [markdown]
# Why does `-O0` launch more kernels than an eager framework makes calls (exercise 2.1)? At
# `-O0` leaves are not specialised (`specialize_leaves` is off): every node, leaf or
# internal, runs the same kernel program, one launch per operator of the internal rule, and
# a leaf's launches compute what the branch `isleaf(n)` then throws away. An eager framework
# branches on the host and runs only the leaf rule's operators at a leaf. Lesson 4 shows the
# pass that removes this. Dynamic batching (`-O1`) divides the launches by the average number
# of nodes per height; fusion (`-O2`) divides them by the operators per kernel; level fusion
# (`-O3`) leaves one launch per run. Whether the time follows depends on what each launch
# costs, and the table above is this machine's answer.
#
# ### Exercise 2.2: predict the launches
#
# The kernel plan (`model.result.kernels`, printed by `cortexlang compile --emit kernels`)
# says how the executor launches. Without level fusion its strategy is `level`: for each
# `(kernel, over)` in `kernels.launches`, one launch per batch that `over` covers (a
# `BatchRange`, from `cortexlang.ir.batches`): `BatchRange.LEAF` covers the batches of leaves
# (those whose `batch_start` is below `num_leaves`), `BatchRange.INTERNAL` the others,
# `BatchRange.ALL` every batch, and `BatchRange.HEADS` (output heads) one launch.
#
# Return the number of launches of a `level` kernel program for a `Linearized` batch of trees
# (lesson 3 builds those arrays; here you only need `batch_start`, `num_leaves` and
# `num_batches`). The check runs every compiled model of the table whose strategy is `level`
# and compares with `last_launches`.

# %%
plan = cortexlang("compile", EXAMPLES / "treelstm.cx", "-D", "H=8", "--emit", "kernels", "-O2",
                  show=False)
print("$ cortexlang compile examples/treelstm.cx -D H=8 --emit kernels -O2   "
      "(buffer, read and write lines left out)")
print("\n".join(line for line in plan.stdout.splitlines()
                if not line.lstrip().startswith(("buffer", "reads", "writes", "device"))))


@exercise("2.2")
def predicted_launches(kernels, linearized):
    """How many kernels the executor launches for `kernels` on `linearized`."""
    raise NotImplementedError


check_exercise_2_2(predicted_launches, models, trees)

# %% [markdown]
# With level fusion on (the default), the plan is no longer one launch per batch: one kernel
# loops over the batches. Its work-groups must then wait for each other between batches, and
# OpenCL has no barrier across work-groups. On a CPU the planner launches one work-group per
# compute unit, once per run: they share each batch's work and wait for each other at
# counters in memory (strategy `cooperative`; lesson 5 reads that code). On a GPU it keeps
# per-batch launches for batches wide enough to fill the device and runs the narrow rest in
# one launch of a single work-group (strategy `hybrid`). Its decision, with the numbers for
# this device, and the launches of our batch of trees:

# %%
default_plan = models["-O3 (default)"].result.kernels
print("strategy:", default_plan.strategy)
for decision in default_plan.decisions:
    print("decision:", decision)
print("launches per run:", ", ".join(f"{name} over {over.value}"
                                     for name, over in default_plan.launches))
print("widths of our batches:", linearize(trees, max_children=2).batch_len.tolist())
print("launches of the last run:", models["-O3 (default)"].last_launches)

# %% [markdown]
# ## 3. What makes planning possible: P1, P2, P3
#
# cortexlang computes the order of *all* the work from the shapes of the trees alone, before
# any tensor work, with a cheap host-side *linearizer* (lesson 3). That works only for models
# with three properties, which the checker proves:
#
# - **P1** control flow depends only on the structure (`isleaf(n)`, `num_children(n)`), never
#   on a computed value or on an input's value;
# - **P2** all recursive calls come before any tensor work: a node reads its children, never
#   its parent or the root;
# - **P3** the calls on a node's children are independent: a node never reads its sibling.
#
# Here are three TreeFC variants that each break one property, and what `cortexlang check`
# says about them.

# %%
TEMPLATE = """\
model TreeFC
sizes H = 8, V = 1000
structure binary_tree
param Emb[V, H]
param W[H, H], b[H]
input word: token
state h[H]
leaf n:
    h = Emb[word(n)]
internal n:
{body}
output h[root]
"""
BROKEN = {
    "p1_value_branch": "    s = W @ (h[left(n)] + h[right(n)]) + b\n"
                       "    h = s if s > 0 else zeros(H)",
    "p2_parent": "    h = tanh(W @ (h[left(n)] + h[parent(n)]) + b)",
    "p3_sibling": "    h = tanh(W @ (h[left(n)] + h[sibling(n)]) + b)",
}
for name, body in BROKEN.items():
    path = OUT / f"{name}.cx"
    path.write_text(TEMPLATE.format(body=body))
    cortexlang("check", path, expect=1)

# %% [markdown]
# The first program wanted a ReLU: keep the positive part of `s`. As a branch it is illegal,
# because the branch taken would depend on the numbers, and so would the schedule. An
# elementwise function computes the same thing without any control flow: every node runs the
# same operators, whatever the values.
#
# ### Exercise 2.3: make it legal
#
# Return a legal version of `p1_value_branch.cx` (the template above with your internal rule)
# that computes, at every internal node, `h = max(0, W (h_left + h_right) + b)`. Keep the
# sizes and parameters. The language's functions are listed in `docs/language.md`.

# %%
@exercise("2.3")
def legal_relu_source():
    """TreeFC with a ReLU instead of a value-dependent branch, as .cx text."""
    raise NotImplementedError


check_exercise_2_3(legal_relu_source, trees, SIZES["V"])

# %% [markdown]
# ## What you learned
#
# - Node-by-node execution makes (nodes x operators) calls; for small models on trees the
#   time goes into the calls, not the arithmetic.
# - Dynamic batching, operator fusion and level fusion each remove a factor of launches; the
#   kernel plan tells you exactly how many remain. Timings are ranges: call a difference only
#   where it is clear round after round, and rows that run the same code show the noise.
# - P1-P3 are what allow all of this: the checker rejects value-dependent branches (E0403),
#   reading the parent or the root (E0404) and reading a sibling (E0405).
#
# Next, lesson 3: how the linearizer turns trees into batches.

# %%
summary()

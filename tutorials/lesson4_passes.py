# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 4: specialisation, hoisting, refactoring and unrolling
#
# Lesson 3 gave us batches; the compiler now decides what each batch computes. It lowers the
# model through a list of stages and passes, each a function from one program to the next,
# each switchable, so that its effect can be seen and measured. In this lesson you look at
# the passes on the *recursive program* one at a time, before and after, in text and in
# pictures, and measure what switching each one off changes.
#
# - **leaf specialisation**: separate code for leaves and internal nodes, no per-node branch;
# - **constant folding**: a derived leaf reads zero child states, so products with them go;
# - **recursive refactoring**: `W @ (h_left + h_right)` becomes `W @ h` computed at the end of
#   each child's own step, as a new state; the parent only adds. The product moves, it does
#   not disappear: section 6 shows what that costs in phases;
# - **hoisting**: work that depends on no node is computed once per set of weights;
# - **leaf tabulation**: a leaf rule that depends only on the leaf's word is computed once
#   per word of the vocabulary, when the weights are bound; a leaf then copies a row;
# - **unrolling**: `unroll_dot_products`, a code-generator option for dot-product loops, and
#   `unroll_recursion`, the paper's recursive unrolling (two heights per step, off by
#   default); section 5 measures both.

# %%
import difflib

import numpy as np
from checks import (
    check_exercise_4_1,
    check_exercise_4_2,
    check_exercise_4_3,
    exercise,
    hoisting_programs,
    summary,
)
from common import (
    EXAMPLES,
    REPO,
    compile_model,
    cortexlang,
    device,
    load_trees,
    out_dir,
    show_pictures,
    table,
)
from timing import code_identity, compare, conclude, timing_table, verdict

from cortexlang.frontend.check import load_program
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.ir import loops as loop_ir
from cortexlang.ir.loop_walk import statements
from cortexlang.ir.recursive import SOURCE_KINDS
from cortexlang.passes.pipeline import (
    PIPELINE,
    Options,
    Recorder,
    format_ir,
    run_pipeline,
)
from cortexlang.passes.plan_kernels import DeviceLimits
from cortexlang.runtime.execute import device_limits
from cortexlang.runtime.linearize import linearize

OUT = out_dir("lesson4")
data = load_trees(limit=10)
trees = data.structures
MODELS = REPO / "tutorials" / "models"

# %% [markdown]
# ## 1. The pipeline is a list
#
# `cortexlang.passes.pipeline.PIPELINE` is the list the compiler walks. Each step names the
# `Options` field that switches it (None: a stage that always runs). `emit_opencl` prints
# the kernels as OpenCL C (lesson 5); `build_executable`, the last step, gathers what the
# runtime runs.

# %%
print(table(["step", "produces", "switched by", "what it does"],
            [(step.name, step.stage, step.option or "-", step.summary) for step in PIPELINE]))
print("\nOptions.names():", ", ".join(Options.names()))

# %% [markdown]
# `cortexlang compile --print-after STEP` prints the program right after one step,
# `--print-changed` after every step that changed it, and `cortexlang viz MODEL --stage STEP`
# draws it. In Python, a `Recorder` instrument keeps every step's program, time and whether it
# changed. We use it to print *diffs*: the lines a pass removed (`-`) and added (`+`).

# %%
def recorded(program, options=None):
    recorder = Recorder()
    run_pipeline(program, options or Options(), instruments=[recorder])
    return recorder.records


def show_pass(records, step, max_lines=45):
    """The diff of the recursive program made by `step`, from the recorded pipeline."""
    names = [record.step for record in records]
    at = names.index(step)
    before = format_ir(records[at - 1].stage, records[at - 1].ir).splitlines()
    after = format_ir(records[at].stage, records[at].ir).splitlines()
    diff = list(difflib.unified_diff(before, after, lineterm="", n=0))[2:]
    print(f"--- {step}: {len(diff)} diff lines ---")
    print("\n".join(diff[:max_lines]))
    if len(diff) > max_lines:
        print(f"... ({len(diff) - max_lines} more)")


def computed(rule):
    return sum(op.kind not in SOURCE_KINDS for op in rule.ops)

# %% [markdown]
# ## 2. Leaf specialisation and constant folding
#
# `examples/childsum_treelstm.cx` has no leaf rule: leaves run the internal rule with no
# children, where every child state reads as zero. Without specialisation every node runs one
# rule with a branch on `isleaf(n)`; leaves pay for the child products they multiply by zero.
# `specialize_leaves` derives a separate leaf rule (the linearizer already puts leaves in
# their own batch), and `fold_constants` removes everything that became zero.

# %%
childsum = load_program(str(EXAMPLES / "childsum_treelstm.cx"), {"H": 8})
records = recorded(childsum)
by_step = {record.step: record for record in records}
for step in ("to_recursive", "specialize_leaves", "fold_constants"):
    program = by_step[step].ir
    print(f"after {step:<18} leaf rule {computed(program.leaf):>3} operators, internal rule "
          f"{computed(program.internal):>3}, specialised: {program.specialized}")
show_pass(records, "fold_constants", max_lines=25)

# %% [markdown]
# Specialisation also knows something about the internal rule: it runs only at nodes with
# children, so `isleaf(n)` (`num_children(n) == 0`) is false there. ChildSumTreeLSTM adds
# `W_iou @ Emb[word(n)] if isleaf(n) else zeros(3H)` at every node; after specialisation the
# internal rule's branch picks `zeros(3H)`, and folding removes the word's product from it:

# %%
for step in ("to_recursive", "fold_constants"):
    kinds = {op.kind for op in by_step[step].ir.internal.ops}
    print(f"internal rule after {step:<15} looks up a word: {'lookup' in kinds}, "
          f"selects on isleaf: {'select' in kinds}")

# %% [markdown]
# The same two passes as pictures: each operator a box, the recursion edges (child states)
# marked. In a notebook they appear below; from a script, open the SVGs, or `index.html` in
# the folder, which shows each view beside its text and the diff from the view before.

# %%
cortexlang("viz", EXAMPLES / "childsum_treelstm.cx", "-D", "H=8", "--stage", "recursive",
           "--stage", "specialize_leaves", "--stage", "fold_constants",
           "--stage", "refactor_recursion", "--no-run", "-o", OUT / "viz_childsum")
show_pictures(OUT / "viz_childsum", "specialize_leaves", "fold_constants")

# %% [markdown]
# ## 3. Recursive refactoring
#
# TreeFC's internal node computes `W @ (h_left + h_right)`. Since `W (a + b) = W a + W b`,
# each child can compute `W @ h` at the end of its own step, as a new state `h_W`; the parent
# only adds. The product moves to the child, where it runs in the same kernel, on the state
# the child has just computed, and the parent's step loses its product. Here is the pass's
# diff on TreeFC:

# %%
treefc = load_program(str(EXAMPLES / "treefc.cx"), {"H": 8})
show_pass(recorded(treefc), "refactor_recursion")

# %% [markdown]
# In numpy, over the linearizer's batches (lesson 3), the two programs differ in where the
# product runs. Before: each internal batch multiplies the sum of its children's states.
# After: every batch, leaves included, also stores `h_W = h @ W.T` for its own nodes, and
# an internal batch adds its children's `h_W` rows. The results agree with the interpreter;
# the refactored program does one product per node instead of one per internal node, and
# the parent's step has no product left.

# %%
treefc_weights = {name: value.astype("float64") for name, value
                  in init_weights(treefc.params, seed=0).items()}
batches = linearize(trees, max_children=2)
emb, w, b = treefc_weights["Emb"], treefc_weights["W"], treefc_weights["b"]


def treefc_levels(linearized, refactored):
    """TreeFC's states in new ids, one numpy step per batch."""
    h = np.zeros((linearized.num_nodes, w.shape[0]))
    h_w = np.zeros_like(h)
    for start, count in zip(linearized.batch_start, linearized.batch_len, strict=True):
        rows = slice(int(start), int(start + count))
        if start < linearized.num_leaves:
            h[rows] = emb[linearized.words[rows]]
        else:
            left, right = linearized.children[rows, 0], linearized.children[rows, 1]
            if refactored:
                h[rows] = np.tanh(h_w[left] + h_w[right] + b)
            else:
                h[rows] = np.tanh((h[left] + h[right]) @ w.T + b)
        if refactored:
            h_w[rows] = h[rows] @ w.T          # the product, at the end of the node's step
    return h


reference = interpret(treefc, trees, treefc_weights, dtype=np.float64).states["h"]
for refactored in (False, True):
    states = treefc_levels(batches, refactored)[batches.new_id]
    print(f"{'refactored' if refactored else 'as written':>10}: largest difference from the "
          f"interpreter {np.abs(states - reference).max():.1e}")

# %% [markdown]
# The pass is legal only for a *parameter* times a *sum* of child states: every child then
# multiplies by the same matrix. In `U @ concat(h_left, h_right)` the left child meets the
# left half of U and the right child the right half; a child would have to know which child
# it is, so the pass leaves such products alone (it returns the program as it was) and says why.
#
# ### Exercise 4.1: where does refactoring apply?
#
# Read the internal rules of `examples/treefc.cx`, `treelstm.cx`, `treegru.cx`,
# `childsum_treelstm.cx`, `mvrnn.cx`, `dagrnn.cx` and `lstm_sequence.cx`, and predict for
# each whether `refactor_recursion` changes it. Return a dict from the file's stem
# (`"treefc"`, ...) to True or False. Predict first, then run the check: it compiles each
# model and shows the pass's note for every wrong prediction.

# %%
@exercise("4.1")
def predict_refactoring():
    """{model: whether refactor_recursion applies} for the seven example models."""
    raise NotImplementedError


check_exercise_4_1(predict_refactoring)

# %% [markdown]
# ## 4. Hoisting
#
# An operator that reads only constants, parameters and other such operators computes the
# same value at every node. `hoist_invariants` moves it into the program's `uniforms`,
# computed once when the weights are bound (a compile-time product, not a per-input one).
# `tutorials/models/treefc_projected_bias.cx` projects its bias, `P @ b`, at every internal
# node; `treelstm_learned_leaf.cx` starts every leaf from a learned vector `h0`, so its whole
# leaf rule depends on no node.

# %%
projected = load_program(str(MODELS / "treefc_projected_bias.cx"), {"H": 8})
show_pass(recorded(projected), "hoist_invariants")
learned = load_program(str(MODELS / "treelstm_learned_leaf.cx"), {"H": 8})
show_pass(recorded(learned), "hoist_invariants", max_lines=30)

# %% [markdown]
# ### Exercise 4.2: find the node-independent operators
#
# Write the heart of hoisting: given a rule of the recursive program (`rule.ops` in
# dependence order: an operator's operands come before it), return the set of names of the
# *computed* operators (kind not in `SOURCE_KINDS`) that depend on no node. An operator is
# node-independent when every operand is a node-independent source (its kind is in
# `cortexlang.ir.recursive.NODE_INDEPENDENT_SOURCES`) or a node-independent computed
# operator. The check compares your set with what the pass moves, rule by rule, on four
# models.

# %%
@exercise("4.2")
def node_independent_ops(rule):
    """The names of the computed operators of `rule` that depend on no node."""
    raise NotImplementedError


check_exercise_4_2(node_independent_ops, hoisting_programs())

# %% [markdown]
# ## 5. Unrolling
#
# The paper's *recursive unrolling* computes a node together with its children in one step,
# so that the children's states need not be stored and loaded again; cortexlang's pass for it,
# `unroll_recursion`, is the last part of this section. The `unroll_dot_products` step is a
# different, smaller transformation on the kernel IR: it
# unrolls a dot product's loop over k by 4, with vector loads, where a work-item computes one
# unit at a time and the loads are contiguous in k. On a CPU the planner gives each work-item
# a whole vector of units instead, and the vector models read their weights transposed
# (contiguous in the unit, not in k), so whether `unroll_dot_products` has anything to do
# depends on the model and the device. Measure it: the number of OpenCL lines that change
# when `unroll_dot_products` is switched off, per example model, for this device's plan and
# for a GPU-style plan. (Lesson 5's multi-accumulator loops are the `split_dot_chains` step,
# after this one: it leaves the products that step along k by 4 as they are; the padded
# counters are `plan_kernels`'.)

# %%
def opencl(program, options, limits):
    return run_pipeline(program, options, limits).source


def changed_lines(program, limits):
    unrolled = opencl(program, Options(), limits).splitlines()
    rolled = opencl(program, Options().without("unroll_dot_products"), limits).splitlines()
    return [line for line in difflib.unified_diff(rolled, unrolled, lineterm="", n=0)
            if line[:1] in "+-" and line[:3] not in ("+++", "---")]


limits_here = device_limits(device())
plans = {"this device": limits_here, "GPU-style": DeviceLimits(is_gpu=True)}
unroll_rows, biggest = [], (0, None)
for model_name in ("treefc", "treelstm", "treegru", "mvrnn", "dagrnn"):
    program = load_program(str(EXAMPLES / f"{model_name}.cx"), {"H": 16})
    counts = []
    for label, limits in plans.items():
        lines = changed_lines(program, limits)
        counts.append(len(lines))
        if len(lines) > biggest[0]:
            biggest = (len(lines), (model_name, label, lines))
    unroll_rows.append((model_name, *counts))
print(table(["model", *(f"lines changed, {label} plan" for label in plans)], unroll_rows))
if biggest[1] is not None:
    model_name, label, lines = biggest[1]
    print(f"\nthe largest change: {model_name}, {label} plan ('-' rolled, '+' unrolled):")
    print("\n".join(lines[:14]))

# %% [markdown]
# ### Recursive unrolling (`unroll_recursion`, off by default)
#
# One step of the level schedule is one height, and a barrier (a launch on the per-level
# plan, a counter on the cooperative one) ends each step. `unroll_recursion` makes a step
# cover two heights: a node of odd height whose one parent is one height higher is computed
# by its parent's work-item, just before the parent, so no barrier separates them; every
# other node runs alone in the step of its height rounded up to even. The pass does not change
# the rules: it records the schedule in the recursive program, the loop IR then loops over
# each batch's *groups* (the inlined children, then their parent) and the linearizer numbers
# every group as a contiguous range of ids. On our ten trees, with the per-level plan (one
# launch per batch and phase):

# %%
treefc16 = load_program(str(EXAMPLES / "treefc.cx"), {"H": 16})
treefc16_weights = init_weights(treefc16.params, seed=0)
step_rows, roots = [], {}
for unrolled in (False, True):
    model = compile_model(treefc16, Options(fuse_levels=False, unroll_recursion=unrolled),
                          treefc16_weights)
    roots[unrolled] = model.run(trees).outputs["h"]
    step_rows.append(("two heights per step" if unrolled else "one height per step",
                      model.linearize(trees).num_batches, model.last_launches))
print(table(["schedule", "batches", "launches per run"], step_rows))
print(f"largest difference of the root states: {np.abs(roots[True] - roots[False]).max():.1e}")
schedule = format_ir("recursive", run_pipeline(treefc16, Options(unroll_recursion=True),
                                               stop_after="unroll_recursion"))
print("\n".join(line for line in schedule.splitlines() if line.startswith("unroll:")))

# %% [markdown]
# The price: a work-item computes every unit of its group by itself, so an unrolled step has
# as many tasks as groups, where a plain step has groups times blocks of units spread over
# the cores. That is why the option is off by default; the README gives its measured cost
# (the bench's ablation has a `+unroll_recursion` row). A DAG is not unrolled: a node with
# two parents cannot run in both their steps.

# %% [markdown]
# ## 6. Measuring each pass
#
# Every optimisation can be switched off alone (`--disable NAME` on the command line,
# `Options().without(NAME)` in Python). For ChildSumTreeLSTM on our trees, this table shows,
# for each one switched off, what it changes at every level of the lowering: computed
# operators in the recursive program, fused phases in the loop IR, kernels and launches per
# run (a `-` means the same as with everything on), then the time per batch from the
# course's timer. A row whose generated code is identical to everything on says
# `same code`: its timing differs only by noise. The others are called faster or slower
# only where the 95% interval of their time over everything on's (round by round) lies more
# than 20% from 1; `no clear difference` otherwise.

# %%
weights = init_weights(childsum.params, seed=0)


def structure_columns(model):
    program = model.result
    phases = sum(isinstance(statement, loop_ir.Phase)
                 for statement in statements(program.loops.body))
    model.run(trees)
    return (computed(program.recursive.leaf) + computed(program.recursive.internal), phases,
            len(program.kernels.kernels), model.last_launches)


ablation = {"everything on": Options()}
ablation.update({f"without {name}": Options().without(name) for name in Options.names()
                 if getattr(Options(), name)})
ablation.update({f"with {name}": Options().with_enabled(name) for name in Options.names()
                 if not getattr(Options(), name)})
ablation_models = {label: compile_model(childsum, options, weights)
                   for label, options in ablation.items()}
columns = {label: structure_columns(model) for label, model in ablation_models.items()}
baseline = columns["everything on"]
shown = {label: tuple(value if value != reference or label == "everything on" else "-"
                      for value, reference in zip(values, baseline, strict=True))
         for label, values in columns.items()}
ablation_timings = compare(
    {label: (lambda model=model: model.run(trees)) for label, model in ablation_models.items()},
    budget_s=4.0, codes={label: code_identity(model)
                         for label, model in ablation_models.items()})
print(timing_table(ablation_timings, "everything on",
                   columns=("operators", "phases", "kernels", "launches"), values=shown))

# %% [markdown]
# Read the columns separately: a pass that removes operators may not change the launches
# (they were fused anyway), and a pass that changes nothing on a CPU may matter on a GPU.
# Refactoring is an example of the first kind: with it, the recursive program has fewer
# operators, but the loop IR has more phases (the child's product needs the child's whole
# state first, so it is a phase of its own). What the timings say:

# %%
verdicts = {label: verdict(row, ablation_timings["everything on"])
            for label, row in ablation_timings.items() if label != "everything on"}
for kind in ("same code", "slower", "faster", "no clear difference"):
    labels = [label.removeprefix("without ") for label, found in verdicts.items()
              if found.kind == kind]
    conclude(f"{kind:>18}: {', '.join(labels) if labels else '(none)'}")
print("(slower without a pass: the pass helps on this machine, at this size; a `with NAME` "
      "row is the pass switched on, so slower there means it costs)")

# %% [markdown]
# ### Exercise 4.3: operators removed by each pass
#
# A `Recorder`'s records are in pipeline order; each has `step`, `stage`, `ir` and
# `changed`. For every record whose stage and whose predecessor's stage are both
# `"recursive"`, return how many computed operators (leaf rule plus internal rule) the step
# removed: the count before minus the count after (negative if it added some). Return a dict
# from step name to that number.

# %%
@exercise("4.3")
def operators_removed(records):
    """{step: computed operators before - after} for the passes on the recursive program."""
    raise NotImplementedError


check_exercise_4_3(operators_removed, childsum)
try:
    print("ChildSumTreeLSTM, operators removed per pass:", operators_removed(records))
except NotImplementedError:
    pass

# %% [markdown]
# ## What you learned
#
# - Each pass is a function from program to program, switchable on its own; a `Recorder`, the
#   command line's `--print-after`/`--print-changed` and `cortexlang viz` show each one.
# - Specialisation and folding remove the dead half of a derived leaf; refactoring moves a
#   shared product into the child's step when every child multiplies by the same matrix;
#   hoisting computes node-independent work once.
# - An optimisation's effect must be measured at every level: operators, phases, kernels,
#   launches, time.
#
# Next, lesson 5: the kernels themselves.

# %%
summary()

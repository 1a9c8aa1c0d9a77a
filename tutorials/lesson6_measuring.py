# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Lesson 6: measuring
#
# The paper's claim is a latency claim: up to 14x lower inference latency than frameworks on
# recursive models. A latency claim is only as good as its measurement. In this lesson you
#
# 1. write a timer that can be trusted (exercise 6.1),
# 2. measure cortexlang against baselines that compute the same numbers, and switch its
#    optimisations off one at a time (an ablation table),
# 3. answer a small research question with numbers from *this* machine (exercise 6.2),
# 4. report the linearizer's cost on its own, as the paper's protocol asks (exercise 6.3).
#
# The protocol (see the paper): the same model equations and FLOPs in every implementation,
# weights uniform in about +-0.1, batches of 1 and 10 trees, warm-up runs, then timed runs,
# the median latency per batch, and linearization reported apart. The sizes here are small so
# that the lesson runs in seconds; `make bench` runs the full benchmark.

# %%
import os
import subprocess
import sys
import tempfile
from dataclasses import replace

import numpy as np
from checks import (
    check_exercise_6_1,
    check_exercise_6_2,
    check_exercise_6_3,
    crossover_reference,
    exercise,
    summary,
)
from common import (
    EXAMPLES,
    REPO,
    command_exists,
    compile_model,
    device,
    load_trees,
    out_dir,
)
from timing import code_identity, compare, conclude, timing_table, verdict

from cortexlang.frontend.check import load_program
from cortexlang.inputs.weights import init_weights
from cortexlang.interp import interpret
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.runtime.execute import device_limits

sys.path.insert(0, str(REPO))  # the baselines live in the checkout's benchmarks/ folder
from benchmarks.baselines import TITLES, make_baseline  # noqa: E402

OUT = out_dir("lesson6")
data = load_trees(limit=20)
trees = data.structures

# %% [markdown]
# ## 1. A timer
#
# Three things go wrong when timing a short computation:
#
# - the **first call** is not typical: it builds kernels, fills caches, allocates buffers;
# - single samples are **noisy**: another process, a garbage collection, a frequency change;
# - asynchronous work is **not finished** when the call returns (cortexlang's `run` waits
#   for its queue before returning, so it is safe to time from Python).
#
# ### Exercise 6.1: `median_ms`
#
# Call `fn()` `warmup` times without timing, then `repeats` times, timing each call on its own
# with `time.perf_counter()`; return the median of those samples in milliseconds. Switching the
# garbage collector off while timing (`gc.disable()`, then back on) is good practice.

# %%
@exercise("6.1")
def median_ms(fn, warmup, repeats):
    """The median milliseconds of `repeats` timed calls of `fn` after `warmup` calls."""
    raise NotImplementedError


check_exercise_6_1(median_ms)

# %% [markdown]
# The rest of this lesson times with the course's `timing.compare` (`tutorials/timing.py`),
# which does what your timer does and three things more. It *interleaves* the
# configurations it compares, one call of each per round, so that a burst of load from
# another process lands on all of them rather than on one row. It keeps every sample (at
# least 20 per row, more of the fast ones) and prints the 10th percentile, the median and the
# 90th percentile. It compares two rows *round by round*: in each round their calls ran
# back to back, so the row's time over the other's in that round is free of the load that
# changes between rounds. From the median of these ratios and its 95% confidence interval
# (two order statistics of the ratios, whatever their distribution) it calls one row faster
# than another only when the whole interval lies more than 20% below 1, and otherwise says
# `no clear difference` (within 20%, or too noisy to place beyond it: the interval tells
# which). And it
# marks rows that run byte-identical code as `same code`: the difference between those is
# pure noise. (Why the margin? Without it, a 5% difference can be `faster` on a quiet machine
# and not on a busy one. Why rounds, and not whether the rows' own p10-p90
# ranges overlap? On a busy machine every row gets a tail of slow samples from other
# processes, and that tail alone can make the ranges of a 4x difference overlap. Why the
# interval of the median? A difference of about 20% then reads `no clear difference` run
# after run, instead of falling on either side of the margin. Each way, the conclusion would
# otherwise flip from one run to the next.)

# %% [markdown]
# Why the warm-up matters: the first run of a freshly compiled model (TreeFC, the smallest,
# so that its build is quick) against the next ones.
# "Freshly" needs care: cortexlang keeps built kernels in a cache on disk
# (`$CORTEXLANG_CACHE_DIR`, by default `~/.cache/cortexlang/kernels`) and PoCL keeps its own
# (`~/.cache/pocl/kcache`, switched off by `POCL_KERNEL_CACHE=0`), so a model this machine
# has built before starts warm, and a second run of this lesson would show nothing. The cell
# below runs the measurement in a new Python process with an empty cache folder and PoCL's
# cache off: a truly cold start, however often you run it.

# %%
COLD_START = """
import sys, time
sys.path.insert(0, "tutorials")
from common import compile_model, load_trees
from cortexlang.frontend.check import load_program
from cortexlang.inputs.weights import init_weights
from cortexlang.passes.pipeline import Options
trees = load_trees(limit=20).structures
program = load_program("examples/treefc.cx", {"H": 8, "V": int(sys.argv[1])})
weights = init_weights(program.params, seed=0)
started = time.perf_counter()
model = compile_model(program, Options(), weights)
built = time.perf_counter()
model.run(trees)
first = time.perf_counter()
warm = []
for _ in range(20):
    before = time.perf_counter()
    model.run(trees)
    warm.append(time.perf_counter() - before)
warm.sort()
print("RESULT", built - started, first - built, warm[len(warm) // 2], model.cache_hit)
"""
with tempfile.TemporaryDirectory() as empty_cache:
    cold = subprocess.run([sys.executable, "-c", COLD_START, str(len(data.vocab))],
                          cwd=REPO, capture_output=True, text=True, check=True,
                          env={**os.environ, "CORTEXLANG_CACHE_DIR": empty_cache,
                               "POCL_KERNEL_CACHE": "0"})
line = next(line for line in cold.stdout.splitlines() if line.startswith("RESULT"))
build_s, first_s, warm_s, cache_hit = line.split()[1:]
print(f"build {float(build_s) * 1e3:.0f} ms (cache hit: {cache_hit}), first run "
      f"{float(first_s) * 1e3:.1f} ms, median of 20 warm runs {float(warm_s) * 1e3:.3f} ms: "
      f"the first run is {float(first_s) / float(warm_s):.0f}x a warm one")

# %%
SIZES = {"H": 8, "V": len(data.vocab)}
treelstm = load_program(str(EXAMPLES / "treelstm.cx"), SIZES)
weights = init_weights(treelstm.params, seed=0)

# %% [markdown]
# ## 2. The benchmark: the same numbers, three ways
#
# The baselines in `benchmarks/baselines/` implement the paper's five models directly in numpy
# (node by node) and, where installed, PyTorch (eager, node by node; and batched by level).
# They take the same weights as our `.cx` models. Before timing anything, check that they
# compute the same thing: a benchmark between different computations means nothing.

# %%
batches = {"1 tree": trees[:1], "10 trees": trees[:10]}
reference = interpret(treelstm, batches["10 trees"], weights)
implementations = {}
for implementation in ("numpy_nodes", "torch_eager"):
    try:
        baseline = make_baseline(implementation, "treelstm", weights, SIZES["H"])
    except ImportError as missing:
        print(f"{TITLES[implementation]}: not installed ({missing.name}); `make bench` "
              "installs it")
        continue
    roots = baseline(batches["10 trees"])["h"]
    difference = float(np.abs(np.asarray(roots) - reference.outputs["h"]).max())
    print(f"{TITLES[implementation]}: largest difference from the interpreter {difference:.1e}")
    implementations[TITLES[implementation]] = baseline

# %% [markdown]
# Now the latency per batch, for a batch of 1 tree and of 10 trees. The baselines' host-side
# preparation (their own ordering of the nodes) is done once, outside the timing, as
# `benchmarks/run_baselines.py` does; cortexlang's `run` includes its linearization, which
# section 5 measures on its own.

# %%
compiled = compile_model(treelstm, Options(), weights)


def timed_calls(batch):
    """{implementation: a call of no arguments that runs `batch`}."""
    calls = {"cortexlang interpreter": lambda: interpret(treelstm, batch, weights)}
    for title, baseline in implementations.items():
        prepared = baseline.prepare(batch)  # the baseline's host work, outside the timing
        calls[title] = lambda baseline=baseline, prepared=prepared: baseline.run(prepared)
    calls["cortexlang compiled (-O3)"] = lambda: compiled.run(batch, states=False)
    return calls


latencies = {name: compare(timed_calls(batch), budget_s=2.0)
             for name, batch in batches.items()}
for name, timings in latencies.items():
    print(f"batch of {name}:")
    print(timing_table(timings, "cortexlang compiled (-O3)", first="implementation"))
    print()
compiled_10 = latencies["10 trees"]["cortexlang compiled (-O3)"]
for title, row in latencies["10 trees"].items():
    if title != "cortexlang compiled (-O3)":
        conclude(f"10 trees, {title} against cortexlang compiled: {verdict(row, compiled_10)}",
                 stable=f"{title}: {verdict(row, compiled_10).kind}")

# %% [markdown]
# ## 3. The ablation table
#
# Which optimisation buys what? Switch each one off alone and compare with everything on;
# the `-O` levels add them in groups. The last column compares each row with everything on:
# `same code` where the generated code is identical (any difference is noise), `slower` or
# `faster` where the interval of the ratio lies more than 20% from 1, and otherwise `no clear
# difference`.
# `slower` without an optimisation means it was helping. (`cortexlang bench`, where your
# checkout has it, produces this table for every model.)

# %%
configurations = {"-O3 (everything)": Options(), "-O2": Options.level(2),
                  "-O1": Options.level(1), "-O0 (nothing)": Options.level(0)}
configurations.update({f"without {name}": Options().without(name)
                       for name in Options.names() if getattr(Options(), name)})
configurations.update({f"with {name}": Options().with_enabled(name)
                       for name in Options.names() if not getattr(Options(), name)})
ablation_models = {name: compile_model(treelstm, options, weights)
                   for name, options in configurations.items()}
ablation = compare({name: (lambda model=model: model.run(batches["10 trees"], states=False))
                    for name, model in ablation_models.items()}, budget_s=4.0,
                   codes={name: code_identity(model) for name, model in ablation_models.items()})
for model in ablation_models.values():
    model.run(batches["10 trees"], states=False)
print(timing_table(ablation, "-O3 (everything)", columns=("launches",),
                   values={name: (model.last_launches,)
                           for name, model in ablation_models.items()}))
helping = [name.removeprefix("without ") for name, row in ablation.items()
           if name.startswith("without ")
           and verdict(row, ablation["-O3 (everything)"]).kind == "slower"]
print()
conclude("optimisations whose absence is slower beyond the noise, on this machine and size: "
         + (", ".join(helping) if helping else "none"))
print("bench command in this checkout:", "yes: try `cortexlang bench --quick`"
      if command_exists("bench") else "not yet (the table above is this lesson's own)")

# %% [markdown]
# ## 4. A research question
#
# *At which hidden size does launching every batch on its own, across all the cores, beat
# running every batch in one launch on one core, on this machine?*
#
# The two ends of the trade-off:
#
# - **one group**: every batch in one launch of one work-group, looping over the batches
#   inside the kernel. One launch per run, but one compute unit does all the work.
# - **level** (`fuse_levels` off): one launch per batch and phase, each free to use the whole
#   device, each paying the cost of a launch.
#
# The default tries to have both (lesson 5). On a CPU it is *cooperative*: one launch per run
# of one work-group per compute unit, the groups sharing each batch's tasks and waiting for
# each other at a counter between batches, which costs an atomic operation per task and a
# wait per batch and phase. (On a GPU the default is *hybrid*: per-level launches for wide
# batches, one persistent work-group for the narrow rest.) To get the one-group plan we
# change the planner's view of the device, not the compiler: on a CPU we tell it there is
# one compute unit, so the cooperative kernel has one work-group; on a GPU we tell it there
# are so many that every batch counts as narrow. Small models are dominated by launch costs,
# large ones by arithmetic. Where is the crossover? Measure at growing hidden sizes, on
# batches of 10 trees, with the default alongside.

# %%
limits = device_limits(device())
one_group = replace(limits, compute_units=(1 << 20) if limits.is_gpu else 1)
default = run_pipeline(treelstm, Options(), limits).kernels.strategy
strategies = {"one group": (Options(), one_group),
              "level": (Options().without("fuse_levels"), None),
              f"{default} (default)": (Options(), None)}
measured = {}
launches = {}
for hidden in (8, 32, 128):
    program = load_program(str(EXAMPLES / "treelstm.cx"), {**SIZES, "H": hidden})
    hidden_weights = init_weights(program.params, seed=0)
    models = {strategy: compile_model(program, options, hidden_weights, planner_view)
              for strategy, (options, planner_view) in strategies.items()}
    measured[hidden] = compare(
        {strategy: (lambda model=model: model.run(batches["10 trees"], states=False))
         for strategy, model in models.items()}, budget_s=2.0)
    for strategy, model in models.items():
        groups = max(kernel.groups for kernel in model.result.kernels.kernels)
        launches[strategy] = f"{model.result.kernels.strategy} plan, " + (
            f"1 launch of {groups} work-group{'s' if groups > 1 else ''}"
            if model.last_launches == 1 else f"{model.last_launches} launches")
for hidden, timings in measured.items():
    print(f"H = {hidden}:")
    print(timing_table(timings, "one group", first="strategy"))
print("per batch of 10 trees:")
for strategy, plan in launches.items():
    print(f"  {strategy}: {plan}")
with open(OUT / "crossover.csv", "w") as csv:
    csv.write("hidden,strategy,p10_ms,median_ms,p90_ms\n")
    for hidden, timings in measured.items():
        for strategy, row in timings.items():
            csv.write(f"{hidden},{strategy},{row.p10:.4f},{row.median:.4f},{row.p90:.4f}\n")
print(f"written: {OUT / 'crossover.csv'}")

# %% [markdown]
# ### Exercise 6.2: the answer, as a function of the data
#
# Given measurements `{H: {"one group": timing, "level": timing, ...}}` (the `Timing`s of
# `compare`), return the smallest H from which on the level strategy is faster than one group
# *beyond the noise*, by the course's verdict: `verdict(level, one_group).kind == "faster"`,
# at that H and at every larger H measured (a small size where it happens to win, followed by
# sizes where it loses, is not a crossover; nor is a lower median inside the noise). Return
# None if it is not clearly faster at the largest size: on a busy machine that is an honest
# answer. Run the cell
# again and see how much the numbers move. Is the default faster than both, at every size? Where it
# is not, which of its costs (claims, waits, one group per core on batches of one or two nodes)
# would explain it? Going further: add H = 256 and 512 (the paper's sizes) and a batch of 1 tree,
# and explain the change with the number of cores in `cortexlang devices`.

# %%
@exercise("6.2")
def crossover(results):
    """The smallest H from which on "level" beats "one group", or None."""
    raise NotImplementedError


check_exercise_6_2(crossover, measured)
answer = crossover_reference(measured)   # the course's own answer, whatever yours says
conclude("research question: the level strategy beats one work-group beyond the noise "
         + (f"from H = {answer} on" if answer is not None else
            f"at none of the sizes measured (H = {', '.join(map(str, measured))})"))

# %% [markdown]
# ## 5. The linearizer's share
#
# Each run's `Outputs.timings` splits the host's time: `linearize` (the linearizer alone),
# `prepare` (linearizing and uploading the arrays, which includes `linearize`) and `compute`
# (the kernels and reading back). The paper reports linearization separately because it is
# paid on every input, however fast the kernels become. (To time a run without it, linearize
# first and call `model.run_linearized(model.linearize(trees))`: its timings still report
# the linearizer's time, measured when it ran, in `linearize` and `prepare`.)
#
# ### Exercise 6.3
#
# Return the fraction of a run's time (`prepare` + `compute`) spent in `linearize`.

# %%
@exercise("6.3")
def linearize_share(outputs):
    """timings["linearize"] as a fraction of prepare + compute."""
    raise NotImplementedError


runs = [compiled.run(batch, states=False) for batch in (trees[:1], trees[:10], trees)]
check_exercise_6_3(linearize_share, runs)
for batch_name, result in zip(("1 tree", "10 trees", f"{len(trees)} trees"), runs,
                              strict=True):
    shares = {phase: f"{seconds * 1e3:.3f} ms" for phase, seconds in result.timings.items()}
    print(f"{batch_name:>9}: {shares}")

# %% [markdown]
# ## What you learned
#
# - Time after warm-up, one sample per call, configurations interleaved, and report the
#   median with its spread (p10-p90); call a difference only where it is clear: well beyond a
#   margin, and in (nearly) every round of an interleaved comparison.
# - A first run is cold only if every cache is empty: cortexlang's and the driver's.
# - Compare implementations only after checking they compute the same numbers.
# - An ablation shows which optimisation buys what *on this machine*; a research question is
#   answered by a measurement, a function of the data, and an honest look at the noise.
#
# That is the course. The reference for everything is `docs/language.md`, `cortexlang
# --help`, and the code: every pass is a small module in `cortexlang/passes/`.

# %%
summary()

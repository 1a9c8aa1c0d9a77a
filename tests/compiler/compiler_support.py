"""Shared helpers of the compiler tests: small examples, inputs by shape class, comparison.

The differential tests compare the compiled model with the reference interpreter, both in
float32. The tolerance, elementwise:

    |compiled - reference| <= RELATIVE_TOLERANCE * max(|reference|, FLOOR)

that is a relative error under 1e-4 for values of magnitude 0.01 and more, and an absolute
error under 1e-6 below that (a relative measure alone explodes near zero, where both sides
hold only rounding noise). The two sides differ only by the order of summation in dot
products and by the device's `exp`/`tanh`; float32 rounding is about 6e-8 per operation, so a
bug shows up as errors of 1e-2 or more, orders of magnitude above the bound. Non-finite
values must agree exactly (NaN with NaN, an infinity with the same infinity). The largest
error of every model is recorded and printed at the end of the session (conftest.py).
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cortexlang.frontend.check import check_source, load_program
from cortexlang.frontend.parse import parse_file
from cortexlang.inputs import generators
from cortexlang.inputs.structure import NO_WORD, Structure
from cortexlang.inputs.weights import init_weights
from cortexlang.ir.checked import CheckedProgram
from cortexlang.ir.recursive import RecursiveProgram, format_recursive
from cortexlang.ir.recursive_eval import run_recursive
from cortexlang.outputs import Outputs
from cortexlang.passes.pipeline import PIPELINE, CompileResult, Options, Verify, run_pipeline
from cortexlang.passes.plan_kernels import DeviceLimits

HERE = str(Path(__file__).resolve().parent)
REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLES = REPOSITORY / "examples"
EXAMPLE_NAMES = tuple(sorted(path.stem for path in EXAMPLES.glob("*.cx")))
# CI checks the repository out with shared/ beside it.
SST_TEST = REPOSITORY.parent / "shared" / "data" / "sst" / "test.txt"

RELATIVE_TOLERANCE = 1e-4
FLOOR = 1e-2
# At the declared sizes (H = 256) dot products are hundreds of terms long and rounding alone
# reaches about 1e-6 near zero: there the floor is 0.1 (an absolute error under 1e-5).
DECLARED_SIZE_FLOOR = 1e-1
# Small sizes for every size name an example may declare; only declared ones are overridden.
SMALL_SIZES = {"H": 8, "V": 64, "M": 4, "X": 8, "C": 5, "K": 3}
# The project's weights (about +-0.1) times 4 at the small sizes: activations of order one,
# where errors cannot hide under the floor, while every recursion still contracts (a gain
# below one per level), so rounding differences do not grow with depth. At the declared sizes
# that factor would make TreeFC's recursion expand (errors double per level): scale 1 there.
WEIGHT_SCALE = 4.0

# The largest error seen per model in this session: filled by `assert_close`, printed by the
# conftest's terminal summary.
MAX_ERRORS: dict[str, tuple[float, str]] = {}
# (what, outcome, seconds) of the long sweeps, printed at the end of the session.
SWEEP_STATS: list[tuple[str, str, float]] = []


# -- programs --------------------------------------------------------------------------------


# The switches the option sweeps cover (products, covering sets, samples, random programs):
# all but `unroll_recursion`, which is off by default and swept by test_unroll_recursion.py
# over its own small set, so that adding it did not double the products.
SWEPT = tuple(name for name in Options.names() if name != "unroll_recursion")


def example_path(name: str) -> Path:
    return EXAMPLES / f"{name}.cx"


@functools.cache
def declared_sizes(name: str) -> tuple[str, ...]:
    """The size names an example declares (only those may be overridden)."""
    return tuple(size.name for size in parse_file(example_path(name)).sizes)


@functools.cache
def declared_values(name: str) -> dict[str, int]:
    """The sizes of an example as written in its file."""
    return dict(load_program(str(example_path(name))).sizes)


def example_sizes(name: str, **sizes: int) -> dict[str, int]:
    """SMALL_SIZES restricted to what the example declares, then `sizes` on top."""
    chosen = {key: value for key, value in SMALL_SIZES.items() if key in declared_sizes(name)}
    chosen.update({key: value for key, value in sizes.items() if key in declared_sizes(name)})
    return chosen


@functools.cache
def _example(name: str, sizes: tuple[tuple[str, int], ...]) -> CheckedProgram:
    return load_program(str(example_path(name)), dict(sizes))


def small_example(name: str, **sizes: int) -> CheckedProgram:
    """An example checked with small sizes (SMALL_SIZES, overridden by `sizes`)."""
    return _example(name, tuple(sorted(example_sizes(name, **sizes).items())))


def program_from_source(source: str, name: str = "<test>") -> CheckedProgram:
    return check_source(source, name)


def vocabulary(program: CheckedProgram) -> int:
    """The word ids inputs may use: the size V where the model declares it, else 2."""
    return dict(program.sizes).get("V", 2)


def feature_width(program: CheckedProgram) -> int:
    widths = [item.shape[0] for item in program.inputs if item.kind == "vector"]
    return widths[0] if widths else 0


def weights_for(program: CheckedProgram, seed: int = 1,
                scale: float = WEIGHT_SCALE) -> dict[str, np.ndarray]:
    """The project's initial weights, scaled so that activations are of order one (the
    default range of about 0.1 keeps every state near zero, where errors hide)."""
    return {name: (value * scale).astype(np.float32)
            for name, value in init_weights(program.params, seed=seed).items()}


def compile_program(program: CheckedProgram, options: Options | None = None,
                    limits: DeviceLimits | None = None) -> CompileResult:
    """The whole pipeline with every stage's verifier run after every step (default Options
    and DeviceLimits unless given)."""
    return run_pipeline(program, options or Options(), limits or DeviceLimits(),
                        instruments=[Verify()])


def stage_before(program: CheckedProgram, step: str, options: Options | None = None,
                 limits: DeviceLimits | None = None) -> Any:
    """The IR that `step` receives in the pipeline with `options` (the checked program for
    the first step): the pipeline stopped after the last step that runs before it."""
    options = options or Options()
    names = [entry.name for entry in PIPELINE]
    earlier = [entry for entry in PIPELINE[:names.index(step)]
               if entry.option is None or getattr(options, entry.option)]
    if not earlier:
        return program
    return run_pipeline(program, options, limits or DeviceLimits(), instruments=[Verify()],
                        stop_after=earlier[-1].name)


def rule_text(program: RecursiveProgram, kind: str) -> str:
    """The printer's lines of one rule (`leaf`, `internal`, `heads`) or of the uniforms
    (`uniform`), up to the next section."""
    lines = format_recursive(program).splitlines()
    header = "uniform (computed once per weights):" if kind == "uniform" else f"rule {kind}(node):"
    start = lines.index(header)
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


def assert_same_meaning(program: CheckedProgram, before: RecursiveProgram,
                        after: RecursiveProgram, seeds: Iterable[int] = (0, 1, 2)) -> None:
    """`after` computes what `before` computes, and what the interpreter computes, on random
    batches of the program's structure kind (the recursive stage's numpy evaluator)."""
    from cortexlang.interp.interpreter import interpret

    for seed in seeds:
        structures = random_batch(program, 6, seed) + small_batch(program, seed)
        weights = weights_for(program, seed)
        reference = interpret(program, structures, weights)
        old = run_recursive(before, structures, weights)
        new = run_recursive(after, structures, weights)
        for label, outputs in (("before the pass", old), ("after the pass", new)):
            worst, where = max_error(outputs, reference)
            assert worst <= RELATIVE_TOLERANCE, (label, where)


# -- the run's seed and tier (set by tests/conftest.py) ----------------------------------------


def run_seed() -> int:
    """The seed of this test run (printed in the header; `pytest --seed N` repeats a run)."""
    return int(os.environ.get("CORTEXLANG_TEST_SEED", "0"))


def full_sweeps() -> bool:
    """Whether this run is the exhaustive tier (`pytest --all`, `make test-all`)."""
    return os.environ.get("CORTEXLANG_TEST_TIER") == "all"


def seeded(*parts: object) -> random.Random:
    """A generator drawn from the run's seed and `parts` (a test's own stream: adding a test
    does not change what the others draw)."""
    return random.Random(f"{run_seed()}/" + "/".join(map(str, parts)))


# -- option sets -----------------------------------------------------------------------------


Row = tuple[bool, ...]


def _combinations(row: Row, strength: int) -> set[tuple[tuple[int, bool], ...]]:
    return {tuple((index, row[index]) for index in chosen)
            for chosen in itertools.combinations(range(len(row)), strength)}


def covering_array(factors: int, strength: int, chooser: random.Random,
                   start: Sequence[Row] = (), candidates: int = 40) -> list[Row]:
    """Rows of on/off values of `factors` switches in which every `strength` switches take
    all their 2^strength combinations: `start` first, then greedily the best of `candidates`
    random rows (each built around one combination not covered yet). Different generators
    give different arrays, all covering."""
    rows = list(start)
    covered = set().union(*(_combinations(row, strength) for row in rows)) if rows else set()
    wanted = 2 ** strength * len(list(itertools.combinations(range(factors), strength)))
    while len(covered) < wanted:
        missing = sorted(set().union(*(
            {tuple(zip(chosen, values, strict=True))
             for values in itertools.product((False, True), repeat=strength)}
            for chosen in itertools.combinations(range(factors), strength))) - covered)
        best: Row | None = None
        best_gain = -1
        for _ in range(candidates):
            values = [chooser.random() < 0.5 for _ in range(factors)]
            for index, value in chooser.choice(missing):
                values[index] = value
            row = tuple(values)
            gain = len(_combinations(row, strength) - covered)
            if gain > best_gain:
                best, best_gain = row, gain
        assert best is not None
        rows.append(best)
        covered |= _combinations(best, strength)
    return rows


def covering_options(strength: int, chooser: random.Random,
                     names: Sequence[str] | None = None) -> list[Options]:
    """Option sets in which every `strength` of the switches `names` (default: all) take
    every on/off combination; all on and all off come first. Switches not named stay on."""
    names = tuple(names or SWEPT)
    rows = covering_array(len(names), strength, chooser,
                          start=[(True,) * len(names), (False,) * len(names)])
    return [Options().without(*(name for name, on in zip(names, row, strict=True) if not on))
            for row in rows]


def all_on() -> Options:
    return Options()


def all_off() -> Options:
    return Options().without(*Options.names())


def only(name: str) -> Options:
    return Options(**{**dict.fromkeys(Options.names(), False), name: True})


def option_label(options: Options) -> str:
    """A short, stable name for an option set (for test ids and messages)."""
    names = SWEPT
    enabled = set(options.enabled())
    disabled = [name for name in names if name not in enabled]
    if not disabled:
        label = "all-on"
    elif not enabled:
        label = "all-off"
    elif len(disabled) <= len(enabled):
        label = "without-" + "+".join(disabled)
    else:
        label = "only-" + "+".join(name for name in names if name in enabled)
    if options.unroll_recursion:
        label += "/unrolled"
    if options.node_tile != Options().node_tile:
        label += f"/tile{options.node_tile}"
    return label


def every_subset(node_tile: int = Options().node_tile) -> Iterable[Options]:
    """All 2^n subsets of the swept optimisations (`SWEPT`)."""
    names = SWEPT
    for bits in itertools.product((True, False), repeat=len(names)):
        yield Options(**dict(zip(names, bits, strict=True)), node_tile=node_tile)


def sampled_subsets(count: int, seed: int) -> list[Options]:
    """`count` subsets of `SWEPT` drawn with a fixed seed (the same ones on every run)."""
    names = SWEPT
    chooser = random.Random(seed)
    return [Options(**{name: chooser.random() < 0.5 for name in names}) for _ in range(count)]


def standard_option_sets(sample: int = 0, seed: int = 0,
                         covering: Sequence[Options] = ()) -> dict[str, tuple[Options, bool]]:
    """All on, all off, -O0 to -O3 and the `covering` sets (the default tier), then each
    optimisation off alone, each one on alone and a fixed sample of other subsets
    (exhaustive), by label: (options, exhaustive). Equal option sets appear once, under the
    first label (-O0 is all off, -O3 all on)."""
    sets: dict[str, tuple[Options, bool]] = {}

    def add(options: Options, exhaustive: bool, label: str | None = None) -> None:
        if all(options != known for known, _ in sets.values()):
            sets[label or option_label(options)] = (options, exhaustive)

    add(all_on(), False)
    add(all_off(), False)
    for level in range(4):
        add(Options.level(level), False, f"O{level}")
    for options in covering:
        add(options, False)
    for name in SWEPT:
        add(Options().without(name), True)
    for name in SWEPT:
        add(only(name), True)
    for options in sampled_subsets(sample, seed):
        add(options, True)
    return sets


# -- inputs ----------------------------------------------------------------------------------


def star(children: int, vocab_size: int, rng: int = 0) -> Structure:
    """A root over `children` leaves: the widest n-ary node."""
    rows = np.full((children + 1, children), -1, dtype=np.int32)
    rows[children] = np.arange(children, dtype=np.int32)
    words = np.full(children + 1, NO_WORD, dtype=np.int32)
    words[:children] = generators.zipf_words(children, rng, vocab_size)
    return Structure(children=rows, words=words, root=children, kind="tree")


def padded(structure: Structure, width: int) -> Structure:
    """The structure with its children array widened to `width` columns (-1 padding)."""
    extra = width - structure.children.shape[1]
    if extra <= 0:
        return structure
    children = np.hstack([structure.children,
                          np.full((structure.num_nodes, extra), -1, dtype=np.int32)])
    return Structure(children=children, words=structure.words, root=structure.root,
                     tokens=structure.tokens, labels=structure.labels,
                     features=structure.features, kind=structure.kind, meta=structure.meta)


def grid(rows: int, cols: int, width: int, seed: int) -> Structure:
    return generators.grid(rows, cols, width, rng=seed)


def shape_classes(program: CheckedProgram, seed: int = 0) -> dict[str, list[Structure]]:
    """The structure shapes a model of this kind can meet, by class name.

    Trees: a single leaf, a chain (unary nodes), complete (perfect) trees, left and right
    skewed trees, SST-like random trees; n-ary trees also wide stars and random n-ary trees.
    DAGs: grids 1x1, 1xC, Rx1 and RxC. Sequences: lengths 1 to 9.
    """
    kind = program.structure.kind
    vocab = vocabulary(program)
    if kind == "dag":
        width = feature_width(program)
        return {"grid-1x1": [grid(1, 1, width, seed)],
                "grid-1xC": [grid(1, 5, width, seed + 1)],
                "grid-Rx1": [grid(4, 1, width, seed + 2)],
                "grid-RxC": [grid(3, 4, width, seed + 3), grid(2, 2, width, seed + 4)]}
    if kind == "sequence":
        return {f"sequence-{length}": [generators.sequence(length, rng=seed + length,
                                                           vocab_size=vocab)]
                for length in (1, 2, 3, 9)} | {
            "sequences-1..9": [generators.sequence(length, rng=seed + 20 + length,
                                                   vocab_size=vocab)
                               for length in range(1, 10)]}
    width = program.structure.max_children
    classes = {
        "single-leaf": [generators.single_leaf(rng=seed, vocab_size=vocab)],
        "chain": [generators.chain(7, rng=seed, vocab_size=vocab)],
        "perfect": [generators.perfect_tree(height, rng=seed + height, vocab_size=vocab)
                    for height in (1, 3)],
        "skewed-left": [generators.skewed(7, "left", rng=seed, vocab_size=vocab)],
        "skewed-right": [generators.skewed(6, "right", rng=seed, vocab_size=vocab)],
        "sst-like": generators.sst_like_trees(5, rng=seed, vocab_size=vocab),
    }
    if kind == "tree":
        classes["wide"] = [star(width, vocab, seed), star(2, vocab, seed + 1)]
        classes["random-nary"] = [generators.random_nary_tree(width, rng=seed + extra,
                                                              leaves=9, vocab_size=vocab)
                                  for extra in range(3)]
    return {name: [padded(structure, width) for structure in structures]
            for name, structures in classes.items()}


def mixed_batch(program: CheckedProgram, seed: int = 0) -> list[Structure]:
    """One batch holding structures of every shape class, with enough of them that some
    batches are wider than a hybrid plan's threshold (16 nodes at node tile 4 on two compute
    units) and others narrower, so that both halves of the plan run."""
    batch: list[Structure] = []
    for name, structures in shape_classes(program, seed).items():
        if name.startswith("sequence-"):
            continue
        batch.extend(structures[:2])
    if program.structure.kind == "dag":
        batch += [grid(4, 4, feature_width(program), seed + 10 + extra) for extra in range(5)]
    if program.structure.kind == "sequence":
        batch += [generators.sequence(length, rng=seed + 40 + length,
                                      vocab_size=vocabulary(program))
                  for length in range(1, 17)]
    return batch


def small_batch(program: CheckedProgram, seed: int = 0) -> list[Structure]:
    """A few small structures covering leaves, unary and full nodes (for long sweeps). Trees:
    over 64 nodes with a leaf batch wider than 16, so that on two compute units a hybrid plan
    (node tile 4) launches its level kernels before the persistent one."""
    kind = program.structure.kind
    vocab = vocabulary(program)
    if kind == "dag":
        width = feature_width(program)
        return [grid(1, 1, width, seed), grid(2, 3, width, seed + 1)]
    if kind == "sequence":
        return [generators.sequence(length, rng=seed + length, vocab_size=vocab)
                for length in (1, 4)]
    width = program.structure.max_children
    batch = [generators.single_leaf(rng=seed, vocab_size=vocab),
             generators.chain(3, rng=seed, vocab_size=vocab),
             generators.skewed(4, "right", rng=seed, vocab_size=vocab),
             generators.skewed(4, "left", rng=seed + 1, vocab_size=vocab),
             generators.perfect_tree(3, rng=seed, vocab_size=vocab),
             generators.perfect_tree(4, rng=seed + 1, vocab_size=vocab)]
    if kind == "tree":
        batch.append(star(width, vocab, seed))
        batch.append(generators.random_nary_tree(width, rng=seed, leaves=6, vocab_size=vocab))
    return [padded(structure, width) for structure in batch]


def random_batch(program: CheckedProgram, count: int, seed: int) -> list[Structure]:
    """`count` random structures of the model's kind (SST-like trees, grids, sequences)."""
    kind = program.structure.kind
    vocab = vocabulary(program)
    rng = np.random.default_rng(seed)
    if kind == "dag":
        width = feature_width(program)
        return [grid(int(rng.integers(1, 6)), int(rng.integers(1, 6)), width,
                     int(rng.integers(1 << 30))) for _ in range(count)]
    if kind == "sequence":
        return [generators.sequence(int(rng.integers(1, 30)), rng=rng, vocab_size=vocab)
                for _ in range(count)]
    if kind == "tree":
        width = program.structure.max_children
        return [generators.random_nary_tree(width, rng=rng, leaves=int(rng.integers(1, 30)),
                                            vocab_size=vocab) for _ in range(count)]
    return generators.sst_like_trees(count, rng=rng, vocab_size=vocab)


@functools.cache
def sst_test_trees(vocab_size: int, count: int) -> tuple[Structure, ...]:
    """The first `count` trees of the SST test split, words limited to `vocab_size` ids
    (rarer tokens read as <unk>), through the project's PTB reader."""
    from cortexlang.inputs.load import load_structures

    loaded = load_structures(SST_TEST, max_vocab_size=vocab_size, max_children=2)
    return loaded.structures[:count]


# -- comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    name: str
    index: tuple[int, ...]
    compiled: float
    reference: float
    error: float


def relative_errors(compiled: np.ndarray, reference: np.ndarray,
                    floor: float = FLOOR) -> np.ndarray:
    """Elementwise |compiled - reference| / max(|reference|, floor); 0 where both sides hold
    the same non-finite value, inf where only one side is finite or they differ."""
    compiled = np.asarray(compiled, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if compiled.shape != reference.shape:
        raise AssertionError(f"shapes differ: compiled {compiled.shape}, "
                             f"reference {reference.shape}")
    finite = np.isfinite(compiled) & np.isfinite(reference)
    with np.errstate(invalid="ignore", over="ignore"):
        errors = np.abs(compiled - reference) / np.maximum(np.abs(reference), floor)
    same_special = ~finite & ((np.isnan(compiled) & np.isnan(reference)) |
                              (compiled == reference))
    return np.where(finite, errors, np.where(same_special, 0.0, np.inf))


def max_error(compiled: Outputs, reference: Outputs,
              floor: float = FLOOR) -> tuple[float, Mismatch | None]:
    """The largest error over every state and output, and where it is."""
    worst = 0.0
    where: Mismatch | None = None
    pairs = [(f"state {name}", compiled.states.get(name), value)
             for name, value in reference.states.items()]
    pairs += [(f"output {name}", compiled.outputs.get(name), value)
              for name, value in reference.outputs.items()]
    for name, mine, theirs in pairs:
        if mine is None:
            raise AssertionError(f"the compiled model did not return {name}")
        errors = relative_errors(mine, theirs, floor)
        if errors.size == 0:
            continue
        position = np.unravel_index(int(np.argmax(errors)), errors.shape)
        if errors[position] > worst or where is None:
            worst = float(errors[position])
            where = Mismatch(name, tuple(int(i) for i in position),
                             float(np.asarray(mine)[position]),
                             float(np.asarray(theirs)[position]), worst)
    return worst, where


def assert_close(model: str, label: str, compiled: Outputs, reference: Outputs,
                 floor: float = FLOOR) -> float:
    """Fail when any element is outside the tolerance; record the model's largest error."""
    worst, where = max_error(compiled, reference, floor)
    previous = MAX_ERRORS.get(model, (0.0, ""))
    if worst >= previous[0]:
        MAX_ERRORS[model] = (worst, label)
    if worst > RELATIVE_TOLERANCE:
        assert where is not None
        node = f"row {where.index[0]}" if where.index else "scalar"
        raise AssertionError(
            f"{model} [{label}]: {where.name} {node} element {where.index[1:]}: compiled "
            f"{where.compiled!r}, interpreter {where.reference!r} (relative error "
            f"{where.error:.3g} > {RELATIVE_TOLERANCE:g})")
    return worst


def options_summary(group: Sequence[Options], limit: int = 4) -> str:
    """The first few option sets of a group of equivalent ones, for failure messages."""
    shown = ", ".join(option_label(options) for options in group[:limit])
    more = f" and {len(group) - limit} more" if len(group) > limit else ""
    return f"{shown}{more}"

"""Random legal programs, in the spirit of Csmith: every draw checks, compiles and runs.

`random_program(seed)` writes a small model over the whole documented language
(docs/language.md): every structure kind (`binary_tree`, `tree(max_children=K)`, `dag`,
`sequence`), with or without a leaf rule; token and vector inputs (guarded by
`... if isleaf(n) else zeros(...)` or `zeros(...) if num_children(n) > 0 else ...` where a
tree has no leaf rule); one to three states of two sizes; child reads by every selector,
reductions `sum`/`mean`/`max` over `children(n)` with bodies of the children's states;
matrix products, `concat`, slices, `split`, `softmax`, the activations, conditions on the
structure (`isleaf`, `num_children`); outputs `[root]` and `[all]`, and heads (expressions of
one node's states). Sizes are tiny (H = 2..8) so that each program builds in about a second.

Every program is legal by construction: a program the checker rejects is a bug of this
generator. `inputs_for` draws a small batch of the program's structure kind.

Some constructs are drawn as named patterns, each with a probability (PATTERNS). Those the
compiler is known to mishandle are listed in KNOWN_BUGS: the generator writes them only when
asked (`force=`), so that the default draws stay green while a fix is under way (with the
failing program in tests/compiler/random_corpus/, marked xfail); when the fix lands, its
entry leaves KNOWN_BUGS and the pattern joins the default draws.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from compiler_support import SWEPT, padded, star

from cortexlang.inputs import generators
from cortexlang.inputs.structure import Structure
from cortexlang.passes.pipeline import Options

KINDS = ("binary_tree", "tree", "dag", "sequence")
VOCABULARY = 7
ACTIVATIONS = ("tanh", "sigmoid", "relu")

# Named patterns and how often a draw that can hold one writes it. Each was once a compiler
# bug (tests/compiler/corpus/ holds the programs that showed them).
PATTERNS: dict[str, float] = {
    "temporary_named_t0": 0.2,    # the first temporary of the internal rule is called t0
    "double_guard": 0.2,          # one input guarded twice, in two expressions
    "guarded_max": 0.5,           # max over children in a rule with a leaf guard (tree, dag)
    "softmax_of_guard": 0.2,      # g * softmax(g) of a guarded input g
    "bare_root_head": 0.2,        # `output last[root] = s0`, beside another head
    "chained_products": 1.0,      # P @ (Q @ s + ...): a product of a sum holding a product
    "repeated_reduction": 1.0,    # a reduction written inline, so possibly twice in a rule
}
# Patterns the compiler mishandles today (name -> what goes wrong); see the module docstring.
# The first five above were fixed together ("Quiet portable builds, generated names apart
# from user names, fixes for guarded programs").
KNOWN_BUGS: dict[str, str] = {}


@dataclass(frozen=True)
class RandomProgram:
    """One drawn program: its source, what it exercises, and the option set to compile it
    with."""

    seed: int
    source: str
    kind: str
    features: frozenset[str]
    options: Options


@dataclass
class _Value:
    text: str
    size: str       # a size name: "H" or "G" (or "X", "E" for inputs)


@dataclass
class _Writer:
    """The state of one draw: sizes, parameters declared so far, names used."""

    chooser: random.Random
    kind: str
    sizes: dict[str, int]
    force: frozenset[str]
    params: list[str] = field(default_factory=list)
    features: set[str] = field(default_factory=set)
    counter: int = 0
    internal: bool = False       # writing the internal rule (conditions may test children)
    linear: set[str] = field(default_factory=set)  # temporaries that are sums of products

    def pattern(self, name: str) -> bool:
        """Whether this draw writes the named pattern (always when forced)."""
        if name in self.force:
            self.features.add(name)
            return True
        if name in KNOWN_BUGS or self.chooser.random() >= PATTERNS[name]:
            return False
        self.features.add(name)
        return True

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def param(self, *shape: str) -> str:
        name = self.fresh("P")
        self.params.append(f"param {name}[{', '.join(shape)}]")
        return name


# The longest rules (leaf and internal rule text, in characters) of a default-tier draw: the
# OpenCL a program compiles to grows with its expressions, and the driver's compile time
# with the OpenCL (from about a second for 20 KB).
SMALL = 500
LARGE = 2000


def random_program(seed: int, force: Sequence[str] = (),
                   budget: int = SMALL) -> RandomProgram:
    """A random legal program drawn from `seed` whose rules take at most `budget`
    characters (draws over it are redrawn); the same seed gives the same program. The
    PATTERNS named in `force` are written wherever the program can hold them."""
    for attempt in range(1000):
        program = _draw(random.Random(f"{seed}/{attempt}"), seed, frozenset(force))
        rules = program.source.split("\nleaf n:", 1)[-1].split("\ninternal n:", 1)
        if sum(len(rule.split("\noutput", 1)[0]) for rule in rules) <= budget:
            return program
    raise AssertionError(f"no program of seed {seed} within {budget} characters")


def _draw(chooser: random.Random, seed: int, force: frozenset[str]) -> RandomProgram:
    kind = chooser.choice(KINDS)
    sizes = {"H": chooser.randint(2, 8), "G": chooser.randint(2, 6)}
    writer = _Writer(chooser, kind, sizes, force)
    writer.features.add(kind)
    max_children = {"binary_tree": 2, "tree": chooser.randint(2, 4), "dag": 2,
                    "sequence": 1}[kind]
    if kind in ("tree", "dag"):
        sizes["K"] = max_children
    token = kind == "sequence" or (kind != "dag" and chooser.random() < 0.8)
    vector = kind == "dag" or (kind != "sequence" and (not token or chooser.random() < 0.4))
    if vector:
        sizes["X"] = chooser.randint(2, 5)
    if token:
        sizes["V"] = VOCABULARY
        sizes["E"] = chooser.randint(2, 6)
    state_count = chooser.choice((1, 1, 2, 2, 3))
    states = [_Value(f"s{index}", "H" if index == 0 or chooser.random() < 0.5 else "G")
              for index in range(state_count)]
    has_leaf = chooser.random() < 0.5
    writer.features.add("leaf rule" if has_leaf else "no leaf rule")

    lines = [f"model Random{seed}"]
    lines.append("sizes " + ", ".join(f"{name} = {value}" for name, value in sizes.items()))
    structure = {"binary_tree": "binary_tree", "tree": "tree(max_children=K)",
                 "dag": "dag(max_children=K)", "sequence": "sequence"}[kind]
    lines.append(f"structure {structure}")
    body: list[str] = []
    if token:
        writer.params.append("param Emb[V, E]")
    declarations = []
    if token:
        declarations.append("input word: token")
    if vector:
        declarations.append("input x[X]")
    declarations.append("state " + ", ".join(f"{state.text}[{state.size}]" for state in states))
    writer.features |= {"token input"} if token else set()
    writer.features |= {"vector input"} if vector else set()
    inputs = ([_Value("Emb[word(n)]", "E")] if token else []) + (
        [_Value("x(n)", "X")] if vector else [])
    if has_leaf:
        body.append("leaf n:")
        body += _rule(writer, states, inputs, children=False, guard=False)
    body.append("internal n:")
    # Inputs at internal nodes: every node of a DAG or sequence has them; a tree's exist only
    # at leaves: read them guarded when there is no leaf rule, else not at all.
    tree_like = kind in ("binary_tree", "tree")
    internal_inputs = inputs if not tree_like else (inputs if not has_leaf else [])
    body += _rule(writer, states, internal_inputs, children=True,
                  guard=tree_like and not has_leaf, max_children=max_children,
                  raw_inputs=inputs if not has_leaf else ())
    outputs = _outputs(writer, states)
    lines += writer.params + declarations + body + outputs
    options = _options(chooser)
    return RandomProgram(seed, "\n".join(lines) + "\n", kind, frozenset(writer.features),
                         options)


def _options(chooser: random.Random) -> Options:
    names = SWEPT
    return Options(**{name: chooser.random() < 0.6 for name in names},
                   node_tile=chooser.choice((1, 2, 4)))


def _rule(writer: _Writer, states: list[_Value], inputs: list[_Value], *, children: bool,
          guard: bool, max_children: int = 0,
          raw_inputs: Sequence[_Value] = ()) -> list[str]:
    chooser = writer.chooser
    writer.internal = children
    # The leaf guard around a whole state: `s = (internal) if num_children(n) > 0 else (leaf)`,
    # the leaf side reading the inputs, where the internal rule also runs at leaves.
    whole_guard = children and bool(raw_inputs) and chooser.random() < 0.5
    statements: list[str] = []
    available: list[_Value] = []
    names_t0 = children and writer.pattern("temporary_named_t0")

    def temporary() -> str:
        nonlocal names_t0
        if names_t0:
            names_t0 = False
            return "t0"
        return writer.fresh("v")

    for value in inputs:
        if guard:
            zeros = f"zeros({value.size})"
            text = (f"({value.text} if isleaf(n) else {zeros})" if chooser.random() < 0.5
                    else f"({zeros} if num_children(n) > 0 else {value.text})")
            writer.features.add("leaf guard")
            if writer.pattern("double_guard"):
                available.append(_Value(text, value.size))
            name = temporary()
            statements.append(f"    {name} = {text}")
            available.append(_Value(name, value.size))
            if writer.pattern("softmax_of_guard"):
                product = writer.fresh("v")
                statements.append(f"    {product} = {name} * softmax({name})")
                available.append(_Value(product, value.size))
        else:
            available.append(value)
    child_values: list[_Value] = []
    if children:
        child_values = _child_reads(writer, states, max_children)
        if (guard or whole_guard) and writer.kind in ("tree", "dag") and \
                not writer.pattern("guarded_max"):
            child_values = [value for value in child_values if not value.text.startswith("max(")]
        if not writer.pattern("repeated_reduction"):
            # Each reduction once, bound to a temporary that the rule's expressions read.
            for index, value in enumerate(child_values):
                if value.text.split("(", 1)[0] in ("sum", "mean", "max"):
                    name = temporary()
                    statements.append(f"    {name} = {value.text}")
                    child_values[index] = _Value(name, value.size)
    for state in states:
        # Some temporaries (and splits) first, then the state itself, bounded by tanh/sigmoid.
        for _ in range(chooser.choice((0, 0, 1, 1, 2))):
            sources = available + child_values
            if chooser.random() < 0.3:
                parts = chooser.choice((2, 3))
                size = chooser.choice(("H", "G"))
                names = [temporary() for _ in range(parts)]
                product = _expression(writer, sources, f"{parts}{size}", depth=1)
                statements.append(f"    {', '.join(names)} = split({product}, {parts})")
                if _linear_product(product, writer.linear):
                    writer.linear.update(names)
                available += [_Value(name, size) for name in names]
                writer.features.add("split")
            else:
                size = chooser.choice(("H", "G"))
                name = temporary()
                text = _expression(writer, sources, size, 1)
                statements.append(f"    {name} = {text}")
                if _linear_product(text, writer.linear):
                    writer.linear.add(name)
                available.append(_Value(name, size))
        value = _expression(writer, available + child_values, state.size, depth=2)
        if chooser.random() < 0.3:
            gate = _expression(writer, available + child_values, state.size, depth=1)
            text = f"sigmoid({gate}) * tanh({value})"
        else:
            text = f"tanh({value})"
        if whole_guard and chooser.random() < 0.7:
            leaf = _expression(writer, list(raw_inputs), state.size, depth=1)
            text = f"{text} if num_children(n) > 0 else tanh({leaf})"
            writer.features.add("state guard")
        statements.append(f"    {state.text} = {text}")
        available.append(_Value(state.text, state.size))
    return statements


def _child_reads(writer: _Writer, states: list[_Value], max_children: int) -> list[_Value]:
    chooser = writer.chooser
    reads: list[_Value] = []
    for state in states:
        if writer.kind == "sequence":
            reads.append(_Value(f"{state.text}[prev(n)]", state.size))
            continue
        if writer.kind == "binary_tree":
            selectors = ["left(n)", "right(n)", "child(n, 0)", "child(n, 1)"]
        else:
            selectors = [f"child(n, {index})" for index in range(max_children)]
            selectors += ["left(n)", "right(n)"] if max_children >= 2 else []
        for selector in chooser.sample(selectors, k=min(len(selectors), 2)):
            reads.append(_Value(f"{state.text}[{selector}]", state.size))
        if writer.kind in ("tree", "dag") and chooser.random() < 0.8:
            reduction = chooser.choice(("sum", "mean", "max"))
            same = [other for other in states if other.size == state.size]
            partner = chooser.choice(same)
            bodies = [f"{state.text}[k]",
                      f"tanh({writer.param(state.size, state.size)} @ {state.text}[k])",
                      f"sigmoid({writer.param(state.size, partner.size)} @ {partner.text}[k]) "
                      f"* {state.text}[k]"]
            reads.append(_Value(f"{reduction}({chooser.choice(bodies)} for k in children(n))",
                                state.size))
            writer.features.add(f"{reduction} over children")
    writer.features.add("child reads")
    return reads


def _expression(writer: _Writer, values: list[_Value], size: str, depth: int) -> str:
    """An expression of shape [size] (a size expression such as "H" or "2G") over `values`."""
    chooser = writer.chooser
    matching = [value for value in values if value.size == size]
    if depth <= 0 or (matching and chooser.random() < 0.25):
        if matching:
            return chooser.choice(matching).text
        if values:
            source = chooser.choice(values)
            writer.features.add("matrix product")
            return f"{writer.param(size, source.size)} @ {_operand(writer, source.text)}"
        return writer.param(size)
    form = chooser.choice(("product", "product", "add", "mul", "activation", "softmax",
                           "concat", "slice", "scale", "condition"))
    if form == "product" or not values:
        inner_size = chooser.choice([value.size for value in values] or ["H"])
        inner = _expression(writer, values, inner_size, depth - 1) if values else \
            writer.param(inner_size)
        bias = f" + {writer.param(size)}" if chooser.random() < 0.5 else ""
        writer.features.add("matrix product")
        return f"{writer.param(size, inner_size)} @ {_wrap(_operand(writer, inner))}{bias}"
    if form in ("add", "mul"):
        operator = chooser.choice(("+", "-")) if form == "add" else "*"
        left = _expression(writer, values, size, depth - 1)
        right = _expression(writer, values, size, depth - 1)
        return f"{_wrap(left)} {operator} {_wrap(right)}"
    if form == "activation":
        function = chooser.choice(ACTIVATIONS)
        writer.features.add(function)
        return f"{function}({_expression(writer, values, size, depth - 1)})"
    if form == "softmax":
        writer.features.add("softmax")
        return f"softmax({_expression(writer, values, size, depth - 1)})"
    if form == "concat" and size in writer.sizes and writer.sizes[size] >= 2:
        # [size] from a [1] and a [size - 1] slice, or from two halves of [2 * size].
        writer.features.add("concat")
        first = _expression(writer, values, size, depth - 1)
        second = _expression(writer, values, size, depth - 1)
        cut = chooser.randint(1, writer.sizes[size] - 1)
        return f"concat(({first})[:{cut}], ({second})[{cut}:])"
    if form == "slice" and size in writer.sizes:
        writer.features.add("slice")
        wide = _expression(writer, values, f"2{size}", depth - 1)
        start = chooser.randint(0, writer.sizes[size])
        return f"({wide})[{start}:{start} + {size}]"
    if form == "scale":
        return f"{chooser.choice(('0.5', '2.0', '-1.5'))} * " \
               f"{_wrap(_expression(writer, values, size, depth - 1))}"
    if form == "condition" and writer.kind != "sequence" and writer.internal:
        conditions = [f"num_children(n) {chooser.choice(('==', '>=', '<', '!='))} "
                      f"{chooser.randint(1, writer.sizes.get('K', 2))}",
                      "isleaf(left(n))", "isleaf(child(n, 1))"]
        writer.features.add("condition")
        then = _expression(writer, values, size, depth - 1)
        otherwise = _expression(writer, values, size, depth - 1)
        return f"({then} if {chooser.choice(conditions)} else {otherwise})"
    return _expression(writer, values, size, depth - 1)


def _operand(writer: _Writer, text: str) -> str:
    """`text` as the right operand of `@`: under tanh when it is a sum of matrix products and
    the chained_products pattern is not drawn."""
    if _linear_product(text, writer.linear) and not writer.pattern("chained_products"):
        return f"tanh({text})"
    return text


def _top_level(text: str, separators: tuple[str, ...]) -> list[str]:
    """`text` cut at the separators that sit outside every bracket."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        character = text[index]
        depth += 1 if character in "([" else -1 if character in ")]" else 0
        match = next((separator for separator in separators
                      if depth == 0 and text.startswith(separator, index)), None)
        if match:
            parts.append(text[start:index])
            index += len(match)
            start = index
            continue
        index += 1
    return parts + [text[start:]]


def _linear_product(text: str, linear: set[str]) -> bool:
    """Whether `text` is, outside any function, a sum whose terms include a matrix product
    (or a temporary that is one), through parentheses and both branches of a condition."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    branches = _top_level(text, (" if ", " else "))
    if len(branches) > 1:
        return any(_linear_product(branch, linear) for branch in branches)
    for term in _top_level(text, (" + ", " - ")):
        term = term.strip()
        if term in linear or len(_top_level(term, (" @ ",))) > 1:
            return True
        if term.startswith("(") and term.endswith(")") and _balanced(term[1:-1]) and \
                _linear_product(term, linear):
            return True
    return False


def _balanced(text: str) -> bool:
    depth = 0
    for character in text:
        depth += 1 if character in "([" else -1 if character in ")]" else 0
        if depth < 0:
            return False
    return depth == 0


def _wrap(text: str) -> str:
    """`text` in parentheses unless it is a name, a call or a child read."""
    simple = text.replace("_", "").replace("[", "").replace("]", "").replace("(", "") \
        .replace(")", "").replace(",", "").replace(" ", "")
    return text if simple.isalnum() and " " not in text else f"({text})"


def _outputs(writer: _Writer, states: list[_Value]) -> list[str]:
    chooser = writer.chooser
    lines = [f"output {states[0].text}[root]"]
    if writer.pattern("bare_root_head"):
        lines = [f"output last[root] = {states[0].text}",
                 f"output y9[all] = tanh({states[0].text})"]
    for state in states[1:]:
        if chooser.random() < 0.5:
            lines.append(f"output {state.text}[{chooser.choice(('root', 'all'))}]")
    heads = chooser.randint(0, 2)
    for index in range(heads):
        source = chooser.choice(states)
        width = chooser.choice(("H", "G"))
        text = f"{writer.param(width, source.size)} @ {source.text} + {writer.param(width)}"
        if chooser.random() < 0.5:
            text = f"softmax({text})"
        lines.append(f"output y{index}[{chooser.choice(('root', 'all'))}] = {text}")
        writer.features.add("head")
    return lines


def inputs_for(kind: str, max_children: int, feature_width: int,
               seed: int) -> list[Structure]:
    """A small batch of structures of a structure kind: leaves, unary and full nodes, words
    below VOCABULARY, `feature_width` features per node (none when 0)."""
    rng = np.random.default_rng(seed)
    if kind == "dag":
        return [generators.grid(1, 1, feature_width, rng), generators.grid(2, 3, feature_width,
                                                                           rng),
                generators.grid(3, 2, feature_width, rng)]
    if kind == "sequence":
        batch = [generators.sequence(length, rng, VOCABULARY) for length in (1, 3, 6)]
    elif kind == "binary_tree":
        batch = [generators.single_leaf(rng, VOCABULARY),
                 generators.perfect_tree(2, rng, VOCABULARY),
                 generators.skewed(4, "left", rng, VOCABULARY),
                 *generators.sst_like_trees(2, rng, VOCABULARY)]
    else:
        batch = [generators.single_leaf(rng, VOCABULARY),
                 generators.chain(3, rng, VOCABULARY),
                 star(max_children, VOCABULARY, int(rng.integers(1 << 20))),
                 generators.random_nary_tree(max_children, rng, leaves=7,
                                             vocab_size=VOCABULARY)]
        batch = [padded(structure, max_children) for structure in batch]
    if feature_width:
        batch = [replace(structure, features=rng.uniform(
            -1, 1, (structure.num_nodes, feature_width)).astype(np.float32))
            for structure in batch]
    return batch
